"""Latency of the real Kubernetes API server (sim/control_plane) over keep-alive HTTPS, beside the
figures of the Kubernetes API emulator it replaced (sim/kube, measured by the former
bench/kube_emulator.py on the same machine).

Starts etcd, kube-apiserver, the controller manager and the scheduler from the cached binaries
(scripts/k8s-binaries) with deploy/crds applied, and drives the API server as the admin from a
blocking keep-alive HTTPS client (http.client), one request at a time:

    .venv/bin/python bench/kube_api.py [--count 1000] [--fsync]

Prints p50/p99 in milliseconds for create (POST), GET and update (PUT) of a ConfigMap and of a
StaticGatewayConfiguration, and the time of one labelled list of all the ConfigMaps. etcd runs
without fsync unless --fsync is given (as the test fixtures run it).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import ssl
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from sim.control_plane.binaries import kube_binaries
from sim.control_plane.cluster import ControlPlane, ControlPlanePorts
from sim.ports import free_port_block

CRD_DIR = Path(__file__).resolve().parents[1] / "deploy" / "crds"
NAMESPACE = "bench"
SGC_GROUP_VERSION = "egressgateway.kubernetes.azure.com/v1alpha1"
SGC_PATH = f"/apis/{SGC_GROUP_VERSION}/namespaces/{NAMESPACE}/staticgatewayconfigurations"
CM_PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps"

# The emulator's figures (ms), bench/kube_emulator.py --count 1000 on this machine, before
# sim/kube was retired: (p50, p99) per operation, and the labelled list of 1,000 ConfigMaps.
EMULATOR: Final = {
    "configmap GET": (0.30, 0.51),
    "configmap create": (0.41, 0.71),
    "configmap update": (0.76, 6.00),
    "sgc GET": (0.24, 0.56),
    "sgc create": (0.62, 3.34),
    "sgc update": (2.17, 5.21),
}
EMULATOR_LIST_MS: Final = 12.9


def _sgc(name: str) -> dict[str, Any]:
    return {
        "apiVersion": SGC_GROUP_VERSION,
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": name, "labels": {"bench": "true"}},
        "spec": {"gatewayNodepoolName": "gwpool", "excludeCidrs": ["10.0.0.0/8"]},
    }


def _configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


class Client:
    """One keep-alive HTTPS connection, authenticated with the admin's client certificate."""

    def __init__(self, url: str, ca: Path, cert: Path, key: Path) -> None:
        parts = urlsplit(url)
        context = ssl.create_default_context(cafile=str(ca))
        context.load_cert_chain(str(cert), str(key))
        self.conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
        data = json.dumps(body).encode() if body is not None else None
        start = time.perf_counter()
        self.conn.request(method, path, body=data, headers=self.headers)
        response = self.conn.getresponse()
        raw = response.read()
        elapsed = (time.perf_counter() - start) * 1000
        return response.status, json.loads(raw), elapsed


@dataclass(frozen=True)
class Figures:
    label: str
    samples: list[float]

    def p50(self) -> float:
        return float(statistics.median(self.samples))

    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _run(client: Client, count: int, path: str, make: Any, label: str) -> list[Figures]:
    creates, gets, updates = [], [], []
    for i in range(count):
        status, body, ms = client.call("POST", path, make(f"{label}-{i}"))
        assert status == 201, (status, body)
        creates.append(ms)
    for i in range(count):
        status, body, ms = client.call("GET", f"{path}/{label}-{i}")
        assert status == 200, (status, body)
        gets.append(ms)
    for i in range(count):
        _, obj, _ = client.call("GET", f"{path}/{label}-{i}")
        obj["metadata"]["labels"] = {"bench": "updated"}
        status, body, ms = client.call("PUT", f"{path}/{label}-{i}", obj)
        assert status == 200, (status, body)
        updates.append(ms)
    return [
        Figures(f"{label} GET", gets),
        Figures(f"{label} create", creates),
        Figures(f"{label} update", updates),
    ]


def _table(figures: list[Figures], list_ms: float, listed: int) -> list[str]:
    lines = [
        f"{'':<18} {'kube-apiserver p50/p99':>24}   {'emulator (before) p50/p99':>26}",
    ]
    for f in figures:
        old_p50, old_p99 = EMULATOR[f.label]
        lines.append(
            f"{f.label:<18} {f.p50():>10.2f} / {f.p99():>7.2f} ms"
            f"   {old_p50:>12.2f} / {old_p99:>7.2f} ms"
        )
    lines.append(
        f"{'list ' + str(listed) + ' by label':<18} {list_ms:>20.1f} ms"
        f"   {EMULATOR_LIST_MS:>22.1f} ms"
    )
    return lines


async def _main(count: int, fsync: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-kube-api-") as state:
        base = free_port_block(3, start=45000)
        control_plane = ControlPlane(
            Path(state),
            ControlPlanePorts(api_server=base, etcd_client=base + 1, etcd_peer=base + 2),
            kube_binaries(),
            crd_dir=CRD_DIR,
            fsync=fsync,
        )
        started = time.perf_counter()
        await control_plane.start()
        ready_in = time.perf_counter() - started
        print(f"control plane ready in {ready_in:.1f} s at {control_plane.server}")
        try:
            pki = control_plane.pki
            assert pki is not None
            client = Client(control_plane.server, pki.ca, pki.admin.cert, pki.admin.key)
            status, body, _ = client.call(
                "POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}}
            )
            assert status == 201, (status, body)
            figures = await asyncio.to_thread(_run, client, count, CM_PATH, _configmap, "configmap")
            figures += await asyncio.to_thread(_run, client, count, SGC_PATH, _sgc, "sgc")
            _, listed, list_ms = client.call("GET", f"{CM_PATH}?labelSelector=bench%3Dupdated")
            print(f"{count} of each, one request at a time; etcd fsync {'on' if fsync else 'off'}")
            for line in _table(figures, list_ms, len(listed["items"])):
                print(line)
        finally:
            await control_plane.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--fsync", action="store_true", help="etcd fsyncs (off by default)")
    args = parser.parse_args()
    asyncio.run(_main(args.count, args.fsync))


if __name__ == "__main__":
    main()
