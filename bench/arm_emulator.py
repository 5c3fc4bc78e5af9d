"""Latency of the ARM emulator: p50/p99 over 1,000 GETs and 1,000 PUTs through one keep-alive
HTTPS connection, with no configured operation latency. Target: PUT p99 < 20 ms.

Run: .venv/bin/python bench/arm_emulator.py
"""

from __future__ import annotations

import asyncio
import json
import ssl
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from sim.arm.server import ArmEmulator
from sim.topology import Topology

N = 1000
API = "?api-version=2026-03-01"


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        topo = Topology()
        emulator = ArmEmulator(Path(tmp))
        emulator.seed(topo)
        await emulator.start()
        tls = ssl.create_default_context(cafile=str(emulator.ca_path))
        headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
        rg = topo.resource_group_id
        nic = f"{emulator.url}{rg}/providers/Microsoft.Network/networkInterfaces/"
        subnet = f"{rg}/providers/Microsoft.Network/virtualNetworks/{topo.vnet_name}/subnets/"
        subnet += topo.node_subnet_name
        connector = aiohttp.TCPConnector(limit=1, ssl=tls)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            puts: list[float] = []
            for i in range(N):
                body = {
                    "location": topo.location,
                    "tags": {"i": str(i)},
                    "properties": {
                        "ipConfigurations": [
                            {"name": "ipconfig1", "properties": {"subnet": {"id": subnet}}}
                        ]
                    },
                }
                # A mix of creates (new NIC, new private IP) and replaces of the same NIC.
                name = f"bench-{i % 100}"
                start = time.perf_counter()
                async with session.put(nic + name + API, data=json.dumps(body)) as resp:
                    await resp.read()
                    assert resp.status in (200, 201), resp.status
                puts.append(time.perf_counter() - start)
            gets: list[float] = []
            for i in range(N):
                start = time.perf_counter()
                async with session.get(nic + f"bench-{i % 100}" + API) as resp:
                    await resp.read()
                    assert resp.status == 200
                gets.append(time.perf_counter() - start)
        await emulator.stop()
    for label, samples in (("GET", gets), ("PUT", puts)):
        print(
            f"{label}: n={len(samples)} p50={_pct(samples, 0.50):.2f} ms "
            f"p99={_pct(samples, 0.99):.2f} ms mean={statistics.mean(samples) * 1000:.2f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
