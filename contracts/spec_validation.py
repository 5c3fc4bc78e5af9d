"""Validation of a StaticGatewayConfiguration spec: rule for rule what the CRD enforces, then what
only the controller refuses (`controller_errors`: accepted by the CRD, as by upstream's, but it
can never provision).

The CRD (deploy/crds/) rejects invalid specs at the API server with its schema and CEL rules;
`validate_spec` repeats those checks so that the controller also refuses, with the same messages,
a spec admitted by an older CRD (or by a cluster too old for some rules). The messages below are
the CEL rules' `message` values, and a unit test keeps the two files in step.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

from contracts.gateway_config import DefaultRoute, StaticGatewayConfigurationSpec

# Schema bounds. Besides matching Azure's own limits they bound the CEL cost estimate.
MAX_NODEPOOL_NAME_LENGTH: Final = 63
MAX_RESOURCE_GROUP_LENGTH: Final = 90
MAX_VMSS_NAME_LENGTH: Final = 64
MAX_PUBLIC_IP_PREFIX_ID_LENGTH: Final = 1024
MAX_EXCLUDE_CIDRS: Final = 256
MAX_CIDR_LENGTH: Final = 64
MIN_PUBLIC_IP_PREFIX_SIZE: Final = 0
MAX_PUBLIC_IP_PREFIX_SIZE: Final = 31

# The CRD's CEL `message`s, verbatim.
MSG_EXACTLY_ONE_POOL: Final = (
    "exactly one of spec.gatewayNodepoolName and spec.gatewayVmssProfile must be set"
    " (an empty gatewayVmssProfile counts as unset)"
)
MSG_VMSS_RESOURCE_GROUP_REQUIRED: Final = (
    "spec.gatewayVmssProfile.vmssResourceGroup must be set when spec.gatewayVmssProfile is given"
)
MSG_VMSS_NAME_REQUIRED: Final = (
    "spec.gatewayVmssProfile.vmssName must be set when spec.gatewayVmssProfile is given"
)
MSG_PREFIX_ID_NEEDS_PUBLIC_IPS: Final = (
    "spec.publicIpPrefixId can only be set when spec.provisionPublicIps is true"
)
MSG_PREFIX_ID_SHAPE: Final = (
    "spec.publicIpPrefixId must be a public IP prefix resource ID like /subscriptions/<id>"
    "/resourceGroups/<group>/providers/Microsoft.Network/publicIPPrefixes/<name>"
)
MSG_EXCLUDE_CIDR: Final = "spec.excludeCidrs entries must be CIDRs like 10.0.0.0/8 or fd00::/8"

# The same expression the CRD's CEL rule uses (RE2 and Python re agree on it).
PUBLIC_IP_PREFIX_ID_PATTERN: Final = (
    "(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft[.]Network"
    "/publicIPPrefixes/[^/]+$"
)
_PREFIX_ID_RE: Final = re.compile(PUBLIC_IP_PREFIX_ID_PATTERN)
_PREFIX_LENGTH_RE: Final = re.compile(r"0|[1-9][0-9]{0,2}")


@dataclass(frozen=True)
class FieldError:
    field: str  # path as the API server reports it, e.g. "spec.gatewayVmssProfile.vmssName"
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def is_cidr(text: str) -> bool:
    """Kubernetes CEL `isCIDR()`: Go netip.ParsePrefix, minus IPv4-mapped IPv6 addresses.

    Host bits may be set (as in Go's ParsePrefix); the prefix length is plain decimal without
    leading zeros; zones and netmask notation are not CIDRs.
    """
    address, slash, length = text.partition("/")
    if not slash or "%" in address or not _PREFIX_LENGTH_RE.fullmatch(length):
        return False
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    if isinstance(network, ipaddress.IPv6Network):
        return network.network_address.ipv4_mapped is None
    return True


def _too_long(field: str, value: str, limit: int) -> list[FieldError]:
    if len(value.encode()) <= limit:
        return []
    return [FieldError(field, f"Too long: may not be more than {limit} bytes")]


def _schema_errors(spec: StaticGatewayConfigurationSpec) -> list[FieldError]:
    errors = _too_long(
        "spec.gatewayNodepoolName", spec.gateway_nodepool_name, MAX_NODEPOOL_NAME_LENGTH
    )
    profile = spec.gateway_vmss_profile
    if profile is not None:
        errors += _too_long(
            "spec.gatewayVmssProfile.vmssResourceGroup",
            profile.vmss_resource_group,
            MAX_RESOURCE_GROUP_LENGTH,
        )
        errors += _too_long(
            "spec.gatewayVmssProfile.vmssName", profile.vmss_name, MAX_VMSS_NAME_LENGTH
        )
        size = profile.public_ip_prefix_size
        if size < MIN_PUBLIC_IP_PREFIX_SIZE:
            errors.append(
                FieldError(
                    "spec.gatewayVmssProfile.publicIpPrefixSize",
                    f"Invalid value: {size}: should be greater than or equal to"
                    f" {MIN_PUBLIC_IP_PREFIX_SIZE}",
                )
            )
        if size > MAX_PUBLIC_IP_PREFIX_SIZE:
            errors.append(
                FieldError(
                    "spec.gatewayVmssProfile.publicIpPrefixSize",
                    f"Invalid value: {size}: should be less than or equal to"
                    f" {MAX_PUBLIC_IP_PREFIX_SIZE}",
                )
            )
    supported = [route.value for route in DefaultRoute]
    if spec.default_route not in supported:
        listed = ", ".join(f'"{value}"' for value in supported)
        errors.append(
            FieldError(
                "spec.defaultRoute",
                f'Unsupported value: "{spec.default_route}": supported values: {listed}',
            )
        )
    errors += _too_long(
        "spec.publicIpPrefixId", spec.public_ip_prefix_id, MAX_PUBLIC_IP_PREFIX_ID_LENGTH
    )
    if len(spec.exclude_cidrs) > MAX_EXCLUDE_CIDRS:
        errors.append(
            FieldError(
                "spec.excludeCidrs",
                f"Too many: {len(spec.exclude_cidrs)}: must have at most {MAX_EXCLUDE_CIDRS} items",
            )
        )
    for index, cidr in enumerate(spec.exclude_cidrs):
        errors += _too_long(f"spec.excludeCidrs[{index}]", cidr, MAX_CIDR_LENGTH)
    return errors


def rule_errors(spec: StaticGatewayConfigurationSpec) -> list[FieldError]:
    """The CRD's CEL rules alone, with their `message`s (the API server checks them once the
    schema's types, lengths and enums hold; egressgw plan reports them the same way)."""
    errors: list[FieldError] = []
    # Empty strings count as unset, and an all-empty VMSS profile as absent, as upstream does.
    has_nodepool = spec.gateway_nodepool_name != ""
    if has_nodepool == (spec.vmss_profile is not None):
        errors.append(FieldError("spec", MSG_EXACTLY_ONE_POOL))
    profile = spec.vmss_profile
    if profile is not None:
        if not profile.vmss_resource_group:
            errors.append(
                FieldError(
                    "spec.gatewayVmssProfile.vmssResourceGroup", MSG_VMSS_RESOURCE_GROUP_REQUIRED
                )
            )
        if not profile.vmss_name:
            errors.append(FieldError("spec.gatewayVmssProfile.vmssName", MSG_VMSS_NAME_REQUIRED))
    if spec.public_ip_prefix_id:
        if not spec.provision_public_ips:
            errors.append(FieldError("spec.publicIpPrefixId", MSG_PREFIX_ID_NEEDS_PUBLIC_IPS))
        if not _PREFIX_ID_RE.fullmatch(spec.public_ip_prefix_id):
            errors.append(FieldError("spec.publicIpPrefixId", MSG_PREFIX_ID_SHAPE))
    for index, cidr in enumerate(spec.exclude_cidrs):
        if not is_cidr(cidr):
            errors.append(FieldError(f"spec.excludeCidrs[{index}]", MSG_EXCLUDE_CIDR))
    return errors


def validate_spec(spec: StaticGatewayConfigurationSpec) -> list[FieldError]:
    """Every reason the API server (with this project's CRD) would reject `spec`; empty if valid."""
    return _schema_errors(spec) + rule_errors(spec)


# --- Beyond the CRD: what the controller refuses ------------------------------------------------
#
# The CRD accepts what upstream's CRD accepts (a manifest written for upstream applies unchanged),
# but some of that can never provision: Azure would refuse it after earlier steps had already
# written. The controller refuses these before its first Azure write, with the field's name
# (Degraded, reason InvalidSpec), and `egressgw plan` reports them the same way.

# Azure's public IP prefix lengths for a prefix egressgw creates: /28 (16 addresses) to /31 (2).
MIN_AZURE_PREFIX_LENGTH: Final = 28
MAX_AZURE_PREFIX_LENGTH: Final = 31

_SIZE_FIELD: Final = "spec.gatewayVmssProfile.publicIpPrefixSize"
_PREFIX_ID_SUBSCRIPTION_RE: Final = re.compile(r"(?i)^/subscriptions/([^/]+)/")


def controller_errors(
    spec: StaticGatewayConfigurationSpec, subscription_id: str
) -> list[FieldError]:
    """What the controller refuses although the CRD accepts it (the gateway runs in
    `subscription_id`); empty if it may go ahead."""
    errors: list[FieldError] = []
    profile = spec.vmss_profile
    size = profile.public_ip_prefix_size if profile is not None else 0
    if profile is not None and not spec.provision_public_ips and size != 0:
        errors.append(
            FieldError(
                _SIZE_FIELD,
                f"Forbidden: {size}: may only be set when spec.provisionPublicIps is true"
                " (private egress uses no public IP prefix)",
            )
        )
    managed_prefix = spec.provision_public_ips and not spec.public_ip_prefix_id
    in_range = MIN_AZURE_PREFIX_LENGTH <= size <= MAX_AZURE_PREFIX_LENGTH
    if profile is not None and managed_prefix and not in_range:
        errors.append(
            FieldError(
                _SIZE_FIELD,
                f"Invalid value: {size}: must be {MIN_AZURE_PREFIX_LENGTH} to"
                f" {MAX_AZURE_PREFIX_LENGTH}, the public IP prefix lengths Azure offers"
                " (31 gives 2 addresses, 28 gives 16)",
            )
        )
    if profile is not None and spec.provision_public_ips and spec.public_ip_prefix_id and not size:
        errors.append(
            FieldError(
                _SIZE_FIELD,
                "Required value: must be the length of the prefix spec.publicIpPrefixId names"
                " (the scale set's gateways need one address each from it)",
            )
        )
    if spec.provision_public_ips and spec.public_ip_prefix_id:
        match = _PREFIX_ID_SUBSCRIPTION_RE.match(spec.public_ip_prefix_id)
        if match is not None and match.group(1).lower() != subscription_id.lower():
            errors.append(
                FieldError(
                    "spec.publicIpPrefixId",
                    f"Invalid value: the prefix is in subscription {match.group(1)}, but the"
                    f" gateway runs in subscription {subscription_id}: the prefix must be in the"
                    " same subscription",
                )
            )
    return errors


def refusals(spec: StaticGatewayConfigurationSpec, subscription_id: str) -> list[FieldError]:
    """Everything the controller refuses in `spec`: the CRD's rules and its own."""
    return validate_spec(spec) + controller_errors(spec, subscription_id)


def describe_field_errors(errors: list[FieldError]) -> str:
    """One line for a condition message or an event: `field: message; field: message`."""
    return "; ".join(str(error) for error in errors)
