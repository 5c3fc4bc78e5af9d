"""Latency of the Kubernetes API emulator over keep-alive HTTPS.

Starts the emulator (with deploy/crds loaded) in its own thread and drives it from a blocking
keep-alive HTTPS client (http.client) so that client and server do not share an event loop:

    .venv/bin/python bench/kube_emulator.py [--count 1000]

Prints p50/p99 in milliseconds for GET, create (POST) and update (PUT) of a custom resource and
of a ConfigMap. Target: GET p99 < 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import ssl
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sim.kube.server import KubeEmulator

CRD_DIR = Path(__file__).resolve().parents[1] / "deploy" / "crds"
SGC_GROUP_VERSION = "egressgateway.kubernetes.azure.com/v1alpha1"
SGC_PATH = f"/apis/{SGC_GROUP_VERSION}/namespaces/default/staticgatewayconfigurations"
CM_PATH = "/api/v1/namespaces/default/configmaps"


def _sgc(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": name, "labels": {"bench": "true"}},
        "spec": {"gatewayNodepoolName": "gwpool", "excludeCidrs": ["10.0.0.0/8"]},
    }


def _configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


class Client:
    def __init__(self, url: str, token: str, ca_path: Path) -> None:
        parts = urlsplit(url)
        context = ssl.create_default_context(cafile=str(ca_path))
        self.conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
        data = json.dumps(body).encode() if body is not None else None
        start = time.perf_counter()
        self.conn.request(method, path, body=data, headers=self.headers)
        response = self.conn.getresponse()
        raw = response.read()
        elapsed = (time.perf_counter() - start) * 1000
        return response.status, json.loads(raw), elapsed


def _summary(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    worst = ordered[-1]
    return (
        f"{label:<18} n={len(ordered):<5} p50={p50:6.2f} ms  p99={p99:6.2f} ms  max={worst:6.2f} ms"
    )


def _run(client: Client, count: int, path: str, make: Any, label: str) -> list[str]:
    creates, gets, updates = [], [], []
    for i in range(count):
        status, _, ms = client.call("POST", path, make(f"{label}-{i}"))
        assert status == 201, status
        creates.append(ms)
    for i in range(count):
        status, obj, ms = client.call("GET", f"{path}/{label}-{i % count}")
        assert status == 200, status
        gets.append(ms)
    for i in range(count):
        _, obj, _ = client.call("GET", f"{path}/{label}-{i}")
        obj["metadata"]["labels"] = {"bench": "updated"}
        status, _, ms = client.call("PUT", f"{path}/{label}-{i}", obj)
        assert status == 200, status
        updates.append(ms)
    return [
        _summary(f"{label} GET", gets),
        _summary(f"{label} create", creates),
        _summary(f"{label} update", updates),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        crd_dir = CRD_DIR if any(CRD_DIR.glob("*.yaml")) else None
        emulator = KubeEmulator(Path(state), crd_dir=crd_dir)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        started = time.perf_counter()
        asyncio.run_coroutine_threadsafe(emulator.start(), loop).result()
        print(
            f"emulator started in {(time.perf_counter() - started) * 1000:.1f} ms at {emulator.url}"
        )
        client = Client(emulator.url, emulator.token, emulator.ca_path)
        lines = _run(client, args.count, CM_PATH, _configmap, "configmap")
        if crd_dir is not None:
            lines += _run(client, args.count, SGC_PATH, _sgc, "sgc")
        _, listed, ms = client.call("GET", f"{CM_PATH}?labelSelector=bench%3Dupdated")
        lines.append(
            f"list of {len(listed['items'])} configmaps with a label selector: {ms:.1f} ms"
        )
        for line in lines:
            print(line)
        asyncio.run_coroutine_threadsafe(emulator.stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()


if __name__ == "__main__":
    main()
