"""Pod created → Running with an IP on a regular node run by the node runtime (sim/node_runtime):
p50/p99 over N pods (target: p99 < 2 s).

A real control plane (sim/control_plane), one node runtime in a throwaway network namespace with
the bridge + host-local conflist, pods of `sleep` with the ServiceAccount token volume every pod
gets. Measured from the return of the create call to the watch event that first shows the pod
Running with a podIP (the scheduler's binding, the runtime's watch, CNI ADD, the token request,
the process start and the status write are all inside). Two rounds: one pod at a time, then all
N created at once. Needs root.
    .venv/bin/python bench/node_runtime_pods.py [--pods 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sim.control_plane.binaries import kube_binaries
from sim.control_plane.cluster import ControlPlane, ControlPlanePorts
from sim.node_runtime import netns
from sim.node_runtime.api_client import ApiClient, ApiError, Gone, load_kubeconfig
from sim.node_runtime.node_process import NodeRuntimeProcess, NodeSpec, node_command, prepare_node
from sim.ports import free_port, free_port_block

NAMESPACE = "default"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def pod(name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"bench": "node-runtime"}},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}],
        },
    }


class Observer:
    """Watches the bench's pods and notes when each is first seen Running with a podIP."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.seen: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Event] = {}

    def expect(self, name: str) -> asyncio.Event:
        return self.waiters.setdefault(name, asyncio.Event())

    def note(self, obj: dict[str, Any]) -> None:
        status = obj.get("status") or {}
        name = obj.get("metadata", {}).get("name", "")
        if status.get("phase") == "Running" and status.get("podIP") and name not in self.seen:
            self.seen[name] = time.monotonic()
            self.expect(name).set()

    async def run(self) -> None:
        """List, then watch from there; the API server closes a watch that falls behind in a
        burst, so watch again from the last resourceVersion (relist on 410)."""
        path = f"/api/v1/namespaces/{NAMESPACE}/pods"
        selector = {"labelSelector": "bench=node-runtime"}
        version = ""
        while True:
            if not version:
                listed = await self.api.get(path, selector)
                for item in listed.get("items") or []:
                    self.note(item)
                version = listed["metadata"]["resourceVersion"]
            try:
                params = {**selector, "resourceVersion": version, "allowWatchBookmarks": "true"}
                async for event in self.api.watch(path, params):
                    obj = event.get("object") or {}
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event.get("type") != "BOOKMARK":
                        self.note(obj)
            except Gone:
                version = ""


async def measure(api: ApiClient, observer: Observer, names: list[str], node: str) -> list[float]:
    async def one(name: str) -> float:
        done = observer.expect(name)
        await api.create(f"/api/v1/namespaces/{NAMESPACE}/pods", pod(name, node))
        created = time.monotonic()
        try:
            await asyncio.wait_for(done.wait(), 120)
        except TimeoutError:
            found = await api.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")
            raise RuntimeError(
                f"pod {name} not Running after 120 s: {found.get('status')}"
            ) from None
        return observer.seen[name] - created

    return list(await asyncio.gather(*(one(n) for n in names)))


def cpu_seconds(pid: int | None, children: bool = False) -> float:
    """User+system CPU of a process, or of its waited-for children (/proc/<pid>/stat)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    used = fields[13:15] if children else fields[11:13]
    return sum(int(f) for f in used) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(pids: dict[str, int | None]) -> dict[str, float]:
    snapshot = {name: cpu_seconds(pid) for name, pid in pids.items()}
    snapshot["its CNI plugins and launchers"] = cpu_seconds(pids["node runtime"], children=True)
    return snapshot


def report_cpu(before: dict[str, float], after: dict[str, float]) -> None:
    used = ", ".join(f"{name} {after[name] - before[name]:.1f}" for name in before)
    print(f"    CPU seconds: {used}", flush=True)


def report(label: str, latencies: list[float]) -> None:
    print(
        f"{label}: n={len(latencies)} p50={statistics.median(latencies):.3f} s "
        f"p99={percentile(latencies, 99):.3f} s max={max(latencies):.3f} s "
        f"(target p99 < 2 s: {'met' if percentile(latencies, 99) < 2.0 else 'NOT met'})",
        flush=True,
    )


async def delete_all(api: ApiClient, names: list[str]) -> None:
    for name in names:
        await api.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")


async def main(count: int, extra: tuple[str, ...]) -> None:
    if os.geteuid() != 0:
        sys.exit("the node runtime needs root")
    root = Path(tempfile.mkdtemp(prefix="bench-node-runtime-"))
    binaries = kube_binaries()
    base = free_port_block(3)
    control_plane = ControlPlane(
        root / "control-plane", ControlPlanePorts(base, base + 1, base + 2), binaries, fsync=False
    )
    tag = "b" + uuid.uuid4().hex[:5]
    node_netns = f"{tag}-node"
    await control_plane.start()
    await netns.create(node_netns)
    await ip("-n", node_netns, "link", "set", "lo", "up")
    process: NodeRuntimeProcess | None = None
    finished = False
    try:
        assert control_plane.pki is not None
        spec = NodeSpec(
            name=f"{tag}-node-0",
            internal_ip="10.224.0.4",
            kubelet_port=free_port(),
            pod_subnet="10.244.0.0/22",
            netns=node_netns,
            pod_netns_prefix=tag,
            extra_args=("--max-pods", str(count + 10), *extra),
        )
        files = prepare_node(
            spec, root / "node", control_plane.paths.pki, control_plane.server, control_plane.pki.ca
        )
        process = NodeRuntimeProcess(
            node_command(spec, files, binaries.directory, (Path(sys.executable).parent,)),
            root / "node-runtime.log",
        )
        process.start()
        admin = load_kubeconfig(control_plane.paths.admin_kubeconfig, root / "admin-data")
        async with ApiClient(admin) as api:
            await wait_ready(api, spec.name)
            observer = Observer(api)
            watching = asyncio.create_task(observer.run())
            await measure(api, observer, ["warm-up"], spec.name)
            pids = {**control_plane.pids(), "node runtime": process.pid}
            before = cpu_snapshot(pids)
            sequential = []
            for i in range(count):
                sequential += await measure(api, observer, [f"seq-{i}"], spec.name)
            report("one at a time", sequential)
            report_cpu(before, cpu_snapshot(pids))
            await delete_all(api, ["warm-up", *(f"seq-{i}" for i in range(count))])
            await wait_pods_gone(api)
            before = cpu_snapshot(pids)
            burst = await measure(api, observer, [f"burst-{i}" for i in range(count)], spec.name)
            report(f"{count} at once", burst)
            report_cpu(before, cpu_snapshot(pids))
            await delete_all(api, [f"burst-{i}" for i in range(count)])
            await wait_pods_gone(api)
            watching.cancel()
        finished = True
    finally:
        if process is not None:
            await process.stop()
        await control_plane.stop()
        # A stopped runtime keeps its pods' sandboxes for its next start; there is none.
        for name in netns.list_names():
            if name.startswith(f"{tag}-"):
                await netns.remove(name)
        if finished:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"(state and logs kept in {root})")


async def ip(*args: str) -> None:
    done = await asyncio.create_subprocess_exec("ip", *args)
    if await done.wait() != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed")


async def wait_ready(api: ApiClient, node: str) -> None:
    for _ in range(300):
        try:
            found = await api.get(f"/api/v1/nodes/{node}")
            sa = await api.get(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default")
        except ApiError:  # not there yet
            await asyncio.sleep(0.2)
            continue
        conditions = found.get("status", {}).get("conditions", [])
        if sa and any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"node {node} not Ready")


async def wait_pods_gone(api: ApiClient) -> None:
    for _ in range(600):
        listed = await api.get(
            f"/api/v1/namespaces/{NAMESPACE}/pods", {"labelSelector": "bench=node-runtime"}
        )
        if not listed.get("items"):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("pods not released")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--debug", action="store_true", help="the runtime logs each pod's steps")
    args = parser.parse_args()
    asyncio.run(main(args.pods, ("--log-level", "DEBUG") if args.debug else ()))
