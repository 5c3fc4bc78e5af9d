"""The three workflows on the real Temporal dev server, with the real Azure and Kubernetes
activities talking to the ARM and Kubernetes emulators through the real SDK clients.

Set EGRESSGW_RECORD_HISTORIES=1 to (re)write the histories under tests/replay/ from these runs;
test_workflows_replay.py replays them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import kubernetes_asyncio
import pytest
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from kubernetes_asyncio.client import ApiClient, CoreV1Api, CustomObjectsApi
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from activities.azure.catalog import azure_activities
from activities.kube.catalog import kube_activities
from activities.temporal.single_writers import (
    SingleWriterActivities,
    gateway_pool_workflow_id,
    load_balancer_workflow_id,
)
from contracts import kube_names, resource_names
from contracts.activity_io import SgcRef
from contracts.azure_state import AzureScope, GatewayPool, PoolKind
from contracts.gateway_config import GatewayVmssProfile, StaticGatewayConfigurationSpec
from contracts.workflow_io import (
    APPLY_SPEC,
    DELIVER_SPEC,
    GATEWAY_CONFIG_WORKFLOW,
    ConfigurationStatus,
    ControllerSettings,
    GatewayConfigInput,
    SpecDelivery,
)
from egressgw.dev.temporal_server import TemporalDevServer
from sim.arm.server import ArmEmulator
from sim.kube.server import KubeEmulator
from sim.topology import Topology
from workflows.registry import WORKFLOWS

REPLAY_DIR = Path(__file__).resolve().parents[1] / "replay"
RECORD = os.environ.get("EGRESSGW_RECORD_HISTORIES") == "1"
G, V, P = kube_names.API_GROUP, kube_names.API_VERSION, kube_names.SGC_PLURAL
NAMESPACE = "team-a"
SECRET_NAMESPACE = "kube-egress-gateway-system"


@pytest.fixture
def arm_topology() -> Topology:
    # Workflow IDs of the single writers derive from subscription and resource group; a fresh
    # group per test keeps each test's LoadBalancerWorkflow / GatewayPoolWorkflow its own.
    return Topology(resource_group=f"egressgw-{uuid.uuid4().hex[:8]}")


@dataclass
class Stack:
    client: Client
    task_queue: str
    arm: ArmEmulator
    kube: KubeEmulator
    topology: Topology
    settings: ControllerSettings
    custom: CustomObjectsApi
    core: CoreV1Api

    @property
    def vmss_pool(self) -> Any:
        return self.topology.vmss_pools[0]

    def vmss_spec(self, **fields: Any) -> StaticGatewayConfigurationSpec:
        pool = self.vmss_pool
        profile = GatewayVmssProfile(self.topology.resource_group, pool.vmss_name, 31)
        return StaticGatewayConfigurationSpec(gateway_vmss_profile=profile, **fields)

    async def create_sgc(self, name: str, spec: StaticGatewayConfigurationSpec) -> SgcRef:
        body = {
            "apiVersion": f"{G}/{V}",
            "kind": kube_names.SGC_KIND,
            # The watcher adds the finalizer before it delivers; the test plays that part.
            "metadata": {"name": name, "finalizers": [kube_names.SGC_FINALIZER]},
            "spec": spec.to_object(),
        }
        created = await self.custom.create_namespaced_custom_object(G, V, NAMESPACE, P, body)
        return SgcRef(NAMESPACE, name, created["metadata"]["uid"])

    async def get_sgc(self, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = await self.custom.get_namespaced_custom_object(
                G, V, NAMESPACE, P, name
            )
        except kubernetes_asyncio.client.ApiException as err:
            if err.status == 404:
                return None
            raise
        return obj

    def start_input(self, sgc: SgcRef) -> GatewayConfigInput:
        return GatewayConfigInput(namespace=sgc.namespace, name=sgc.name, settings=self.settings)

    async def apply(self, delivery: SpecDelivery) -> ConfigurationStatus:
        """What a caller wanting the result does: update-with-start, answered after the pass."""
        status: ConfigurationStatus = await self.client.execute_update_with_start_workflow(
            APPLY_SPEC,
            delivery,
            start_workflow_operation=self._start(delivery.sgc),
            result_type=ConfigurationStatus,
        )
        return status

    async def deliver(self, delivery: SpecDelivery) -> WorkflowHandle[Any, Any]:
        """What the watcher does: signal-with-start."""
        return await self.client.start_workflow(
            GATEWAY_CONFIG_WORKFLOW,
            self.start_input(delivery.sgc),
            id=resource_names.gateway_config_workflow_id(delivery.sgc.namespace, delivery.sgc.name),
            task_queue=self.task_queue,
            start_signal=DELIVER_SPEC,
            start_signal_args=[delivery],
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            result_type=ConfigurationStatus,
        )

    def _start(self, sgc: SgcRef) -> WithStartWorkflowOperation[Any, Any]:
        return WithStartWorkflowOperation(
            GATEWAY_CONFIG_WORKFLOW,
            self.start_input(sgc),
            id=resource_names.gateway_config_workflow_id(sgc.namespace, sgc.name),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )

    def handle(self, sgc: SgcRef) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(
            resource_names.gateway_config_workflow_id(sgc.namespace, sgc.name)
        )

    async def events(self, sgc: SgcRef) -> list[tuple[str, str, str]]:
        listed = await self.core.list_namespaced_event(NAMESPACE)
        return [
            (e.type, e.reason, e.message)
            for e in listed.items
            if e.involved_object is not None and e.involved_object.uid == sgc.uid
        ]

    def arm_resource(self, resource_id: str) -> dict[str, Any] | None:
        return self.arm.resource(resource_id)

    @property
    def rg_id(self) -> str:
        return self.topology.resource_group_id

    def load_balancer(self) -> dict[str, Any] | None:
        return self.arm_resource(
            f"{self.rg_id}/providers/Microsoft.Network/loadBalancers/"
            f"{resource_names.DEFAULT_LOAD_BALANCER_NAME}"
        )

    def prefix(self, uid: str) -> dict[str, Any] | None:
        return self.arm_resource(
            f"{self.rg_id}/providers/Microsoft.Network/publicIPPrefixes/"
            f"{resource_names.managed_resource_name(uid)}"
        )

    def vmss_ip_config_names(self) -> set[str]:
        vmss = self.arm_resource(self.topology.vmss_id(self.vmss_pool))
        assert vmss is not None
        nics = vmss["properties"]["virtualMachineProfile"]["networkProfile"][
            "networkInterfaceConfigurations"
        ]
        return {ip["name"] for nic in nics for ip in nic["properties"]["ipConfigurations"]}

    async def record(self, scenario: str, sgc: SgcRef, *, single_writers: bool = False) -> None:
        """Write this run's histories for the replay test (only when asked to)."""
        if not RECORD:
            return
        REPLAY_DIR.mkdir(exist_ok=True)
        ids = {"config": resource_names.gateway_config_workflow_id(sgc.namespace, sgc.name)}
        if single_writers:
            ids["lb"] = load_balancer_workflow_id(self.settings.scope)
            ids["pool"] = resource_names.gateway_pool_workflow_id(
                self.topology.subscription_id,
                self.topology.resource_group,
                self.vmss_pool.vmss_name,
            )
        for kind, workflow_id in ids.items():
            history = await self.client.get_workflow_handle(workflow_id).fetch_history()
            (REPLAY_DIR / f"{scenario}.{kind}.json").write_text(history.to_json())


def scope_of(topology: Topology) -> AzureScope:
    return AzureScope(
        subscription_id=topology.subscription_id,
        location=topology.location,
        resource_group=topology.resource_group,
        load_balancer_resource_group=topology.resource_group,
        load_balancer_name=resource_names.DEFAULT_LOAD_BALANCER_NAME,
        vnet_resource_group=topology.resource_group,
        vnet_name=topology.vnet_name,
        subnet_name=topology.gateway_subnet_name,
    )


@pytest.fixture
async def kube_async_client(kubeconfig_path: Path) -> AsyncIterator[ApiClient]:
    api = await kubernetes_asyncio.config.new_client_from_config(config_file=str(kubeconfig_path))
    try:
        yield api
    finally:
        await api.close()


async def _make_stack(
    temporal_server: TemporalDevServer,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
    kube_emulator: KubeEmulator,
    kube_async_client: ApiClient,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
    async_compute_client: Callable[..., Awaitable[ComputeManagementClient]],
    drift_check_seconds: int,
) -> AsyncIterator[Stack]:
    client = await Client.connect(temporal_server.address)
    task_queue = f"workflows-test-{uuid.uuid4().hex[:8]}"
    core = CoreV1Api(kube_async_client)
    for namespace in (NAMESPACE, SECRET_NAMESPACE):
        await core.create_namespace({"metadata": {"name": namespace}})
    # Retries belong to the workflows' retry policies (activities/azure/catalog.py).
    network = await async_network_client(retry_total=0)
    compute = await async_compute_client(retry_total=0)
    stack = Stack(
        client=client,
        task_queue=task_queue,
        arm=arm_emulator,
        kube=kube_emulator,
        topology=arm_topology,
        settings=ControllerSettings(
            scope=scope_of(arm_topology),
            secret_namespace=SECRET_NAMESPACE,
            drift_check_seconds=drift_check_seconds,
        ),
        custom=CustomObjectsApi(kube_async_client),
        core=core,
    )
    single_writers = SingleWriterActivities(
        client, task_queue, heartbeat_every=timedelta(seconds=1)
    )
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=[
            *azure_activities(network, compute),
            *kube_activities(kube_async_client),
            *single_writers.activities(),
        ],
    ):
        yield stack


@pytest.fixture
async def stack(
    temporal_server: TemporalDevServer,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
    kube_emulator: KubeEmulator,
    kube_async_client: ApiClient,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
    async_compute_client: Callable[..., Awaitable[ComputeManagementClient]],
) -> AsyncIterator[Stack]:
    async for made in _make_stack(
        temporal_server,
        arm_emulator,
        arm_topology,
        kube_emulator,
        kube_async_client,
        async_network_client,
        async_compute_client,
        drift_check_seconds=300,
    ):
        yield made


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout: float = 60.0, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def condition(obj: dict[str, Any], condition_type: str) -> dict[str, Any]:
    found = [c for c in obj["status"]["conditions"] if c["type"] == condition_type]
    assert found, f"no {condition_type} condition in {obj['status']}"
    return found[0]


# --- Scenarios -----------------------------------------------------------------------------------


async def test_public_vmss_mode_becomes_ready_with_its_status(stack: Stack) -> None:
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc("public", spec)
    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Ready", status.message
    obj = await stack.get_sgc("public")
    assert obj is not None
    st = obj["status"]
    prefix = stack.prefix(sgc.uid)
    assert prefix is not None
    assert st["egressIpPrefix"] == prefix["properties"]["ipPrefix"]
    assert st["egressIpPrefix"].endswith("/31")
    profile = st["gatewayServerProfile"]
    assert profile["ip"] == status.frontend_ip and profile["port"] == 6000
    assert profile["publicKey"]
    assert profile["privateKeySecretRef"]["name"] == resource_names.gateway_secret_name(sgc.uid)
    assert st["observedGeneration"] == 1
    assert condition(obj, "Ready")["status"] == "True"
    assert condition(obj, "Degraded")["status"] == "False"

    lb = stack.load_balancer()
    assert lb is not None
    rules = {r["name"]: r["properties"] for r in lb["properties"]["loadBalancingRules"]}
    assert rules[sgc.uid]["frontendPort"] == 6000 and rules[sgc.uid]["enableFloatingIP"]
    assert resource_names.managed_resource_name(sgc.uid) in stack.vmss_ip_config_names()
    assert len(status.nodes) == stack.vmss_pool.instance_count
    assert all(n.secondary_ip for n in status.nodes)
    reasons = [reason for _, reason, _ in await stack.events(sgc)]
    assert kube_names.EVENT_RECONCILING in reasons and kube_names.EVENT_RECONCILED in reasons

    # The Web UI's view: search attributes and the step shown as current details.
    description = await stack.handle(sgc).describe()
    attributes = description.search_attributes
    assert attributes[resource_names.SEARCH_ATTRIBUTE_PHASE] == ["Ready"]
    assert attributes[resource_names.SEARCH_ATTRIBUTE_NAME] == ["public"]
    assert attributes[resource_names.SEARCH_ATTRIBUTE_POOL] == [stack.vmss_pool.vmss_name]

    # The same delivery again (a relist) is ignored: no ARM call at all.
    stack.arm.request_log.clear()
    again = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
    assert again.phase == "Ready"
    assert stack.arm.request_log.entries == []
    await stack.record("public_vmss_ready", sgc, single_writers=True)


async def test_invalid_spec_is_reported_without_any_azure_call(stack: Stack) -> None:
    valid = stack.vmss_spec()
    sgc = await stack.create_sgc("invalid", valid)
    # What an older CRD might have admitted: both pool selectors and a malformed CIDR.
    invalid = stack.vmss_spec(gateway_nodepool_name="gwpool", exclude_cidrs=("10.0.0.0/33",))
    stack.arm.request_log.clear()

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=invalid))

    assert status.phase == "Invalid"
    assert stack.arm.request_log.entries == []
    obj = await stack.get_sgc("invalid")
    assert obj is not None
    degraded = condition(obj, "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "InvalidSpec"
    assert "spec.excludeCidrs[0]" in degraded["message"]
    warnings = [(r, m) for t, r, m in await stack.events(sgc) if t == "Warning"]
    assert any(r == "InvalidSpec" and "spec.excludeCidrs[0]" in m for r, m in warnings)
    await stack.record("invalid_spec", sgc)


async def test_deletion_mid_provisioning_leaves_nothing_behind(stack: Stack) -> None:
    # Slow VMSS writes keep the configuration in its pool step when the deletion arrives.
    stack.arm.set_latency({"PUT virtualMachineScaleSets": 2.0})
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc("doomed", spec)
    handle = await stack.deliver(SpecDelivery(sgc=sgc, generation=1, spec=spec))
    await wait_for(
        lambda: asyncio.sleep(0, stack.load_balancer() is not None), what="the load balancer PUT"
    )
    await stack.custom.delete_namespaced_custom_object(G, V, NAMESPACE, P, "doomed")
    await stack.deliver(SpecDelivery(sgc=sgc, generation=1, spec=spec, deleting=True))

    final = await handle.result()
    assert final.phase == "Deleted"
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert stack.load_balancer() is None
    assert stack.prefix(sgc.uid) is None
    assert not any(n.startswith("egressgateway-") for n in stack.vmss_ip_config_names())
    # Finalizer removed: the API server finished the deletion.
    assert await stack.get_sgc("doomed") is None
    secrets = await stack.core.list_namespaced_secret(SECRET_NAMESPACE)
    assert [s.metadata.name for s in secrets.items] == []
    await stack.record("delete_mid_provisioning", sgc)


async def test_two_configurations_on_one_pool_share_the_writes(stack: Stack) -> None:
    spec = stack.vmss_spec()
    first = await stack.create_sgc("first", spec)
    second = await stack.create_sgc("second", spec)
    stack.arm.request_log.clear()

    statuses = await asyncio.gather(
        stack.apply(SpecDelivery(sgc=first, generation=1, spec=spec)),
        stack.apply(SpecDelivery(sgc=second, generation=1, spec=spec)),
    )

    assert [s.phase for s in statuses] == ["Ready", "Ready"], [s.message for s in statuses]
    assert {s.port for s in statuses} == {6000, 6001}
    assert len({s.frontend_ip for s in statuses}) == 1  # one frontend per pool
    log = stack.arm.request_log
    assert log.count("PUT", "loadBalancers") == 1
    assert log.count("PUT", "virtualMachineScaleSets") == 1
    assert log.count("PUT", "publicIPPrefixes") == 2  # one prefix per configuration
    lb = stack.load_balancer()
    assert lb is not None
    assert {r["name"] for r in lb["properties"]["loadBalancingRules"]} == {first.uid, second.uid}


async def test_throttling_and_conflicts_converge(stack: Stack) -> None:
    throttle = stack.arm.faults.add(
        effect="throttle", method="PUT", resource_type="loadBalancers", count=1, retry_after=1
    )
    conflict = stack.arm.faults.add(
        effect="conflict",
        method="PUT",
        resource_type="virtualMachineScaleSets",
        count=1,
        code="AnotherOperationInProgress",
    )
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc("bumpy", spec)

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Ready", status.message
    assert (throttle.hits, conflict.hits) == (1, 1)
    obj = await stack.get_sgc("bumpy")
    assert obj is not None and condition(obj, "Ready")["status"] == "True"
    await stack.record("throttled_and_conflicted", sgc, single_writers=True)


async def test_permanent_failure_compensates_and_reports_azures_message(stack: Stack) -> None:
    other_subscription = (
        "/subscriptions/00000000-0000-0000-0000-0000000000ff/resourceGroups/elsewhere"
        "/providers/Microsoft.Network/publicIPPrefixes/theirs"
    )
    spec = stack.vmss_spec(public_ip_prefix_id=other_subscription)
    sgc = await stack.create_sgc("byo-elsewhere", spec)

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Degraded"
    assert "publicIpPrefixId" in status.message
    obj = await stack.get_sgc("byo-elsewhere")
    assert obj is not None
    degraded = condition(obj, "Degraded")
    assert degraded["status"] == "True" and "publicIpPrefixId" in degraded["message"]
    # The rule registered beside the prefix check was compensated: the load balancer is gone,
    # and so is the key Secret this run created.
    assert stack.load_balancer() is None
    secrets = await stack.core.list_namespaced_secret(SECRET_NAMESPACE)
    assert secrets.items == []
    assert any(r == "ReconcileError" for _, r, _ in await stack.events(sgc))
    await stack.record("byo_other_subscription", sgc)


async def test_moving_from_managed_prefix_to_private_leaks_nothing(stack: Stack) -> None:
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc("mover", spec)
    assert (await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))).phase == "Ready"
    assert stack.prefix(sgc.uid) is not None

    private = stack.vmss_spec(provision_public_ips=False)
    status = await stack.apply(SpecDelivery(sgc=sgc, generation=2, spec=private))

    assert status.phase == "Ready", status.message
    assert stack.prefix(sgc.uid) is None
    assert set(status.egress_ip_prefix.split(",")) == {n.secondary_ip for n in status.nodes}
    obj = await stack.get_sgc("mover")
    assert obj is not None and obj["status"]["observedGeneration"] == 2
