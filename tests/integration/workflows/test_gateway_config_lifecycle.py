"""One configuration's life through the three workflows (tests/fixtures/workflow_stack.py):
provisioning in public VMSS, bring-your-own-prefix and private VM-pool mode, spec updates that
move it, the drift check, deletion and cancellation in the middle of provisioning, Azure
throttling, conflicts and a permanent refusal on the way, and a worker killed mid-activity.

Set EGRESSGW_RECORD_HISTORIES=1 to (re)write these runs' histories under tests/replay/next/
(tests/fixtures/histories.py); tests/integration/test_workflows_replay.py replays them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from azure.mgmt.network.models import (
    PublicIPPrefix,
    PublicIPPrefixPropertiesFormat,
    PublicIPPrefixSku,
)
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError

from contracts import kube_names, resource_names, search_attributes
from contracts.activity_io import SgcRef
from contracts.gateway_config import StaticGatewayConfigurationSpec
from contracts.workflow_io import SpecDelivery
from tests.fixtures.sgc_status import condition
from tests.fixtures.waiting import wait_for
from tests.fixtures.workflow_stack import (
    Stack,
    StackOptions,
    config_id,
    record_histories,
    single_writer_ids,
)


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
    details = metadata.current_details
    assert "**Ready**" in details and f"{stack.namespace}/public" in details

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
    await stack.delete_sgc("doomed")
    await stack.deliver(SpecDelivery(sgc=sgc, generation=1, spec=spec, deleting=True))

    final = await handle.result()
    assert final.phase == "Deleted"
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert stack.load_balancer() is None
    assert stack.prefix(sgc.uid) is None
    assert not any(n.startswith("egressgateway-") for n in stack.vmss_ip_config_names())
    # Finalizer removed: the API server finished the deletion.
    assert await stack.get_sgc("doomed") is None
    assert await stack.secret_names() == []
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


async def test_two_configurations_of_one_pool_deleted_together_leave_nothing(
    stack: Stack,
) -> None:
    spec = stack.vmss_spec()
    first = await stack.create_sgc("first-gone", spec)
    second = await stack.create_sgc("second-gone", spec)
    statuses = await asyncio.gather(
        stack.apply(SpecDelivery(sgc=first, generation=1, spec=spec)),
        stack.apply(SpecDelivery(sgc=second, generation=1, spec=spec)),
    )
    assert [s.phase for s in statuses] == ["Ready", "Ready"], [s.message for s in statuses]
    # The first deletion's scale set write is held back (throttled) while the second deletion
    # runs: removing the pool's last rules before their ipConfigs took the backend pool away
    # under the scale set, and the held-back write then referenced a pool that was gone.
    held = stack.arm.faults.add(
        effect="throttle",
        method="PUT",
        resource_type="virtualMachineScaleSets",
        count=1,
        retry_after=3,
    )
    stack.arm.request_log.clear()
    for sgc in (first, second):
        await stack.delete_sgc(sgc.name)
    handles = [await stack.deliver(SpecDelivery(sgc=first, generation=1, spec=spec, deleting=True))]
    await wait_for(lambda: asyncio.sleep(0, held.hits == 1), what="the held-back VMSS write")
    handles.append(
        await stack.deliver(SpecDelivery(sgc=second, generation=1, spec=spec, deleting=True))
    )

    finals = await asyncio.gather(*(h.result() for h in handles))

    assert [f.phase for f in finals] == ["Deleted", "Deleted"], [f.message for f in finals]
    refused = [e for e in stack.arm.request_log.entries if e.status == 400]
    assert refused == []
    assert stack.load_balancer() is None
    assert not any(n.startswith("egressgateway-") for n in stack.vmss_ip_config_names())
    assert stack.prefix(first.uid) is None and stack.prefix(second.uid) is None
    await stack.record("delete_two_on_one_pool", first, single_writers=True)


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
    assert await stack.secret_names() == []
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

    await stack.delete_sgc("byo")
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


# --- Private VM-pool mode -------------------------------------------------------------------------


def nic_ip_configs(stack: Stack, nic_name: str) -> dict[str, str]:
    """ipConfiguration name -> private IP of one NIC, as ARM returns it."""
    nic = stack.arm_resource(
        f"{stack.rg_id}/providers/Microsoft.Network/networkInterfaces/{nic_name}"
    )
    assert nic is not None
    return {
        ip["name"]: ip["properties"].get("privateIPAddress", "")
        for ip in nic["properties"]["ipConfigurations"]
    }


async def activity_completions(stack: Stack, sgc: SgcRef, prefix: str) -> int:
    """How many activities whose ID starts with `prefix` the configuration's workflow completed."""
    history = await stack.handle(sgc).fetch_history()
    scheduled: dict[int, str] = {}
    done = 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_id
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            started = event.activity_task_completed_event_attributes.scheduled_event_id
            done += scheduled.get(started, "").startswith(prefix)
    return done


@pytest.mark.parametrize(
    "stack_options", [StackOptions(drift_check_seconds=1, batch_quiet=timedelta(0))]
)
async def test_private_vm_pool_mode_keeps_its_private_ips(stack: Stack) -> None:
    vm_pool = stack.topology.vm_pools[0]
    spec = StaticGatewayConfigurationSpec(
        gateway_nodepool_name=vm_pool.pool_name, provision_public_ips=False
    )
    sgc = await stack.create_sgc("private", spec)
    ours = resource_names.managed_resource_name(sgc.uid)
    nic_names = [vm_pool.nic_name(i) for i in range(vm_pool.vm_count)]

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Ready", status.message
    private_ips = {nic: nic_ip_configs(stack, nic)[ours] for nic in nic_names}
    assert all(private_ips.values()) and len(set(private_ips.values())) == vm_pool.vm_count
    obj = await stack.get_sgc("private")
    assert obj is not None
    st = obj["status"]
    assert set(st["egressIpPrefix"].split(",")) == set(private_ips.values())
    profile = st["gatewayServerProfile"]
    assert profile["ip"] == status.frontend_ip and profile["port"] == 6000
    assert profile["publicKey"]
    assert profile["privateKeySecretRef"]["name"] == resource_names.gateway_secret_name(sgc.uid)
    assert condition(obj, "Ready")["status"] == "True"
    assert stack.prefix(sgc.uid) is None  # private mode: no public IP prefix at all

    # A drift pass re-reads the NICs and keeps the addresses.
    first_passes = await activity_completions(stack, sgc, "ipconfig/ensure/")

    async def drift_pass_done() -> bool:
        return await activity_completions(stack, sgc, "ipconfig/ensure/") > first_passes

    await wait_for(drift_pass_done, timeout=30, what="a drift pass over the VM pool")
    assert {nic: nic_ip_configs(stack, nic)[ours] for nic in nic_names} == private_ips

    # A spec update (another excluded CIDR) keeps them too.
    updated = StaticGatewayConfigurationSpec(
        gateway_nodepool_name=vm_pool.pool_name,
        provision_public_ips=False,
        exclude_cidrs=("10.0.0.0/8",),
    )
    again = await stack.apply(SpecDelivery(sgc=sgc, generation=2, spec=updated))
    assert again.phase == "Ready", again.message
    assert {nic: nic_ip_configs(stack, nic)[ours] for nic in nic_names} == private_ips
    assert set(again.egress_ip_prefix.split(",")) == set(private_ips.values())
    obj = await stack.get_sgc("private")
    assert obj is not None and obj["status"]["observedGeneration"] == 2
    assert obj["status"]["egressIpPrefix"] == st["egressIpPrefix"]

    # Deletion removes our ipConfig from every NIC (the NICs themselves are the pool's).
    await stack.delete_sgc("private")
    final = await stack.apply(SpecDelivery(sgc=sgc, generation=2, spec=updated, deleting=True))
    assert final.phase == "Deleted"
    for nic in nic_names:
        assert ours not in nic_ip_configs(stack, nic)
    assert stack.load_balancer() is None
    assert await stack.get_sgc("private") is None
    await record_histories(
        stack,
        "private_vm_pool",
        {"config": config_id(sgc), **single_writer_ids(stack, vm_pool.pool_name)},
    )
