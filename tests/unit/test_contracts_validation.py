"""validate_spec beyond the shared CRD table (tests/integration/test_crd_validation.py): the
CIDR syntax Kubernetes' isCIDR() accepts, schema bounds, and messages a user can act on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contracts import spec_validation as sv
from contracts.gateway_config import GatewayVmssProfile, StaticGatewayConfigurationSpec


@pytest.mark.parametrize(
    "text",
    [
        "10.0.0.0/8",
        "10.1.2.3/8",  # host bits set: Go's netip.ParsePrefix accepts them
        "0.0.0.0/0",
        "169.254.169.254/32",
        "::/0",
        "fd00::/8",
        "2001:db8::1/128",
        "::1.2.3.4/128",  # IPv4-compatible (not mapped) IPv6 is an IPv6 prefix
    ],
)
def test_is_cidr_accepts(text: str) -> None:
    assert sv.is_cidr(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "10.0.0.1",  # an address is not a prefix
        "10.0.0.0/33",
        "fd00::/129",
        "10.0.0.0/08",  # netip.ParsePrefix refuses leading zeros in the length
        "10.0.0.0/+8",
        "10.0.0.0/255.0.0.0",  # netmask notation
        "010.0.0.0/8",  # leading zeros in an octet
        "10.0.0/8",
        "fe80::%eth0/64",  # zones are not allowed in prefixes
        "::ffff:10.0.0.0/104",  # IPv4-mapped IPv6: rejected by the Kubernetes CIDR library
        " 10.0.0.0/8",
        "10.0.0.0/8 ",
        "10.0.0.0/",
    ],
)
def test_is_cidr_rejects(text: str) -> None:
    assert not sv.is_cidr(text)


def _errors(spec: StaticGatewayConfigurationSpec) -> list[str]:
    return [str(error) for error in sv.validate_spec(spec)]


def test_length_bounds_are_reported_per_field() -> None:
    spec = StaticGatewayConfigurationSpec(
        gateway_vmss_profile=GatewayVmssProfile("r" * 91, "v" * 65, 31),
        public_ip_prefix_id="/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/"
        "publicIPPrefixes/" + "p" * 1024,
        exclude_cidrs=("10.0.0.0/8",) * 257,
    )
    fields = {error.field for error in sv.validate_spec(spec)}
    assert fields == {
        "spec.gatewayVmssProfile.vmssResourceGroup",
        "spec.gatewayVmssProfile.vmssName",
        "spec.publicIpPrefixId",
        "spec.excludeCidrs",
    }
    assert "spec.gatewayNodepoolName: Too long: may not be more than 63 bytes" in _errors(
        StaticGatewayConfigurationSpec(gateway_nodepool_name="n" * 64)
    )


def test_every_problem_is_reported_at_once() -> None:
    spec = StaticGatewayConfigurationSpec(
        gateway_nodepool_name="gwpool",
        gateway_vmss_profile=GatewayVmssProfile(public_ip_prefix_size=40),
        default_route="everywhere",
        provision_public_ips=False,
        public_ip_prefix_id="prefix",
        exclude_cidrs=("10.0.0.0/8", "bad"),
    )
    assert sorted(error.field for error in sv.validate_spec(spec)) == [
        "spec",
        "spec.defaultRoute",
        "spec.excludeCidrs[1]",
        "spec.gatewayVmssProfile.publicIpPrefixSize",
        "spec.gatewayVmssProfile.vmssName",
        "spec.gatewayVmssProfile.vmssResourceGroup",
        "spec.publicIpPrefixId",
        "spec.publicIpPrefixId",
    ]


def test_field_errors_read_like_the_api_servers() -> None:
    (error,) = sv.validate_spec(
        StaticGatewayConfigurationSpec(gateway_nodepool_name="gwpool", default_route="internet")
    )
    assert str(error) == (
        'spec.defaultRoute: Unsupported value: "internet": supported values:'
        ' "azureNetworking", "staticEgressGateway"'
    )


def test_errors_describe_in_one_line_for_a_condition_message() -> None:
    spec = StaticGatewayConfigurationSpec(gateway_vmss_profile=GatewayVmssProfile("rg", "", 31))
    assert sv.describe_field_errors(sv.validate_spec(spec)) == (
        f"spec.gatewayVmssProfile.vmssName: {sv.MSG_VMSS_NAME_REQUIRED}"
    )
    assert sv.describe_field_errors([]) == ""


# --- What only the controller refuses (the CRD, like upstream's, accepts it) --------------------

SUBSCRIPTION = "9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b"
SIZE = "spec.gatewayVmssProfile.publicIpPrefixSize"


def _prefix_id(subscription: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/rg/providers/Microsoft.Network/"
        "publicIPPrefixes/users"
    )


def _profile(size: int) -> GatewayVmssProfile:
    return GatewayVmssProfile("rg", "vmss", size)


def _refused(spec: StaticGatewayConfigurationSpec) -> list[str]:
    return [str(error) for error in sv.controller_errors(spec, SUBSCRIPTION)]


@pytest.mark.parametrize("size", [28, 29, 30, 31])
def test_the_prefix_sizes_azure_offers_are_accepted(size: int) -> None:
    assert _refused(StaticGatewayConfigurationSpec(gateway_vmss_profile=_profile(size))) == []


@pytest.mark.parametrize("size", [0, 1, 24, 27])
def test_a_managed_prefix_size_azure_does_not_offer_is_refused(size: int) -> None:
    spec = StaticGatewayConfigurationSpec(gateway_vmss_profile=_profile(size))
    assert sv.validate_spec(spec) == []  # the CRD accepts it, as upstream's does
    refused = _refused(spec)
    assert len(refused) == 1
    assert refused[0].startswith(f"{SIZE}: Invalid value: {size}: must be 28 to 31")


def test_a_prefix_size_in_private_mode_is_refused() -> None:
    spec = StaticGatewayConfigurationSpec(
        gateway_vmss_profile=_profile(31), provision_public_ips=False
    )
    assert _refused(spec) == [
        f"{SIZE}: Forbidden: 31: may only be set when spec.provisionPublicIps is true"
        " (private egress uses no public IP prefix)"
    ]
    unset = StaticGatewayConfigurationSpec(
        gateway_vmss_profile=_profile(0), provision_public_ips=False
    )
    assert _refused(unset) == []


def test_a_bring_your_own_prefix_is_only_compared_not_bounded() -> None:
    """The user's prefix may be any length Azure gave it; the pool's size must match it, which
    the controller checks by reading the prefix before its first write."""
    spec = StaticGatewayConfigurationSpec(
        gateway_vmss_profile=_profile(27), public_ip_prefix_id=_prefix_id(SUBSCRIPTION)
    )
    assert _refused(spec) == []
    unsized = replace(spec, gateway_vmss_profile=_profile(0))
    assert _refused(unsized) == [
        f"{SIZE}: Required value: must be the length of the prefix spec.publicIpPrefixId names"
        " (the scale set's gateways need one address each from it)"
    ]


def test_a_bring_your_own_prefix_in_another_subscription_is_refused() -> None:
    other = "00000000-0000-0000-0000-0000000000ff"
    spec = StaticGatewayConfigurationSpec(
        gateway_nodepool_name="gwpool", public_ip_prefix_id=_prefix_id(other)
    )
    refused = _refused(spec)
    assert len(refused) == 1
    assert refused[0].startswith("spec.publicIpPrefixId: Invalid value: the prefix is in")
    assert other in refused[0] and "the prefix must be in the same subscription" in refused[0]
    # Subscription IDs compare case-insensitively, as ARM's do.
    same = replace(spec, public_ip_prefix_id=_prefix_id(SUBSCRIPTION.upper()))
    assert _refused(same) == []


def test_refusals_are_the_crds_and_the_controllers() -> None:
    spec = StaticGatewayConfigurationSpec(
        gateway_nodepool_name="gwpool", gateway_vmss_profile=_profile(27)
    )
    fields = [error.field for error in sv.refusals(spec, SUBSCRIPTION)]
    assert fields == ["spec", SIZE]
