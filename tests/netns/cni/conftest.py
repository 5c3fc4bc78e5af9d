"""Fixtures of the pod side's tests: the session's real control plane, one node (namespace, conf
and bin dirs, `egressgw cni-manager` as its ServiceAccount) per test module, a Kubernetes
namespace per test with its default ServiceAccount, and a gateway configuration helper."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.dynamic import DynamicClient

from agent.wireguard_keys import generate_private_key, public_key_of
from contracts import kube_names
from sim.control_plane.service_accounts import service_account_kubeconfig
from tests.fixtures.cluster import Cluster, KubeObjects
from tests.netns.cni.cni_env import (
    PE_API,
    SGC_KIND,
    CniNode,
    Pod,
    pod_object,
    present,
    sgc_object,
    succeeded,
)


@dataclass
class ManagerAccess:
    namespace: str  # the manager's own namespace
    kubeconfig: Path  # its ServiceAccount's


@dataclass
class GatewayKeys:
    private_key: bytes
    public_key: str  # base64


@pytest_asyncio.fixture(scope="module")
async def admin_objects(kube_cluster: Cluster) -> AsyncIterator[KubeObjects]:
    api = await kube_config.new_client_from_config(config_file=str(kube_cluster.admin_kubeconfig))
    async with api:
        yield KubeObjects(await DynamicClient(api))


@pytest_asyncio.fixture(scope="module")
async def manager_access(
    kube_cluster: Cluster,
    admin_objects: KubeObjects,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ManagerAccess]:
    namespace = f"egw-cni-{uuid.uuid4().hex[:6]}"
    succeeded(
        await admin_objects.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
    )
    kubeconfig = await service_account_kubeconfig(
        kube_cluster.control_plane,
        "cni-manager",
        namespace,
        tmp_path_factory.mktemp("cni-manager") / "kubeconfig",
    )
    try:
        yield ManagerAccess(namespace, kubeconfig)
    finally:
        await admin_objects.delete("v1", "Namespace", namespace)


async def create_node_object(objects: KubeObjects, name: str) -> None:
    created = await objects.create(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name},
            "spec": {
                "taints": [
                    {"key": kube_names.CNI_NOT_READY_TAINT_KEY, "effect": "NoSchedule"},
                    {"key": "example.com/kept", "value": "yes", "effect": "NoSchedule"},
                ]
            },
        }
    )
    succeeded(created)


@pytest_asyncio.fixture(scope="module")
async def cni_node(
    kube_cluster: Cluster, admin_objects: KubeObjects, manager_access: ManagerAccess
) -> AsyncIterator[CniNode]:
    """A node with the manager running; shared by the tests of one module."""
    tag = "c" + uuid.uuid4().hex[:4]
    node = CniNode(tag, kube_cluster.binaries, node_name=f"{tag}-node")
    await create_node_object(admin_objects, node.node_name)
    node.create()
    try:
        node.start_manager(manager_access.kubeconfig, manager_access.namespace)
        yield node
    finally:
        node.destroy()
        await admin_objects.delete("v1", "Node", node.node_name)


@pytest_asyncio.fixture
async def pod_namespace(kube: KubeObjects, kube_namespace: str) -> str:
    """The test's namespace, once it has the default ServiceAccount pods need."""
    for _ in range(200):
        if present(await kube.get("v1", "ServiceAccount", "default", kube_namespace)):
            return kube_namespace
        await asyncio.sleep(0.05)
    raise AssertionError(f"namespace {kube_namespace} got no default ServiceAccount")


@pytest.fixture
def gateway_keys() -> GatewayKeys:
    private = generate_private_key()
    return GatewayKeys(private, base64.b64encode(public_key_of(private)).decode())


SgcFactory = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def make_sgc(kube: KubeObjects, gateway_keys: GatewayKeys) -> SgcFactory:
    """Create a configuration and (unless ready=False) write its status as the controller would:
    the gateway server profile pods connect to."""

    async def make(
        namespace: str,
        name: str,
        *,
        ip: str = "192.0.2.10",
        port: int = 6001,
        ready: bool = True,
        **spec: Any,
    ) -> dict[str, Any]:
        created = succeeded(await kube.create(sgc_object(namespace, name, **spec)))
        if ready:
            created = await kube.patch(
                PE_API,
                SGC_KIND,
                name,
                {
                    "status": {
                        "egressIpPrefix": "203.0.113.64/30",
                        "gatewayServerProfile": {
                            "ip": ip,
                            "port": port,
                            "publicKey": gateway_keys.public_key,
                        },
                    }
                },
                namespace,
                subresource="status",
            )
        return succeeded(created)

    return make


PodFactory = Callable[..., Awaitable[Pod]]


@pytest_asyncio.fixture
async def make_pod(cni_node: CniNode, kube: KubeObjects) -> AsyncIterator[PodFactory]:
    """A Pod object and its sandbox namespace; DEL and namespace removal at teardown."""
    made: list[Pod] = []

    async def make(
        namespace: str, name: str, gateway: str | None, *, create_object: bool = True
    ) -> Pod:
        if create_object:
            succeeded(await kube.create(pod_object(namespace, name, gateway)))
        pod = cni_node.new_pod(namespace, name)
        made.append(pod)
        return pod

    yield make
    for pod in made:
        await cni_node.delete_pod(pod)
