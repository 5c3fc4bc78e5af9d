"""Every class of invalid spec, delivered straight to the workflow as a cluster with an older CRD
would deliver it: Degraded, a Warning Event naming the field, and not one Azure request
(tests/fixtures/workflow_stack.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from contracts import kube_names
from contracts.gateway_config import GatewayVmssProfile, StaticGatewayConfigurationSpec
from contracts.workflow_io import SpecDelivery
from tests.fixtures.sgc_status import condition
from tests.fixtures.workflow_stack import (
    Stack,
    StackOptions,
    config_id,
    record_histories,
)


@pytest.fixture
def stack_options() -> StackOptions:
    # No batching window: these scenarios send one request at a time to each single writer, and
    # the single writers then schedule no timer (a sub-second server timer fires about 1 s late).
    return StackOptions(batch_quiet=timedelta(0))


PREFIX_ID = (
    "/subscriptions/9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b/resourceGroups/egressgw-dev"
    "/providers/Microsoft.Network/publicIPPrefixes/users-prefix"
)

SpecOf = Callable[[Stack], StaticGatewayConfigurationSpec]

# case -> (the invalid spec, text naming the field that the user must read)
INVALID: dict[str, tuple[SpecOf, str]] = {
    "both-pool-selectors": (
        lambda s: s.vmss_spec(gateway_nodepool_name=s.vmss_pool.pool_name),
        "spec.gatewayNodepoolName",
    ),
    "no-pool-selector": (
        lambda s: StaticGatewayConfigurationSpec(),
        "spec.gatewayNodepoolName",
    ),
    "profile-without-vmss-name": (
        lambda s: StaticGatewayConfigurationSpec(
            gateway_vmss_profile=GatewayVmssProfile(s.topology.resource_group, "", 31)
        ),
        "spec.gatewayVmssProfile.vmssName",
    ),
    "profile-without-resource-group": (
        lambda s: StaticGatewayConfigurationSpec(
            gateway_vmss_profile=GatewayVmssProfile("", s.vmss_pool.vmss_name, 31)
        ),
        "spec.gatewayVmssProfile.vmssResourceGroup",
    ),
    "prefix-id-without-public-ips": (
        lambda s: s.vmss_spec(provision_public_ips=False, public_ip_prefix_id=PREFIX_ID),
        "spec.publicIpPrefixId",
    ),
    "malformed-prefix-id": (
        lambda s: s.vmss_spec(public_ip_prefix_id="/subscriptions/x/publicIPPrefixes/p"),
        "spec.publicIpPrefixId",
    ),
    "bad-exclude-cidr": (
        lambda s: s.vmss_spec(exclude_cidrs=("10.0.0.0/8", "10.1.2.3")),
        "spec.excludeCidrs[1]",
    ),
    "prefix-size-too-large": (
        lambda s: StaticGatewayConfigurationSpec(
            gateway_vmss_profile=GatewayVmssProfile(
                s.topology.resource_group, s.vmss_pool.vmss_name, 32
            )
        ),
        "spec.gatewayVmssProfile.publicIpPrefixSize",
    ),
    "prefix-size-negative": (
        lambda s: StaticGatewayConfigurationSpec(
            gateway_vmss_profile=GatewayVmssProfile(
                s.topology.resource_group, s.vmss_pool.vmss_name, -1
            )
        ),
        "spec.gatewayVmssProfile.publicIpPrefixSize",
    ),
    "bad-default-route": (
        lambda s: s.vmss_spec(default_route="sideways"),
        "spec.defaultRoute",
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
async def test_invalid_spec_class_is_degraded_with_no_azure_request(
    stack: Stack, case: str
) -> None:
    make_spec, field = INVALID[case]
    # The object holds a valid spec (today's CRD would refuse the invalid one); the delivery
    # carries what an older CRD let through.
    sgc = await stack.create_sgc(case, stack.vmss_spec())
    stack.arm.request_log.clear()

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=make_spec(stack)))

    assert status.phase == "Invalid"
    assert field in status.message
    assert stack.arm.request_log.entries == []
    obj = await stack.get_sgc(case)
    assert obj is not None
    degraded = condition(obj, "Degraded")
    assert degraded["status"] == "True"
    assert degraded["reason"] == kube_names.REASON_INVALID_SPEC and field in degraded["message"]
    assert condition(obj, "Ready")["status"] == "False"
    assert obj["status"]["observedGeneration"] == 1
    warnings = [
        m
        for t, r, m in await stack.events(sgc)
        if (t, r) == (kube_names.EVENT_TYPE_WARNING, kube_names.EVENT_INVALID_SPEC)
    ]
    assert len(warnings) == 1 and field in warnings[0]
    # Nothing was created for it either: no key Secret.
    assert await stack.secret_names() == []
    if case == "bad-default-route":
        await record_histories(stack, "invalid_default_route", {"config": config_id(sgc)})
