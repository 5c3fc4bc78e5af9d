"""Watchers against the real API server and a real Temporal dev server: what reaches the
workflows. The watchers run as the controller's ServiceAccount (deploy/rbac/controller.yaml),
its Role bound in the test's namespace, which is also the key Secrets' namespace.

The workflows here are small recorders registered under the real names, so that the tests see
exactly the signals and starts the watchers produce. The API server restart runs on the
restartable control plane (tests/fixtures/cluster.py), not the session's shared one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.kube.gateway_keys import GatewayKeyActivities
from contracts import kube_names, resource_names, search_attributes
from contracts.activity_io import GatewayKeyInput, SgcRef
from contracts.azure_state import AzureScope
from contracts.workflow_io import (
    DELIVER_SPEC,
    GATEWAY_CONFIG_WORKFLOW,
    GATEWAY_POOL_WORKFLOW,
    NODES_CHANGED,
    PEERS_CHANGED,
    POOL_MEMBERS_CHANGED,
    ControllerSettings,
    GatewayConfigInput,
    SpecDelivery,
)
from egressgw.dev.temporal_server import TemporalDevServer
from kubeclient.list_watch import WatchEvent, WatchSettings
from tests.fixtures.cluster import KubeObjects, Restartable, api_client
from tests.fixtures.kube_accounts import grant_namespace, make_account
from tests.fixtures.kube_grants import Granted
from watchers.sgc_watcher import SgcWatcher
from watchers.supervisor import Watchers

SGC_API = kube_names.GROUP_VERSION
NAMESPACE_KEY = search_attributes.NAMESPACE
NAME_KEY = search_attributes.NAME
POOL_KEY = search_attributes.POOL
QUICK = WatchSettings(timeout_seconds=5, backoff_initial=0.05, backoff_max=0.5)
SUB = "00000000-0000-0000-0000-000000000001"
SETTINGS = ControllerSettings(
    scope=AzureScope(
        subscription_id=SUB,
        location="eastus",
        resource_group="rg-gw",
        load_balancer_resource_group="rg-gw",
        load_balancer_name="kubeegressgateway-ilb",
        vnet_resource_group="rg-net",
        vnet_name="vnet",
        subnet_name="gateway",
    ),
    secret_namespace="",  # the test's namespace: settings_for()
)


def settings_for(namespace: str) -> ControllerSettings:
    return dataclasses.replace(SETTINGS, secret_namespace=namespace)


@workflow.defn(name=GATEWAY_CONFIG_WORKFLOW)
class RecordingConfigWorkflow:
    """Records deliveries and resync requests; ends once a deletion was delivered."""

    def __init__(self) -> None:
        self.deliveries: list[SpecDelivery] = []
        self.resyncs = 0
        self.peer_changes = 0

    @workflow.run
    async def run(self, input: GatewayConfigInput) -> None:
        await workflow.wait_condition(lambda: any(d.deleting for d in self.deliveries))

    @workflow.signal(name=DELIVER_SPEC)
    def deliver(self, delivery: SpecDelivery) -> None:
        self.deliveries.append(delivery)

    @workflow.signal(name=NODES_CHANGED)
    def nodes_changed(self) -> None:
        self.resyncs += 1

    @workflow.signal(name=PEERS_CHANGED)
    def peers_changed(self) -> None:
        self.peer_changes += 1

    @workflow.query(name="peer_changes")
    def count_peer_changes(self) -> int:
        return self.peer_changes

    @workflow.query(name="recorded")
    def recorded(self) -> tuple[list[SpecDelivery], int]:
        return self.deliveries, self.resyncs


@workflow.defn(name=GATEWAY_POOL_WORKFLOW)
class RecordingPoolWorkflow:
    def __init__(self) -> None:
        self.changes = 0

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal(name=POOL_MEMBERS_CHANGED)
    def members_changed(self) -> None:
        self.changes += 1

    @workflow.query(name="changes")
    def count(self) -> int:
        return self.changes


@pytest_asyncio.fixture
async def temporal(temporal_server: TemporalDevServer) -> AsyncIterator[Client]:
    client = await Client.connect(temporal_server.address)
    async with Worker(
        client,
        task_queue=resource_names.CONTROLLER_TASK_QUEUE,
        workflows=[RecordingConfigWorkflow, RecordingPoolWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        yield client


@contextlib.asynccontextmanager
async def workflows_ended(temporal: Client, namespace: str) -> AsyncIterator[None]:
    """Leave nothing of `namespace` running on the shared server for other tests' workers."""
    try:
        yield
    finally:
        async for execution in temporal.list_workflows(f"{NAMESPACE_KEY.name} = '{namespace}'"):
            if execution.status == WorkflowExecutionStatus.RUNNING:
                await temporal.get_workflow_handle(execution.id).terminate("test over")


@pytest_asyncio.fixture
async def namespace(kube_namespace: str, temporal: Client) -> AsyncIterator[str]:
    """The test's own Kubernetes namespace, so that workflow IDs on the shared server are too."""
    async with workflows_ended(temporal, kube_namespace):
        yield kube_namespace


@pytest.fixture
def controller(controller_here: Granted, caplog: pytest.LogCaptureFixture) -> Iterator[Granted]:
    """The controller's ServiceAccount. Watch loops retry what fails, a refused list too: the
    test fails if any call was refused (a permission deploy/rbac/controller.yaml lacks)."""
    yield controller_here
    refused = [r.getMessage() for r in caplog.records if "HTTP 403" in r.getMessage()]
    assert not refused, refused


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.1)


def sgc_object(namespace: str, name: str, pool: str = "gwpool") -> dict[str, Any]:
    return {
        "apiVersion": SGC_API,
        "kind": kube_names.SGC_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"gatewayNodepoolName": pool, "provisionPublicIps": True},
    }


async def recorded(client: Client, namespace: str, name: str) -> tuple[list[SpecDelivery], int]:
    handle = client.get_workflow_handle(resource_names.gateway_config_workflow_id(namespace, name))
    deliveries, resyncs = await handle.query("recorded", result_type=tuple[list[SpecDelivery], int])
    return list(deliveries), resyncs


async def deliveries_of(client: Client, namespace: str, name: str) -> list[SpecDelivery]:
    try:
        return (await recorded(client, namespace, name))[0]
    except Exception:  # noqa: BLE001 - not started yet (or query not answerable yet): keep polling
        return []


async def test_create_update_delete_reach_the_configuration_workflow(
    kube: KubeObjects, controller: Granted, temporal: Client, namespace: str
) -> None:
    created = await kube.create(sgc_object(namespace, "gw1"))
    uid = created["metadata"]["uid"]
    async with Watchers(controller.api, temporal, settings_for(namespace), watch_settings=QUICK):
        await eventually(lambda: _has(temporal, namespace, "gw1", 1))
        [first] = await deliveries_of(temporal, namespace, "gw1")
        assert first.sgc == SgcRef(namespace, "gw1", uid)
        assert (first.generation, first.deleting) == (1, False)
        assert first.spec.gateway_nodepool_name == "gwpool"

        obj = await kube.get(SGC_API, kube_names.SGC_KIND, "gw1", namespace)
        assert obj is not None and obj["metadata"]["finalizers"] == [kube_names.SGC_FINALIZER]
        handle = temporal.get_workflow_handle(f"egressgw/sgc/{namespace}/gw1")
        description = await handle.describe()
        assert description.typed_search_attributes.get(NAMESPACE_KEY) == namespace
        assert description.typed_search_attributes.get(NAME_KEY) == "gw1"

        obj["spec"]["gatewayNodepoolName"] = "otherpool"
        await kube.update(obj)
        await eventually(lambda: _has(temporal, namespace, "gw1", 2))
        second = (await deliveries_of(temporal, namespace, "gw1"))[1]
        assert (second.generation, second.spec.gateway_nodepool_name) == (2, "otherpool")

        # Deleting: the finalizer holds the object, the workflow is told it is being deleted.
        await kube.delete(SGC_API, kube_names.SGC_KIND, "gw1", namespace)
        await eventually(lambda: _has(temporal, namespace, "gw1", 3))
        third = (await deliveries_of(temporal, namespace, "gw1"))[2]
        assert third.deleting and third.sgc.uid == uid
        await handle.result()  # the recorder ends on a deletion

        # The workflow's teardown removes the finalizer; the object's final DELETED event must
        # not start a fresh run. A later object's delivery shows that event was handled.
        current = await kube.get(SGC_API, kube_names.SGC_KIND, "gw1", namespace)
        assert current is not None
        current["metadata"]["finalizers"] = []
        await kube.update(current)
        await kube.create(sgc_object(namespace, "marker"))
        await eventually(lambda: _has(temporal, namespace, "marker", 1))
        latest = await handle.describe()
        assert latest.run_id == description.run_id
        assert latest.status == WorkflowExecutionStatus.COMPLETED


async def _has(client: Client, namespace: str, name: str, count: int) -> bool:
    return len(await deliveries_of(client, namespace, name)) >= count


async def test_two_controllers_give_one_workflow_and_one_finalizer_per_configuration(
    kube: KubeObjects, controller: Granted, temporal: Client, namespace: str
) -> None:
    names = ["a", "b", "c"]
    for name in names:
        await kube.create(sgc_object(namespace, name))
    async with (
        Watchers(controller.api, temporal, settings_for(namespace), watch_settings=QUICK),
        Watchers(controller.api, temporal, settings_for(namespace), watch_settings=QUICK),
    ):
        for name in names:
            await eventually(lambda name=name: _has(temporal, namespace, name, 1))  # type: ignore[misc]
        for name in names:
            runs = [
                execution
                async for execution in temporal.list_workflows(
                    f"WorkflowId = '{resource_names.gateway_config_workflow_id(namespace, name)}'"
                )
            ]
            assert len(runs) == 1
            deliveries = await deliveries_of(temporal, namespace, name)
            # Both controllers may deliver; they deliver the same state.
            assert {(d.sgc.name, d.generation, d.deleting) for d in deliveries} == {
                (name, 1, False)
            }
            obj = await kube.get(SGC_API, kube_names.SGC_KIND, name, namespace)
            assert obj is not None and obj["metadata"]["finalizers"] == [kube_names.SGC_FINALIZER]


async def test_a_deleted_key_secret_makes_its_workflow_run_again(
    kube: KubeObjects, controller: Granted, temporal: Client, namespace: str
) -> None:
    created = await kube.create(sgc_object(namespace, "keyed"))
    sgc = SgcRef(namespace, "keyed", created["metadata"]["uid"])
    await ActivityEnvironment().run(
        GatewayKeyActivities(controller.api).ensure_gateway_key, GatewayKeyInput(sgc, namespace)
    )
    async with Watchers(controller.api, temporal, settings_for(namespace), watch_settings=QUICK):
        await eventually(lambda: _has(temporal, namespace, "keyed", 1))
        await kube.delete("v1", "Secret", f"sgw-{sgc.uid}", namespace)

        async def resynced() -> bool:
            return (await recorded(temporal, namespace, "keyed"))[1] >= 1

        await eventually(resynced)
        deliveries, resyncs = await recorded(temporal, namespace, "keyed")
        assert resyncs == 1
        assert {(d.generation, d.deleting) for d in deliveries} == {(1, False)}


async def test_gateway_nodes_joining_and_leaving_signal_their_pool_workflow(
    kube: KubeObjects, controller: Granted, temporal: Client, namespace: str
) -> None:
    vmss = f"vmss-{namespace}"
    pool_id = resource_names.gateway_pool_workflow_id(SUB, "rg-gw", vmss)
    pool = await temporal.start_workflow(
        GATEWAY_POOL_WORKFLOW,
        id=pool_id,
        task_queue=resource_names.CONTROLLER_TASK_QUEUE,
    )
    arm_vmss = resource_names.vmss_id(SUB, "rg-gw", vmss)

    def node(name: str, gateway: bool) -> dict[str, Any]:
        labels = {kube_names.GATEWAY_NODE_LABEL: "true"} if gateway else {}
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels},
            "spec": {"providerID": f"azure://{arm_vmss}/virtualMachines/{name[-1]}"},
        }

    async def changes() -> int:
        return int(await pool.query("changes", result_type=int))

    # A configuration registered on this pool (its workflow carries the pool search attribute)
    # and one on another pool.
    configs: dict[str, Any] = {}
    for name, pool_name in (("on-pool", vmss), ("elsewhere", f"other-{namespace}")):
        configs[name] = await temporal.start_workflow(
            GATEWAY_CONFIG_WORKFLOW,
            GatewayConfigInput(namespace=namespace, name=name, settings=settings_for(namespace)),
            id=resource_names.gateway_config_workflow_id(namespace, name),
            task_queue=resource_names.CONTROLLER_TASK_QUEUE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(NAMESPACE_KEY, namespace),
                    SearchAttributePair(POOL_KEY, pool_name),
                ]
            ),
        )

    async def resyncs(name: str) -> int:
        return (await recorded(temporal, namespace, name))[1]

    try:
        await kube.create(node(f"{namespace}-gw0", gateway=True))
        async with Watchers(
            controller.api, temporal, settings_for(namespace), watch_settings=QUICK
        ):
            await eventually(lambda: _at_least(changes, 1))  # listed at start-up
            # The start-up listing does not make every configuration re-read Azure.
            assert await resyncs("on-pool") == 0
            await kube.create(node(f"{namespace}-plain1", gateway=False))
            await kube.create(node(f"{namespace}-gw2", gateway=True))
            await eventually(lambda: _at_least(changes, 2))
            # A node joining live: the pool's configurations run a pass for it, others do not.
            await eventually(lambda: _at_least(lambda: resyncs("on-pool"), 1))
            await kube.delete("v1", "Node", f"{namespace}-gw0")
            await eventually(lambda: _at_least(changes, 3))
            await eventually(lambda: _at_least(lambda: resyncs("on-pool"), 2))
            assert await changes() == 3  # the plain node never counted
            assert await resyncs("elsewhere") == 0
    finally:
        await pool.terminate("test over")
        for name in ("gw0", "plain1", "gw2"):  # Nodes outlive the namespace
            await kube.delete("v1", "Node", f"{namespace}-{name}")


async def _at_least(count: Callable[[], Awaitable[int]], wanted: int) -> bool:
    return await count() >= wanted


async def test_pod_endpoints_coming_and_going_tell_the_configuration_they_name(
    kube: KubeObjects, controller: Granted, temporal: Client, namespace: str
) -> None:
    await kube.create(sgc_object(namespace, "gw"))
    handle = temporal.get_workflow_handle(
        resource_names.gateway_config_workflow_id(namespace, "gw")
    )

    async def peer_changes(count: int) -> bool:
        return int(await handle.query("peer_changes", result_type=int)) >= count

    endpoint = {
        "apiVersion": kube_names.GROUP_VERSION,
        "kind": "PodEndpoint",
        "metadata": {"name": "web-0", "namespace": namespace},
        "spec": {"staticGatewayConfiguration": "gw", "podIpAddress": "10.244.1.7/32"},
    }
    async with Watchers(controller.api, temporal, settings_for(namespace), watch_settings=QUICK):
        await eventually(lambda: _has(temporal, namespace, "gw", 1))
        await kube.create(endpoint)
        await eventually(lambda: peer_changes(1))
        await kube.delete(kube_names.GROUP_VERSION, "PodEndpoint", "web-0", namespace)
        await eventually(lambda: peer_changes(2))


async def test_a_stale_view_never_overwrites_finalizers_written_since(
    kube: KubeObjects, controller: Granted, temporal: Client, namespace: str
) -> None:
    """Another controller (or user) changed the finalizers after this watcher's view was taken:
    the resourceVersion on the patch makes the stale write fail instead of dropping theirs."""
    stale = await kube.create(sgc_object(namespace, "raced"))
    current = dict(stale, metadata={**stale["metadata"], "finalizers": ["example.com/other"]})
    await kube.update(current)
    watcher = SgcWatcher(controller.api, temporal, settings_for(namespace))
    await watcher.handle(WatchEvent("ADDED", stale))
    obj = await kube.get(SGC_API, kube_names.SGC_KIND, "raced", namespace)
    assert obj is not None and obj["metadata"]["finalizers"] == ["example.com/other"]
    # The change that won arrives as an event of its own; handling it adds ours beside theirs.
    await watcher.handle(WatchEvent("MODIFIED", obj))
    obj = await kube.get(SGC_API, kube_names.SGC_KIND, "raced", namespace)
    assert obj is not None
    assert obj["metadata"]["finalizers"] == ["example.com/other", kube_names.SGC_FINALIZER]


async def test_deliveries_survive_an_api_server_restart_without_loss_or_repeats(
    restartable: Restartable, temporal: Client, tmp_path: Path
) -> None:
    """The API server goes away under running watchers and comes back with a fresh watch cache
    (410 for every old resourceVersion: the watches relist): the changes made since reach their
    workflows once, and what was delivered before is not delivered again. (Unlike the other
    tests here, a 403 is no failure: a just-restarted API server refuses requests for a moment,
    its RBAC caches still filling after /readyz, and the watch loops retry through it.)"""
    kube, namespace = restartable.kube, restartable.namespace
    account = await make_account(restartable.cluster, "controller", tmp_path)
    await grant_namespace(restartable.api, account, namespace)
    async with (
        workflows_ended(temporal, namespace),
        api_client(account.kubeconfig) as api,
        Watchers(api, temporal, settings_for(namespace), watch_settings=QUICK),
    ):
        await kube.create(sgc_object(namespace, "gw1"))
        await eventually(lambda: _has(temporal, namespace, "gw1", 1))

        await restartable.cluster.control_plane.restart_api_server()
        obj = await kube.get(SGC_API, kube_names.SGC_KIND, "gw1", namespace)
        assert obj is not None
        obj["spec"]["gatewayNodepoolName"] = "otherpool"
        await kube.update(obj)
        await kube.create(sgc_object(namespace, "gw2"))

        await eventually(lambda: _has(temporal, namespace, "gw1", 2), timeout=60)
        await eventually(lambda: _has(temporal, namespace, "gw2", 1), timeout=60)
        await asyncio.sleep(1)  # time for a repeat to show, if any
        gw1 = await deliveries_of(temporal, namespace, "gw1")
        gw2 = await deliveries_of(temporal, namespace, "gw2")
        assert [(d.generation, d.deleting) for d in gw1] == [(1, False), (2, False)]
        assert gw1[1].spec.gateway_nodepool_name == "otherpool"
        assert [(d.generation, d.deleting) for d in gw2] == [(1, False)]
        for name in ("gw1", "gw2"):  # the finalizer, added once
            current = await kube.get(SGC_API, kube_names.SGC_KIND, name, namespace)
            assert current is not None
            assert current["metadata"]["finalizers"] == [kube_names.SGC_FINALIZER]
