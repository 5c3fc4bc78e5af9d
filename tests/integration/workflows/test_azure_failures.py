"""Azure refusing a configuration, and Azure failing for a moment, on the real dev server and API
server with the ARM emulator (tests/fixtures/workflow_stack.py): a refusal is reported once, in
the status and a Warning Event, and leaves nothing behind; a transient failure of any write
converges.

Set EGRESSGW_RECORD_HISTORIES=1 to (re)write these runs' histories under tests/replay/next/;
tests/integration/test_workflows_replay.py replays every file there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from azure.mgmt.network.aio import NetworkManagementClient

from contracts import resource_names
from contracts.gateway_config import StaticGatewayConfigurationSpec
from contracts.workflow_io import SpecDelivery
from sim.arm.faults import FaultRule
from tests.fixtures.sgc_status import condition
from tests.fixtures.workflow_stack import (
    Stack,
    StackOptions,
    config_id,
    create_prefix,
    nothing_left_behind,
    one_pool_topology,
    record_histories,
    single_writer_ids,
)


@pytest.fixture
def stack_options() -> StackOptions:
    # No batching window: these scenarios send one request at a time to each single writer, and
    # the single writers then schedule no timer (a sub-second server timer fires about 1 s late).
    return StackOptions(batch_quiet=timedelta(0))


OTHER_SUBSCRIPTION = "00000000-0000-0000-0000-0000000000ff"


# --- Refusals -------------------------------------------------------------------------------------


async def _missing_pool(
    stack: Stack, network: NetworkManagementClient, credential: Any
) -> StaticGatewayConfigurationSpec:
    return StaticGatewayConfigurationSpec(gateway_nodepool_name="nosuchpool")


async def _byo_wrong_length(
    stack: Stack, network: NetworkManagementClient, credential: Any
) -> StaticGatewayConfigurationSpec:
    prefix_id = await create_prefix(network, stack, stack.topology.resource_group, "short", 30)
    return stack.vmss_spec(public_ip_prefix_id=prefix_id)


async def _quota_on_prefix_put(
    stack: Stack, network: NetworkManagementClient, credential: Any
) -> StaticGatewayConfigurationSpec:
    # Azure's answer when a subscription has used up its public IP quota; FaultRule is built
    # directly because the JSON fault API only offers 5xx for "error".
    stack.arm.faults.add(
        FaultRule(
            effect="error",
            method="PUT",
            resource_type="publicIPPrefixes",
            status=400,
            code="PublicIPCountLimitReached",
            message="Cannot create more than 10 public IP addresses for this subscription in"
            " this region.",
        )
    )
    return stack.vmss_spec()


# (setup, what the user reads, the Degraded reason, the Azure call that was refused or None).
# A bring-your-own prefix in another subscription is refused before any request
# (tests/integration/workflows/test_refusals_before_azure.py).
REFUSALS: dict[str, tuple[Any, str, str, tuple[str, str] | None]] = {
    "missing-pool": (_missing_pool, "nosuchpool", "GatewayPoolNotFound", None),
    "byo-wrong-length": (
        _byo_wrong_length,
        "is a /30 prefix, but the gateway pool needs a /31 prefix",
        "InvalidPublicIpPrefix",
        ("GET", "publicIPPrefixes"),
    ),
    "quota-on-prefix-put": (
        _quota_on_prefix_put,
        "Cannot create more than 10 public IP addresses",
        "AzureError",
        ("PUT", "publicIPPrefixes"),
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_azure_refusal_is_reported_once_and_leaves_nothing(
    stack: Stack,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
    arm_async_credential: Any,
    case: str,
) -> None:
    setup, expected, reason, refused_call = REFUSALS[case]
    network = await async_network_client()
    spec = await setup(stack, network, arm_async_credential)
    sgc = await stack.create_sgc(case, spec)
    stack.arm.request_log.clear()

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Degraded"
    assert expected in status.message
    obj = await stack.get_sgc(case)
    assert obj is not None
    degraded = condition(obj, "Degraded")
    assert degraded["status"] == "True" and expected in degraded["message"]
    assert degraded["reason"] == reason
    assert condition(obj, "Ready")["status"] == "False"
    warnings = [m for t, r, m in await stack.events(sgc) if t == "Warning"]
    assert any(expected in m for m in warnings)
    log = stack.arm.request_log
    if refused_call is None:
        # Refused from one look at the resource group's scale sets and VMs, not retried, and
        # before anything was created.
        assert log.count("GET", "virtualMachineScaleSets") == 1
        assert log.count("GET", "virtualMachines") == 1
        assert log.writes() == 0
    else:
        assert log.count(*refused_call) == 1  # not retried
    if case == "byo-wrong-length":
        assert log.writes() == 0  # read before the load balancer rule is written
    await nothing_left_behind(stack, sgc)
    if spec.public_ip_prefix_id:
        assert stack.arm_resource(spec.public_ip_prefix_id) is not None  # the user's, untouched
    if case in ("missing-pool", "quota-on-prefix-put"):
        await record_histories(
            stack, f"refused_{case.replace('-', '_')}", {"config": config_id(sgc)}
        )


FOUR_INSTANCES = one_pool_topology("aks-gwpool-87654321-vmss", instance_count=4, ip_prefix_size=31)


@pytest.mark.parametrize("arm_topology", [FOUR_INSTANCES])
async def test_prefix_too_small_for_the_pool_is_refused_without_azure_writes(
    stack: Stack,
) -> None:
    spec = stack.vmss_spec()  # /31: two addresses for four instances
    sgc = await stack.create_sgc("crowded", spec)
    stack.arm.request_log.clear()

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Degraded"
    expected = "a /31 public IP prefix holds 2 addresses but gateway pool"
    assert expected in status.message and "4 instances" in status.message
    obj = await stack.get_sgc("crowded")
    assert obj is not None and expected in condition(obj, "Degraded")["message"]
    assert condition(obj, "Degraded")["reason"] == "PublicIpPrefixTooSmall"
    assert stack.arm.request_log.writes() == 0
    await nothing_left_behind(stack, sgc)


# --- Transient failures ---------------------------------------------------------------------------

TARGETS = (
    ("PUT", "loadBalancers"),
    ("PUT", "virtualMachineScaleSets"),
    ("PUT", "virtualMachineScaleSets/virtualMachines"),  # an instance update
)
FAULTS: dict[str, dict[str, Any]] = {
    "500": {"effect": "error", "status": 500},
    "503-retry-after": {"effect": "error", "status": 503, "retry_after": 1},
    "failed-operation": {"effect": "fail-operation"},
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_transient_azure_failures_converge(stack: Stack, fault: str) -> None:
    rules = [
        stack.arm.faults.add(method=method, resource_type=kind, count=1, **FAULTS[fault])
        for method, kind in TARGETS
    ]
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc(f"bumpy-{fault}", spec)

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Ready", status.message
    assert [rule.hits for rule in rules] == [1, 1, 1]
    obj = await stack.get_sgc(f"bumpy-{fault}")
    assert obj is not None and condition(obj, "Ready")["status"] == "True"
    assert obj["status"]["egressIpPrefix"] == status.egress_ip_prefix
    lb = stack.load_balancer()
    assert lb is not None
    assert [r["name"] for r in lb["properties"]["loadBalancingRules"]] == [sgc.uid]
    assert resource_names.managed_resource_name(sgc.uid) in stack.vmss_ip_config_names()
    await record_histories(
        stack,
        f"transient_{fault.replace('-', '_')}",
        {"config": config_id(sgc), **single_writer_ids(stack, stack.vmss_pool.vmss_name)},
    )


# --- Answers lost after Azure accepted the write --------------------------------------------------

LOST_ANSWERS = (
    ("PUT", "loadBalancers"),
    ("PUT", "publicIPPrefixes"),
    ("PUT", "virtualMachineScaleSets"),
    ("PUT", "virtualMachineScaleSets/virtualMachines"),  # one of the instance updates
)


async def test_a_write_whose_answer_is_lost_reaches_azure_once(stack: Stack) -> None:
    # Every operation runs a while, so the retry finds the lost write's operation still running.
    stack.arm.set_latency(
        {f"{method} {kind}": 2.0 for method, kind in LOST_ANSWERS}
        | {"DELETE publicIPPrefixes": 2.0, "DELETE loadBalancers": 2.0}
    )
    drops = [
        stack.arm.faults.add(effect="drop-after-accept", method=method, resource_type=kind, count=1)
        for method, kind in LOST_ANSWERS
    ]
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc("lost-answers", spec)
    log = stack.arm.request_log
    log.clear()

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Ready", status.message
    assert [drop.hits for drop in drops] == [1, 1, 1, 1]
    # Each write reached Azure once: the retries read, waited for the running operation and
    # found nothing left to write.
    print(
        "DEBUG",
        [(e.method, e.resource_type, e.status, e.if_match) for e in log.entries if not e.is_poll],
    )
    assert log.count("PUT", "loadBalancers") == 1
    assert log.count("PUT", "publicIPPrefixes") == 1
    assert log.count("PUT", "virtualMachineScaleSets") == 1
    assert log.count("PUT", "virtualMachineScaleSets/virtualMachines") == (
        stack.vmss_pool.instance_count
    )
    assert [e.path for e in log.entries if e.status == 409] == []
    assert resource_names.managed_resource_name(sgc.uid) in stack.vmss_ip_config_names()

    deletes = [
        stack.arm.faults.add(
            effect="drop-after-accept", method="DELETE", resource_type=kind, count=1
        )
        for kind in ("publicIPPrefixes", "loadBalancers")
    ]
    log.clear()
    await stack.delete_sgc("lost-answers")
    handle = await stack.deliver(SpecDelivery(sgc=sgc, generation=1, spec=spec, deleting=True))
    final = await handle.result()

    assert final.phase == "Deleted", final.message
    assert [drop.hits for drop in deletes] == [1, 1]
    assert log.count("DELETE", "publicIPPrefixes") == 1
    assert log.count("DELETE", "loadBalancers") == 1
    assert [e.path for e in log.entries if e.status == 409] == []
    await nothing_left_behind(stack, sgc)
