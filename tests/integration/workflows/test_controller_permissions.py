"""The workflow tests' Kubernetes activities run as the controller's ServiceAccount
(tests/fixtures/kube_accounts.py), so RBAC decides what they may do, as in a cluster: a Secret
namespace where the controller's Role is not bound is refused (403), and once the activity's few
retries are spent (a restarted API server denies for seconds what it allows) the configuration
says so."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from kubernetes_asyncio.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException

from contracts import kube_names
from contracts.workflow_io import SpecDelivery
from egressgw.dev.temporal_server import TemporalDevServer
from sim.arm.server import ArmEmulator
from sim.topology import Topology
from tests.fixtures.kube_accounts import ControllerNamespaces
from tests.fixtures.sgc_status import condition
from tests.fixtures.workflow_stack import Stack, StackKube, StackOptions, make_stack


async def status_of(call: Awaitable[object]) -> int:
    try:
        await call
    except ApiException as err:
        return int(err.status)
    return 200


async def test_the_controller_account_holds_its_roles_and_nothing_more(
    controller_api: ApiClient, controller_namespaces: ControllerNamespaces
) -> None:
    core, custom = CoreV1Api(controller_api), CustomObjectsApi(controller_api)
    g, v, p = kube_names.API_GROUP, kube_names.API_VERSION, kube_names.SGC_PLURAL
    sgc = {"apiVersion": f"{g}/{v}", "kind": kube_names.SGC_KIND, "metadata": {"name": "x"}}

    assert await status_of(core.list_namespaced_secret(controller_namespaces.secrets)) == 200
    assert await status_of(custom.list_cluster_custom_object(g, v, p)) == 200
    # Secrets only where its Role is bound; configurations are the users' to create.
    assert await status_of(core.list_namespaced_secret(controller_namespaces.sgcs)) == 403
    sgcs = controller_namespaces.sgcs
    assert await status_of(custom.create_namespaced_custom_object(g, v, sgcs, p, sgc)) == 403
    assert await status_of(core.delete_node("any")) == 403


@pytest.fixture
async def stack_without_secret_role(
    temporal_server: TemporalDevServer,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
    stack_kube: StackKube,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
    async_compute_client: Callable[..., Awaitable[ComputeManagementClient]],
) -> AsyncIterator[Stack]:
    """A controller told to keep its key Secrets in the configurations' namespace, where its
    Role is not bound."""
    namespaces = stack_kube.namespaces
    kube = replace(stack_kube, namespaces=replace(namespaces, secrets=namespaces.sgcs))
    async for made in make_stack(
        temporal_server.address,
        arm_emulator,
        arm_topology,
        kube,
        async_network_client,
        async_compute_client,
        StackOptions(),
    ):
        yield made


async def test_a_secret_namespace_without_the_role_is_reported_after_the_retries(
    stack_without_secret_role: Stack,
) -> None:
    stack = stack_without_secret_role
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc("unkeyed", spec)

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Degraded"
    assert "HTTP 403" in status.message, status.message
    obj = await stack.get_sgc("unkeyed")
    assert obj is not None
    assert "HTTP 403" in condition(obj, "Degraded")["message"]
    assert await stack.secret_names() == []
    assert stack.load_balancer() is None
