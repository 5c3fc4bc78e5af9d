"""The project's own CRDs (deploy/crds) as the real API server serves them, and what a user sees
of them with kubectl. What a configuration may hold is tested in test_crd_validation.py."""

from __future__ import annotations

from kubernetes_asyncio.client import ApiClient, CustomObjectsApi

from contracts import kube_names
from tests.fixtures.cluster import Cluster, KubeObjects


async def test_the_project_crds_are_served_namespaced_with_a_status_subresource(
    kube_api: ApiClient,
) -> None:
    served = await CustomObjectsApi(kube_api).get_api_resources(
        kube_names.API_GROUP, kube_names.API_VERSION
    )
    resources = {r.name: r for r in served.resources}
    kinds = {r.kind for r in resources.values() if "/" not in r.name}
    assert kinds == {"StaticGatewayConfiguration", "PodEndpoint", "GatewayStatus"}
    sgc = resources[kube_names.SGC_PLURAL]
    assert sgc.namespaced and sgc.short_names == ["sgc"]
    assert f"{kube_names.SGC_PLURAL}/status" in resources  # status written apart from spec


async def test_kubectl_get_shows_readiness_and_egress_ip_once_the_status_says_so(
    kube_cluster: Cluster, kube: KubeObjects, kube_namespace: str
) -> None:
    await kube.create(
        {
            "apiVersion": kube_names.GROUP_VERSION,
            "kind": kube_names.SGC_KIND,
            "metadata": {"name": "egress", "namespace": kube_namespace},
            "spec": {"gatewayNodepoolName": "gwpool"},
        }
    )
    kubectl = kube_cluster.control_plane.kubectl

    async def table() -> list[list[str]]:
        out = await kubectl("get", "sgc", "-n", kube_namespace)
        return [line.split() for line in out.splitlines()]

    header, row = await table()
    assert header == ["NAME", "READY", "EGRESS", "IP", "AGE"]
    assert row[0] == "egress" and len(row) == 2  # READY and EGRESS IP blank: no status yet

    ready = {
        "type": kube_names.CONDITION_READY,
        "status": "True",
        "reason": "Provisioned",
        "message": "egress via 20.1.2.0/31",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    await kube.patch(
        kube_names.GROUP_VERSION,
        kube_names.SGC_KIND,
        "egress",
        {"status": {"conditions": [ready], "egressIpPrefix": "20.1.2.0/31"}},
        kube_namespace,
        subresource="status",
    )
    _, row = await table()
    assert row[:3] == ["egress", "True", "20.1.2.0/31"]

    await kube.create(
        {
            "apiVersion": kube_names.GROUP_VERSION,
            "kind": "PodEndpoint",
            "metadata": {"name": "web-0", "namespace": kube_namespace},
            "spec": {"staticGatewayConfiguration": "egress", "podIpAddress": "10.244.1.7/32"},
        }
    )
    out = await kubectl("get", "podendpoints", "-n", kube_namespace)
    header_line, row_line = out.splitlines()
    assert header_line.split() == ["NAME", "GATEWAY", "POD", "IP", "AGE"]
    assert row_line.split()[:3] == ["web-0", "egress", "10.244.1.7/32"]
