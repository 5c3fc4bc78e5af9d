"""Restart policy: a failing container is restarted with its restart count going up and its last
state kept (`kubectl logs --previous` shows the run before); Never/OnFailure pods finish as
Succeeded or Failed."""

from __future__ import annotations

from typing import Any

from tests.fixtures.cluster import KubeObjects
from tests.fixtures.node_runtime import NodeRuntimes, wait_for
from tests.fixtures.pods import (
    container_status,
    pod_manifest,
    wait_default_service_account,
    wait_pod,
)


def restarted(times: int) -> Any:
    def check(pod: dict[str, Any]) -> bool:
        return int(container_status(pod).get("restartCount", 0)) >= times

    return check


async def test_failing_container_is_restarted_with_back_off(
    node_runtimes: NodeRuntimes, kube: KubeObjects, kube_namespace: str
) -> None:
    node = await node_runtimes.start()
    ns = kube_namespace
    await wait_default_service_account(kube, ns)
    await kube.create(pod_manifest("crash", ns, node.name, "echo run; exit 3"))
    pod = await wait_pod(kube, ns, "crash", restarted(2), timeout=90)
    status = container_status(pod)
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert status["lastState"]["terminated"]["reason"] == "Error"
    assert pod["status"]["phase"] in ("Running", "Pending")

    async def back_off() -> dict[str, Any] | None:
        found = await wait_pod(kube, ns, "crash", lambda p: True)
        state = container_status(found)["state"]
        return found if state.get("waiting", {}).get("reason") == "CrashLoopBackOff" else None

    await wait_for(back_off, 60, "CrashLoopBackOff")
    previous = await node_runtimes.cluster.control_plane.kubectl(
        "logs", "-n", ns, "crash", "--previous"
    )
    assert previous.strip() == "run"


async def test_never_and_on_failure_pods_finish(
    node_runtimes: NodeRuntimes, kube: KubeObjects, kube_namespace: str
) -> None:
    node = await node_runtimes.start()
    ns = kube_namespace
    await wait_default_service_account(kube, ns)
    await kube.create(pod_manifest("ok", ns, node.name, "exit 0", restartPolicy="Never"))
    await kube.create(pod_manifest("bad", ns, node.name, "exit 7", restartPolicy="Never"))
    await kube.create(
        pod_manifest(
            "retry",
            ns,
            node.name,
            # Fails on the first run, succeeds on the second (the marker survives restarts).
            f"test -e {node_runtimes.root}/retry-{ns} && exit 0; "
            f"touch {node_runtimes.root}/retry-{ns}; exit 1",
            restartPolicy="OnFailure",
        )
    )
    ok = await wait_pod(kube, ns, "ok", lambda p: p["status"].get("phase") == "Succeeded")
    assert container_status(ok)["state"]["terminated"]["reason"] == "Completed"
    bad = await wait_pod(kube, ns, "bad", lambda p: p["status"].get("phase") == "Failed")
    assert container_status(bad)["state"]["terminated"]["exitCode"] == 7
    retry = await wait_pod(kube, ns, "retry", lambda p: p["status"].get("phase") == "Succeeded")
    assert container_status(retry)["restartCount"] == 1

    async def released() -> bool:
        # Finished pods give their namespaces and addresses back.
        return not node.pod_namespaces() and not node.ipam_allocations()

    await wait_for(released, 30, "the finished pods' namespaces and addresses released")
