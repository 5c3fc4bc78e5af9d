"""Pods the node runtime cannot run get a status or event naming why, leave no network namespace
or address behind, and do not stop the runtime from running other pods."""

from __future__ import annotations

from typing import Any

from sim.node_runtime.cni_config import bridge_conflist
from tests.fixtures.cluster import KubeObjects
from tests.fixtures.node_runtime import NodeRuntimes, wait_for
from tests.fixtures.pods import (
    container_status,
    pod_manifest,
    running_with_ip,
    wait_default_service_account,
    wait_pod,
)


def waiting(reason: str) -> Any:
    def check(pod: dict[str, Any]) -> bool:
        state = container_status(pod).get("state", {})
        return state.get("waiting", {}).get("reason") == reason

    return check


async def test_unknown_volume_and_missing_command_are_reported_and_others_run(
    node_runtimes: NodeRuntimes, kube: KubeObjects, kube_namespace: str
) -> None:
    node = await node_runtimes.start()
    ns = kube_namespace
    await wait_default_service_account(kube, ns)
    nfs = pod_manifest(
        "nfs",
        ns,
        node.name,
        "sleep 3600",
        volumes=[{"name": "data", "nfs": {"server": "nfs.example", "path": "/export"}}],
        container={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
    )
    no_command = pod_manifest("nocmd", ns, node.name, "")
    no_command["spec"]["containers"][0]["command"] = ["no-such-command-xyz", "--flag"]
    await kube.create(nfs)
    await kube.create(no_command)

    pod = await wait_pod(kube, ns, "nfs", waiting("CreateContainerConfigError"))
    assert pod["status"]["phase"] == "Pending"
    message = container_status(pod)["state"]["waiting"]["message"]
    assert 'unsupported volume type "nfs"' in message

    pod = await wait_pod(kube, ns, "nocmd", waiting("CreateContainerError"))
    message = container_status(pod)["state"]["waiting"]["message"]
    assert "no-such-command-xyz" in message and "executable file not found" in message

    await kube.create(pod_manifest("good", ns, node.name, "echo fine; sleep 3600"))
    await wait_pod(kube, ns, "good", running_with_ip)

    for name in ("nfs", "nocmd", "good"):
        await kube.delete("v1", "Pod", name, ns)

    async def released() -> bool:
        left = [await kube.get("v1", "Pod", n, ns) for n in ("nfs", "nocmd", "good")]
        return not any(left) and not node.pod_namespaces() and not node.ipam_allocations()

    await wait_for(released, 60, "the pods released with their namespaces and addresses")
    assert node.process.exited() is None


async def test_failing_cni_chain_leaves_nothing_and_is_an_event(
    node_runtimes: NodeRuntimes, kube: KubeObjects, kube_namespace: str
) -> None:
    # bridge + host-local succeed, then the chain's second plugin is missing: the runtime must
    # undo the bridge's ADD (its address too) and remove the namespace.
    index = len(node_runtimes.nodes)
    ipam = node_runtimes.root / f"{node_runtimes.tag}-node-{index}" / "cni" / "ipam"
    conflist = bridge_conflist("broken", "cni0", "10.250.0.0/24", str(ipam))
    conflist["plugins"].append({"type": "no-such-plugin"})
    node = await node_runtimes.start(conflist=conflist)
    ns = kube_namespace
    await wait_default_service_account(kube, ns)
    await kube.create(pod_manifest("sandbox", ns, node.name, "sleep 3600"))

    async def event() -> dict[str, Any] | None:
        events = await kube.list("v1", "Event", ns)
        for found in events:
            involved = found.get("involvedObject") or found.get("involved_object") or {}
            if (
                involved.get("name") == "sandbox"
                and found.get("reason") == "FailedCreatePodSandBox"
            ):
                return found
        return None

    found = await wait_for(event, 60, "a FailedCreatePodSandBox event")
    assert found["type"] == "Warning"
    assert 'failed to find plugin "no-such-plugin"' in found["message"]
    pod = await kube.get("v1", "Pod", "sandbox", ns)
    assert pod is not None and pod["status"]["phase"] == "Pending"
    assert not pod["status"].get("podIP")

    async def nothing_left() -> bool:
        # Between two attempts (the runtime retries with back-off) nothing of one is left.
        return not node.pod_namespaces() and not node.ipam_allocations()

    await wait_for(nothing_left, 30, "no namespace or address left by the failed ADD")

    await kube.delete("v1", "Pod", "sandbox", ns)

    async def released() -> bool:
        return await kube.get("v1", "Pod", "sandbox", ns) is None

    await wait_for(released, 60, "the pod released")
    assert not node.pod_namespaces()
    assert not node.ipam_allocations()
