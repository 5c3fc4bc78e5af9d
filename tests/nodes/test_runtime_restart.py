"""A node runtime that crashes and starts again: the processes it left running are adopted (no
restart), a pod force-deleted meanwhile is cleaned up (process, namespace, address), and a pod
whose process ended meanwhile is restarted."""

from __future__ import annotations

from typing import Any

from tests.fixtures.cluster import KubeObjects
from tests.fixtures.node_runtime import NodeRuntimes, wait_for
from tests.fixtures.pods import (
    container_status,
    pod_manifest,
    run,
    running_with_ip,
    wait_default_service_account,
    wait_pod,
)


async def test_runtime_restart_adopts_cleans_and_restarts(
    node_runtimes: NodeRuntimes, kube: KubeObjects, kube_namespace: str
) -> None:
    node = await node_runtimes.start()
    ns = kube_namespace
    await wait_default_service_account(kube, ns)
    for name in ("keep", "orphan", "dies"):
        await kube.create(pod_manifest(name, ns, node.name, f"echo {name}; exec sleep 3600"))
    pods = {n: await wait_pod(kube, ns, n, running_with_ip) for n in ("keep", "orphan", "dies")}
    assert len(node.pod_namespaces()) == 3

    node.process.kill()  # a crash: the pods' processes live on in their own sessions
    pids = await pod_pids(node_runtimes, pods)
    await kube_force_delete(node_runtimes, ns, "orphan")
    await run("kill", "-KILL", str(pids["dies"]))

    node.restart()
    await node_runtimes.wait_ready(node)

    async def settled() -> dict[str, Any] | None:
        keep = await kube.get("v1", "Pod", "keep", ns)
        dies = await kube.get("v1", "Pod", "dies", ns)
        if keep is None or dies is None:
            return None
        if container_status(dies).get("restartCount", 0) < 1 or not running_with_ip(dies):
            return None
        if len(node.pod_namespaces()) != 2:
            return None
        return {"keep": keep, "dies": dies}

    now = await wait_for(settled, 60, "the restarted runtime to settle")
    assert container_status(now["keep"])["restartCount"] == 0
    assert now["keep"]["status"]["podIP"] == pods["keep"]["status"]["podIP"]
    assert await run("cat", f"/proc/{pids['keep']}/comm") == "sleep\n"
    last = container_status(now["dies"])["lastState"]["terminated"]
    assert last["reason"] == "ContainerStatusUnknown"
    assert sorted(node.ipam_allocations()) == sorted(
        p["status"]["podIP"] for p in (now["keep"], now["dies"])
    )

    for name in ("keep", "dies"):
        await kube.delete("v1", "Pod", name, ns)

    async def released() -> bool:
        left = [await kube.get("v1", "Pod", n, ns) for n in ("keep", "dies")]
        return not any(left) and not node.pod_namespaces() and not node.ipam_allocations()

    await wait_for(released, 60, "the pods released")


async def pod_pids(runtimes: NodeRuntimes, pods: dict[str, dict[str, Any]]) -> dict[str, int]:
    """The recorded pid of each pod's container (the runtime's state dir)."""
    import json

    out = {}
    for name, pod in pods.items():
        node = runtimes.nodes[0]
        record = node.files.state_dir / "runtime" / "pods" / pod["metadata"]["uid"]
        data = json.loads((record / "containers" / "main.json").read_text())
        out[name] = int(data["pid"])
    return out


async def kube_force_delete(runtimes: NodeRuntimes, namespace: str, name: str) -> None:
    await runtimes.cluster.control_plane.kubectl(
        "delete", "pod", "-n", namespace, name, "--grace-period=0", "--force"
    )
