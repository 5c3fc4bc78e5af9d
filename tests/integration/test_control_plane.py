"""The real control plane the tests and the dev stack run (sim/control_plane): it serves the
project's CRDs with their validation, keeps objects across an API server restart, and runs the
controller manager (namespaces finish deleting, ServiceAccounts get tokens)."""

from __future__ import annotations

import asyncio

from tests.fixtures.cluster import KubeObjects, Restartable

SGC_API = "egressgateway.kubernetes.azure.com/v1alpha1"


def sgc(namespace: str, name: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": SGC_API,
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


async def test_crd_defaults_apply_and_objects_survive_an_api_server_restart(
    restartable: Restartable,
) -> None:
    # On the restartable control plane: a restart of the session's shared one would break every
    # other test's watches and, for a moment, its RBAC.
    kube, namespace = restartable.kube, restartable.namespace
    created = await kube.create(sgc(namespace, "gw", gatewayNodepoolName="gwpool"))
    assert created["spec"]["provisionPublicIps"] is True
    assert created["spec"]["defaultRoute"] == "staticEgressGateway"

    await restartable.cluster.control_plane.restart_api_server()

    found = await kube.get(SGC_API, "StaticGatewayConfiguration", "gw", namespace)
    assert found is not None and found["metadata"]["uid"] == created["metadata"]["uid"]


async def test_the_controller_manager_gives_namespaces_their_default_service_account(
    kube: KubeObjects, kube_namespace: str
) -> None:
    for _ in range(100):
        if await kube.get("v1", "ServiceAccount", "default", kube_namespace) is not None:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("no default ServiceAccount after 10 s")
