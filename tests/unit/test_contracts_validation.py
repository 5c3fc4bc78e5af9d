"""validate_spec beyond the shared CRD table (tests/integration/test_crd_validation.py): the
CIDR syntax Kubernetes' isCIDR() accepts, schema bounds, and messages a user can act on."""

from __future__ import annotations

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
