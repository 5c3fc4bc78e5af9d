"""The three workflows on the real Temporal dev server, with the real Azure and Kubernetes
activities talking to the ARM and Kubernetes emulators through the real SDK clients.

Set EGRESSGW_RECORD_HISTORIES=1 to (re)write these runs' histories under tests/replay/next/
(tests/fixtures/histories.py); test_workflows_replay.py replays them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import kubernetes_asyncio
import pytest
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from azure.mgmt.network.models import (
    PublicIPPrefix,
    PublicIPPrefixPropertiesFormat,
    PublicIPPrefixSku,
)
from kubernetes_asyncio.client import (
    ApiClient,
    CoreV1Api,
    CustomObjectsApi,
    V1Namespace,
    V1ObjectMeta,
)
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import CancelledError
from temporalio.worker import Worker

from activities.azure.catalog import azure_activities
from activities.kube.catalog import kube_activities
from activities.temporal.single_writers import (
    SingleWriterActivities,
    load_balancer_workflow_id,
)
from contracts import kube_names, resource_names, search_attributes
from contracts.activity_io import SgcRef
from contracts.azure_state import AzureScope
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
from tests.fixtures import histories
from workflows.registry import WORKFLOWS, workflow_runner

G, V, P = kube_names.API_GROUP, kube_names.API_VERSION, kube_names.SGC_PLURAL
NAMESPACE = "team-a"
SECRET_NAMESPACE = "kube-egress-gateway-system"


@pytest.fixture
def arm_topology() -> Topology:
    # Workflow IDs of the single writers derive from subscription and resource group; a fresh
    # group per test keeps each test's LoadBalancerWorkflow / GatewayPoolWorkflow its own.
    return Topology(resource_group=f"egressgw-{uuid.uuid4().hex[:8]}")


def _no_worker() -> Worker:
    raise AssertionError("the stack's worker factory is set by make_stack")


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
    new_worker: Callable[[], Worker] = field(default=lambda: _no_worker())

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
        ids = {"config": resource_names.gateway_config_workflow_id(sgc.namespace, sgc.name)}
        if single_writers:
            ids["lb"] = load_balancer_workflow_id(self.settings.scope)
            ids["pool"] = resource_names.gateway_pool_workflow_id(
                self.topology.subscription_id,
                self.topology.resource_group,
                self.vmss_pool.vmss_name,
            )
        await histories.record(self.client, scenario, ids)


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


async def make_stack(
    temporal_address: str,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
    kube_emulator: KubeEmulator,
    kube_async_client: ApiClient,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
    async_compute_client: Callable[..., Awaitable[ComputeManagementClient]],
    options: StackOptions,
) -> AsyncIterator[Stack]:
    client = await Client.connect(temporal_address)
    task_queue = f"workflows-test-{uuid.uuid4().hex[:8]}"
    core = CoreV1Api(kube_async_client)
    for namespace in (NAMESPACE, SECRET_NAMESPACE):
        await core.create_namespace(V1Namespace(metadata=V1ObjectMeta(name=namespace)))
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
            drift_check_seconds=options.drift_check_seconds,
            configure_nodes=options.configure_nodes,
            node_start_timeout_seconds=options.node_start_timeout_seconds,
        ),
        custom=CustomObjectsApi(kube_async_client),
        core=core,
    )
    single_writers = SingleWriterActivities(
        client,
        task_queue,
        batch_window_seconds=options.batch_window.total_seconds(),
        batch_quiet_seconds=options.batch_quiet.total_seconds(),
    )

    def new_worker() -> Worker:
        return Worker(
            client,
            task_queue=task_queue,
            workflows=list(WORKFLOWS),
            workflow_runner=workflow_runner(),
            activities=[
                *azure_activities(network, compute),
                *kube_activities(kube_async_client),
                *single_writers.activities(),
            ],
        )

    stack.new_worker = new_worker
    if not options.start_worker:
        yield stack
        return
    async with new_worker():
        yield stack


@dataclass(frozen=True)
class StackOptions:
    drift_check_seconds: int = 300
    # Short, to keep the suite fast; the batching test widens it.
    batch_quiet: timedelta = timedelta(seconds=0.1)
    batch_window: timedelta = timedelta(seconds=1)
    start_worker: bool = True  # False: the test runs workers itself (stack.new_worker())
    # Control-plane tests run no node agents; the node tests turn this on and run agents.
    configure_nodes: bool = False
    node_start_timeout_seconds: int = 5


@pytest.fixture
def stack_options() -> StackOptions:
    """Tests that need other settings parametrize this name directly."""
    return StackOptions()


@pytest.fixture
async def stack(
    temporal_server: TemporalDevServer,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
    kube_emulator: KubeEmulator,
    kube_async_client: ApiClient,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
    async_compute_client: Callable[..., Awaitable[ComputeManagementClient]],
    stack_options: StackOptions,
) -> AsyncIterator[Stack]:
    async for made in make_stack(
        temporal_server.address,
        arm_emulator,
        arm_topology,
        kube_emulator,
        kube_async_client,
        async_network_client,
        async_compute_client,
        stack_options,
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
    found: list[dict[str, Any]] = [
        c for c in obj["status"]["conditions"] if c["type"] == condition_type
    ]
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
    assert attributes[search_attributes.PHASE.name] == ["Ready"]
    assert attributes[search_attributes.NAME.name] == ["public"]
    assert attributes[search_attributes.POOL.name] == [stack.vmss_pool.vmss_name]
    metadata = await stack.handle(sgc).query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata
    )
    assert "**Ready**" in metadata.current_details and "team-a/public" in metadata.current_details

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
    stack.arm.set_latency({"PUT virtualMachineScaleSets": 1.0})
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


# A quiet period wide enough that both requests land in one batch even on a loaded machine.
@pytest.mark.parametrize(
    "stack_options",
    [StackOptions(batch_quiet=timedelta(seconds=2), batch_window=timedelta(seconds=4))],
)
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
    await stack.record("two_configs_one_pool", first, single_writers=True)


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
    await stack.record("managed_to_private", sgc)


@pytest.mark.parametrize("stack_options", [StackOptions(drift_check_seconds=1)])
async def test_drift_check_repairs_an_ipconfig_stripped_out_of_band(
    stack: Stack,
    async_compute_client: Callable[..., Awaitable[ComputeManagementClient]],
) -> None:
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc("drifty", spec)
    assert (await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))).phase == "Ready"
    ours = resource_names.managed_resource_name(sgc.uid)

    # Someone updates the scale set model without our ipConfig (e.g. a node image upgrade).
    compute = await async_compute_client()
    rg, name = stack.topology.resource_group, stack.vmss_pool.vmss_name
    vmss = await compute.virtual_machine_scale_sets.get(rg, name)
    profile = vmss.virtual_machine_profile
    assert profile is not None and profile.network_profile is not None
    for nic in profile.network_profile.network_interface_configurations or []:
        nic.ip_configurations = [ip for ip in nic.ip_configurations if ip.name != ours]
    poller = await compute.virtual_machine_scale_sets.begin_create_or_update(rg, name, vmss)
    await poller.result()
    assert ours not in stack.vmss_ip_config_names()

    async def repaired() -> bool:
        events = await stack.events(sgc)
        return any(reason == "DriftRepaired" for _, reason, _ in events)

    await wait_for(repaired, timeout=60, what="a DriftRepaired event")
    assert ours in stack.vmss_ip_config_names()
    messages = [m for _, r, m in await stack.events(sgc) if r == "DriftRepaired"]
    assert messages and "repaired drift" in messages[0]
    obj = await stack.get_sgc("drifty")
    assert obj is not None and condition(obj, "Ready")["status"] == "True"
    await stack.record("drift_repaired", sgc, single_writers=True)


async def test_moving_to_another_pool_releases_the_old_one(stack: Stack) -> None:
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc("traveller", spec)
    first = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
    assert first.phase == "Ready", first.message
    ours = resource_names.managed_resource_name(sgc.uid)

    vm_pool = stack.topology.vm_pools[0]
    moved = StaticGatewayConfigurationSpec(
        gateway_nodepool_name=vm_pool.pool_name, provision_public_ips=False
    )
    status = await stack.apply(SpecDelivery(sgc=sgc, generation=2, spec=moved))

    assert status.phase == "Ready", status.message
    assert ours not in stack.vmss_ip_config_names()  # released from the scale set
    assert stack.prefix(sgc.uid) is None  # the managed prefix went with public mode
    nic_ids = [
        f"{stack.rg_id}/providers/Microsoft.Network/networkInterfaces/{vm_pool.nic_name(i)}"
        for i in range(vm_pool.vm_count)
    ]
    nics = [stack.arm_resource(nic_id) for nic_id in nic_ids]
    assert all(
        nic is not None and ours in {ip["name"] for ip in nic["properties"]["ipConfigurations"]}
        for nic in nics
    )
    assert {n.node_name for n in status.nodes} == {
        vm_pool.vm_name(i) for i in range(vm_pool.vm_count)
    }
    lb = stack.load_balancer()
    assert lb is not None
    # One rule, now in front of the VM pool: the scale set's frontend and backend pool are gone.
    assert [r["name"] for r in lb["properties"]["loadBalancingRules"]] == [sgc.uid]
    assert len(lb["properties"]["frontendIPConfigurations"]) == 1
    assert len(lb["properties"]["backendAddressPools"]) == 1
    await stack.record("move_to_vm_pool", sgc)


async def test_cancelling_mid_provisioning_compensates_what_the_run_created(stack: Stack) -> None:
    stack.arm.set_latency({"PUT virtualMachineScaleSets": 1.0})
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc("cancelled", spec)
    handle = await stack.deliver(SpecDelivery(sgc=sgc, generation=1, spec=spec))
    await wait_for(
        lambda: asyncio.sleep(0, stack.load_balancer() is not None), what="the load balancer PUT"
    )

    await handle.cancel()

    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert stack.load_balancer() is None
    assert stack.prefix(sgc.uid) is None
    assert not any(n.startswith("egressgateway-") for n in stack.vmss_ip_config_names())
    secrets = await stack.core.list_namespaced_secret(SECRET_NAMESPACE)
    assert secrets.items == []
    obj = await stack.get_sgc("cancelled")
    assert obj is not None
    degraded = condition(obj, "Degraded")
    assert degraded["status"] == "True" and "cancelled during" in degraded["message"]
    await stack.record("cancelled_mid_provisioning", sgc)


async def test_bring_your_own_prefix_is_used_and_kept_on_deletion(
    stack: Stack,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
) -> None:
    network = await async_network_client()
    rg = stack.topology.resource_group
    poller = await network.public_ip_prefixes.begin_create_or_update(
        rg,
        "users-prefix",
        PublicIPPrefix(
            location=stack.topology.location,
            sku=PublicIPPrefixSku(name="Standard"),
            properties=PublicIPPrefixPropertiesFormat(
                prefix_length=31, public_ip_address_version="IPv4"
            ),
        ),
    )
    byo = await poller.result()
    assert byo.id is not None and byo.properties is not None
    spec = stack.vmss_spec(public_ip_prefix_id=byo.id)
    sgc = await stack.create_sgc("byo", spec)

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Ready", status.message
    assert status.egress_ip_prefix == byo.properties.ip_prefix
    assert stack.prefix(sgc.uid) is None  # no managed prefix next to the user's

    await stack.custom.delete_namespaced_custom_object(G, V, NAMESPACE, P, "byo")
    final = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec, deleting=True))
    assert final.phase == "Deleted"
    assert stack.arm_resource(byo.id) is not None  # the user's prefix is theirs to delete
    assert not any(n.startswith("egressgateway-") for n in stack.vmss_ip_config_names())


@pytest.mark.parametrize("stack_options", [StackOptions(start_worker=False)])
async def test_worker_killed_mid_activity_converges_without_duplicates(stack: Stack) -> None:
    stack.arm.set_latency({"PUT virtualMachineScaleSets": 2.0})
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc("survivor", spec)
    first = stack.new_worker()
    running = asyncio.create_task(first.run())
    await stack.deliver(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    async def vmss_put_in_flight() -> bool:
        return stack.arm.request_log.count("PUT", "virtualMachineScaleSets") > 0

    await wait_for(vmss_put_in_flight, what="the VMSS model PUT")
    # No graceful period: every activity in flight is abandoned, as when the pod is killed.
    await first.shutdown()
    await running

    async with stack.new_worker():

        async def ready() -> bool:
            obj = await stack.get_sgc("survivor")
            conditions = (obj or {}).get("status", {}).get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        await wait_for(ready, timeout=90, what="Ready after the restart")

    lb = stack.load_balancer()
    assert lb is not None
    assert [r["name"] for r in lb["properties"]["loadBalancingRules"]] == [sgc.uid]
    vmss = stack.arm_resource(stack.topology.vmss_id(stack.vmss_pool))
    assert vmss is not None
    nics = vmss["properties"]["virtualMachineProfile"]["networkProfile"][
        "networkInterfaceConfigurations"
    ]
    ours = [
        ip["name"]
        for nic in nics
        for ip in nic["properties"]["ipConfigurations"]
        if ip["name"].startswith("egressgateway-")
    ]
    assert ours == [resource_names.managed_resource_name(sgc.uid)]
    assert stack.prefix(sgc.uid) is not None
