"""Nothing that can never provision reaches Azure: what the CRD accepts (as upstream's does) but
Azure would refuse after earlier writes is refused by the workflow before its first Azure write,
with a condition that names the field and a reason that says where the refusal came from; and a
name as long as Kubernetes allows provisions like any other. On the real dev server, API server
and ARM emulator (tests/fixtures/workflow_stack.py), counting the emulator's writes.

Set EGRESSGW_RECORD_HISTORIES=1 to (re)write these runs' histories under tests/replay/next/.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from azure.mgmt.network.aio import NetworkManagementClient

from contracts import kube_names, resource_names
from contracts.gateway_config import GatewayVmssProfile, StaticGatewayConfigurationSpec
from contracts.workflow_io import SpecDelivery
from tests.fixtures.sgc_status import condition
from tests.fixtures.workflow_stack import (
    Stack,
    StackOptions,
    config_id,
    create_prefix,
    nothing_left_behind,
    one_pool_topology,
    record_histories,
)

SIZE = "spec.gatewayVmssProfile.publicIpPrefixSize"
PREFIX_ID = "spec.publicIpPrefixId"
OTHER_SUBSCRIPTION = "00000000-0000-0000-0000-0000000000ff"


@pytest.fixture
def stack_options() -> StackOptions:
    # No batching window: one request at a time to each single writer (no sub-second timers).
    return StackOptions(batch_quiet=timedelta(0))


def _with_size(stack: Stack, size: int, **fields: Any) -> StaticGatewayConfigurationSpec:
    profile = GatewayVmssProfile(stack.topology.resource_group, stack.vmss_pool.vmss_name, size)
    return StaticGatewayConfigurationSpec(gateway_vmss_profile=profile, **fields)


SpecOf = Callable[[Stack], StaticGatewayConfigurationSpec]

# case -> (a spec the CRD accepts, the field the condition must name, the words it must say)
REFUSED_BY_VALIDATION: dict[str, tuple[SpecOf, str, str]] = {
    # Made 7 ARM writes before Azure said no (issue 13).
    "prefix-size-27": (lambda s: _with_size(s, 27), SIZE, "must be 28 to 31"),
    "prefix-size-0-public": (lambda s: _with_size(s, 0), SIZE, "must be 28 to 31"),
    "prefix-size-in-private-mode": (
        lambda s: _with_size(s, 31, provision_public_ips=False),
        SIZE,
        "may only be set when spec.provisionPublicIps is true",
    ),
    "byo-prefix-other-subscription": (
        lambda s: s.vmss_spec(
            public_ip_prefix_id=f"/subscriptions/{OTHER_SUBSCRIPTION}/resourceGroups/elsewhere"
            "/providers/Microsoft.Network/publicIPPrefixes/theirs"
        ),
        PREFIX_ID,
        "the prefix must be in the same subscription",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED_BY_VALIDATION))
async def test_a_spec_that_can_never_provision_is_refused_with_no_azure_request(
    stack: Stack, case: str
) -> None:
    make_spec, field, words = REFUSED_BY_VALIDATION[case]
    spec = make_spec(stack)
    # The object is created through the API server: today's CRD accepts it.
    sgc = await stack.create_sgc(case, spec)
    stack.arm.request_log.clear()

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Invalid", status.message
    assert f"{field}: " in status.message and words in status.message
    log = stack.arm.request_log
    assert log.entries == [], [(e.method, e.path) for e in log.entries]
    obj = await stack.get_sgc(case)
    assert obj is not None
    degraded = condition(obj, "Degraded")
    assert degraded["status"] == "True"
    assert degraded["reason"] == kube_names.REASON_INVALID_SPEC
    assert field in degraded["message"] and words in degraded["message"]
    assert condition(obj, "Ready")["status"] == "False"
    warnings = [
        m
        for t, r, m in await stack.events(sgc)
        if (t, r) == (kube_names.EVENT_TYPE_WARNING, kube_names.EVENT_INVALID_SPEC)
    ]
    assert len(warnings) == 1 and field in warnings[0]
    assert await stack.secret_names() == []  # not even the key Secret
    if case == "prefix-size-27":
        await record_histories(stack, "refused_prefix_size_27", {"config": config_id(sgc)})


async def test_a_missing_bring_your_own_prefix_is_read_before_any_write(stack: Stack) -> None:
    """The prefix is read before the load balancer rule is written (it was written alongside
    and then compensated: 2 writes for nothing)."""
    missing = resource_names.public_ip_prefix_id(
        stack.topology.subscription_id, stack.topology.resource_group, "never-made"
    )
    spec = stack.vmss_spec(public_ip_prefix_id=missing)
    sgc = await stack.create_sgc("byo-missing", spec)
    stack.arm.request_log.clear()

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Degraded"
    assert f"{PREFIX_ID} {missing} does not exist" in status.message
    log = stack.arm.request_log
    assert log.writes() == 0, [(e.method, e.path) for e in log.entries if e.method != "GET"]
    assert log.count("GET", "publicIPPrefixes") == 1  # refused, not retried
    obj = await stack.get_sgc("byo-missing")
    assert obj is not None
    degraded = condition(obj, "Degraded")
    assert degraded["reason"] == kube_names.REASON_INVALID_PUBLIC_IP_PREFIX
    assert PREFIX_ID in degraded["message"]
    await nothing_left_behind(stack, sgc)
    await record_histories(stack, "refused_byo_prefix_missing", {"config": config_id(sgc)})


async def test_a_bring_your_own_prefix_of_another_length_costs_no_write(
    stack: Stack,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
) -> None:
    network = await async_network_client()
    rg = stack.topology.resource_group
    prefix_id = await create_prefix(network, stack, rg, "short", 30)
    spec = stack.vmss_spec(public_ip_prefix_id=prefix_id)  # the pool's size is 31
    sgc = await stack.create_sgc("byo-short", spec)
    stack.arm.request_log.clear()

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Degraded"
    assert "is a /30 prefix, but the gateway pool needs a /31 prefix" in status.message
    assert stack.arm.request_log.writes() == 0
    obj = await stack.get_sgc("byo-short")
    assert obj is not None
    assert condition(obj, "Degraded")["reason"] == kube_names.REASON_INVALID_PUBLIC_IP_PREFIX
    await nothing_left_behind(stack, sgc)
    assert stack.arm_resource(prefix_id) is not None  # the user's, untouched


TAGGED_27 = one_pool_topology("aks-gwpool-27272727-vmss", instance_count=2, ip_prefix_size=27)


@pytest.mark.parametrize("arm_topology", [TAGGED_27])
async def test_a_nodepool_tagged_with_a_size_azure_does_not_offer_is_refused_before_writes(
    stack: Stack,
) -> None:
    spec = StaticGatewayConfigurationSpec(gateway_nodepool_name="gwpool")
    sgc = await stack.create_sgc("tagged-27", spec)
    stack.arm.request_log.clear()

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Degraded"
    expected = f"asks for a /27 public IP prefix (tag {resource_names.TAG_GATEWAY_IP_PREFIX_SIZE})"
    assert expected in status.message and "Azure offers /28 to /31" in status.message
    assert stack.arm.request_log.writes() == 0
    obj = await stack.get_sgc("tagged-27")
    assert obj is not None
    assert condition(obj, "Degraded")["reason"] == kube_names.REASON_INVALID_GATEWAY_POOL
    await nothing_left_behind(stack, sgc)
    await record_histories(stack, "refused_prefix_size_tag", {"config": config_id(sgc)})


async def test_a_253_character_name_provisions(stack: Stack) -> None:
    """Object names go up to 253 characters, label values to 63: the key Secret's owner label
    is derived, the whole name kept in an annotation, and the configuration is Ready."""
    name = ("long-" + "n" * 300)[:252] + "z"
    assert len(name) == 253
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc(name, spec)

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Ready", status.message
    obj = await stack.get_sgc(name)
    assert obj is not None and condition(obj, "Ready")["status"] == "True"
    secret = await stack.core.read_namespaced_secret(
        resource_names.gateway_secret_name(sgc.uid), stack.secret_namespace
    )
    label = secret.metadata.labels[kube_names.SECRET_OWNER_NAME_LABEL]
    assert len(label) == 63 and label == resource_names.owner_name_label_value(name)
    assert secret.metadata.annotations[kube_names.SECRET_OWNER_NAME_ANNOTATION] == name
    reasons = [reason for _, reason, _ in await stack.events(sgc)]
    assert kube_names.EVENT_RECONCILED in reasons

    await stack.delete_sgc(name)
    gone = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec, deleting=True))
    assert gone.phase == "Deleted", gone.message
    await nothing_left_behind(stack, sgc)
