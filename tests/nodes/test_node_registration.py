"""A node runtime registers its Node as AKS has it, renews its Lease, and when it stops the real
node lifecycle controller marks the node NotReady."""

from __future__ import annotations

from typing import Any

from tests.fixtures.cluster import KubeObjects
from tests.fixtures.node_runtime import NodeRuntimes, node_ready, wait_for

PROVIDER_ID = (
    "azure:///subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/mc_rg"
    "/providers/Microsoft.Compute/virtualMachineScaleSets/aks-gateway-0/virtualMachines/0"
)


async def test_node_registers_ready_renews_its_lease_and_goes_not_ready_when_stopped(
    node_runtimes: NodeRuntimes, kube: KubeObjects
) -> None:
    node = await node_runtimes.start(
        labels=("kubeegressgateway.azure.com/mode=true", "kubernetes.azure.com/agentpool=gateway"),
        taints=("kubeegressgateway.azure.com/mode=true:NoSchedule",),
        provider_id=PROVIDER_ID,
    )
    found = await node_runtimes.wait_ready(node)
    labels = found["metadata"]["labels"]
    assert labels["kubeegressgateway.azure.com/mode"] == "true"
    assert labels["kubernetes.azure.com/agentpool"] == "gateway"
    assert labels["kubernetes.io/hostname"] == node.name
    assert found["spec"]["providerID"] == PROVIDER_ID
    assert {"key": "kubeegressgateway.azure.com/mode", "value": "true", "effect": "NoSchedule"} in (
        found["spec"]["taints"]
    )
    addresses = {a["type"]: a["address"] for a in found["status"]["addresses"]}
    assert addresses["InternalIP"] == node.spec.internal_ip
    assert addresses["Hostname"] == node.name
    assert found["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == node.spec.kubelet_port
    assert found["status"]["allocatable"]["pods"] == "110"
    wide = await node_runtimes.cluster.control_plane.kubectl("get", "node", node.name, "-o", "wide")
    assert node.spec.internal_ip in wide

    lease = await kube.get("coordination.k8s.io/v1", "Lease", node.name, "kube-node-lease")
    assert lease is not None
    first_renewal = lease["spec"]["renewTime"]

    async def renewed() -> bool:
        again = await kube.get("coordination.k8s.io/v1", "Lease", node.name, "kube-node-lease")
        return again is not None and again["spec"]["renewTime"] != first_renewal

    await wait_for(renewed, 30, "the lease to be renewed")

    await node.process.stop()

    async def not_ready() -> dict[str, Any] | None:
        current = await kube.get("v1", "Node", node.name)
        return current if current is not None and node_ready(current) != "True" else None

    stale = await wait_for(not_ready, 90, "the node lifecycle controller to mark the node")
    ready = next(c for c in stale["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "Unknown"
    assert ready["reason"] == "NodeStatusUnknown"
