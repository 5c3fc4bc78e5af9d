"""The Azure SDK for Go against the ARM emulator (tools/arm-client, built by scripts/arm-client):
wall time of its whole run (cloud from metadata, App Service token, prefix and load balancer
create/read/delete through LROs, scale set NICs and scale set) and how many exchanges and
operation polls it made, with no operation latency and with 1.2 s per write. With whole-second
Retry-After the Go poller waits what the emulator asks; with a fractional one it would wait its
30 s default per poll.

Run: .venv/bin/python bench/arm_go_client.py
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from sim.arm.server import ArmEmulator
from sim.imds import ImdsEmulator
from sim.topology import Topology

REPO = Path(__file__).resolve().parents[1]
WRITES = ("PUT publicIPPrefixes", "PUT loadBalancers", "DELETE publicIPPrefixes",
          "DELETE loadBalancers")  # fmt: skip


async def run_once(binary: str, latency: float) -> tuple[float, int, int]:
    topo = Topology()
    with tempfile.TemporaryDirectory() as tmp:
        arm = ArmEmulator(Path(tmp))
        arm.seed(topo)
        arm.set_latency(dict.fromkeys(WRITES, latency))
        await arm.start()
        imds = ImdsEmulator()
        await imds.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_"))}
        env.update(imds.app_service_environment(), SSL_CERT_FILE=str(arm.ca_path))
        subnet = (
            f"{topo.resource_group_id}/providers/Microsoft.Network/virtualNetworks/"
            f"{topo.vnet_name}/subnets/{topo.gateway_subnet_name}"
        )
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            binary, f"-arm={arm.url}", f"-subscription={topo.subscription_id}",
            f"-resource-group={topo.resource_group}", f"-location={topo.location}",
            f"-subnet={subnet}", f"-scale-set={topo.vmss_pools[0].vmss_name}",
            stdout=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        out, _ = await proc.communicate()
        elapsed = time.perf_counter() - started
        await imds.stop()
        await arm.stop()
    report = json.loads(out)
    if proc.returncode != 0:
        raise SystemExit(f"the Go client failed: {report['steps']}")
    polls = sum(1 for e in report["exchanges"] if "/operations/" in e["path"])
    return elapsed, len(report["exchanges"]), polls


async def main(binary: str) -> None:
    for latency in (0.0, 1.2):
        elapsed, exchanges, polls = await run_once(binary, latency)
        print(
            f"Go client, write latency {latency:.1f} s: {elapsed:.2f} s wall, "
            f"{exchanges} exchanges, {polls} operation polls"
        )


if __name__ == "__main__":
    built = subprocess.run(
        [str(REPO / "scripts" / "arm-client")], capture_output=True, text=True, check=True
    )
    asyncio.run(main(built.stdout.strip()))
