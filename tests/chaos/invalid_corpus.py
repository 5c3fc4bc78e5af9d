"""Invalid StaticGatewayConfiguration specs: none may cause an ARM write.

Most break the CRD's schema or CEL rules (contracts/spec_validation.py; the same cases as
tests/integration/test_plan_validation.py, and more), so the API server refuses them; the rest
are well-formed but name what does not exist or is no gateway pool, so only the controller can
refuse them.
"""

from __future__ import annotations

from typing import Any

GROUP = "egressgw-dev"
VMSS = "aks-gwpool-12345678-vmss"
PROFILE = {"vmssResourceGroup": GROUP, "vmssName": VMSS}
SUBSCRIPTION = "9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b"
OTHER_SUBSCRIPTION = "00000000-0000-4000-8000-000000000000"


def prefix_id(subscription: str, group: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/{group}"
        f"/providers/Microsoft.Network/publicIPPrefixes/{name}"
    )


BAD_CIDRS = [
    "10.0.0.1",
    "10/8",
    "fd00::/129",
    "10.0.0.0/33",
    "256.0.0.0/8",
    "10.0.0.0/-1",
    "",
    " 10.0.0.0/8",
    "10.0.0.0/8 ",
    "10.0.0.0/08",
    "10.0.0.0/8/8",
    "example.com/8",
    "::/",
    "10.0.0.0/ 8",
    "1.2.3.4.5/32",
]

SCHEMA_CASES: list[tuple[str, dict[str, Any]]] = [
    ("no-pool", {}),
    ("two-pools", {"gatewayNodepoolName": "gwpool", "gatewayVmssProfile": PROFILE}),
    ("profile-without-group", {"gatewayVmssProfile": {"vmssName": VMSS}}),
    ("profile-without-name", {"gatewayVmssProfile": {"vmssResourceGroup": GROUP}}),
    ("profile-only-size", {"gatewayVmssProfile": {"publicIpPrefixSize": 30}}),
    ("empty-profile", {"gatewayVmssProfile": {}}),
    ("empty-pool-name", {"gatewayNodepoolName": ""}),
    ("prefix-size-32", {"gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": 32}}),
    ("prefix-size-negative", {"gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": -1}}),
    ("prefix-size-string", {"gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": "31"}}),
    ("prefix-size-fraction", {"gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": 30.5}}),
    ("prefix-size-huge", {"gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": 10**12}}),
    ("pool-name-too-long", {"gatewayNodepoolName": "x" * 64}),
    ("vmss-name-too-long", {"gatewayVmssProfile": {**PROFILE, "vmssName": "v" * 65}}),
    ("group-too-long", {"gatewayVmssProfile": {**PROFILE, "vmssResourceGroup": "g" * 91}}),
    ("pool-name-number", {"gatewayNodepoolName": 7}),
    ("profile-a-string", {"gatewayVmssProfile": "aks-gwpool"}),
    ("bad-route", {"gatewayNodepoolName": "gwpool", "defaultRoute": "internet"}),
    ("route-lowercase", {"gatewayNodepoolName": "gwpool", "defaultRoute": "azurenetworking"}),
    ("bool-string", {"gatewayNodepoolName": "gwpool", "provisionPublicIps": "yes"}),
    (
        "prefix-in-private-mode",
        {
            "gatewayNodepoolName": "gwvmpool",
            "provisionPublicIps": False,
            "publicIpPrefixId": prefix_id(SUBSCRIPTION, GROUP, "byo"),
        },
    ),
    ("prefix-malformed", {"gatewayNodepoolName": "gwpool", "publicIpPrefixId": "x"}),
    (
        "prefix-of-another-type",
        {
            "gatewayNodepoolName": "gwpool",
            "publicIpPrefixId": prefix_id(SUBSCRIPTION, GROUP, "p").replace(
                "publicIPPrefixes", "publicIPAddresses"
            ),
        },
    ),
    (
        "prefix-with-child",
        {
            "gatewayNodepoolName": "gwpool",
            "publicIpPrefixId": prefix_id(SUBSCRIPTION, GROUP, "p/x"),
        },
    ),
    ("prefix-too-long", {"gatewayNodepoolName": "gwpool", "publicIpPrefixId": "/" + "a" * 1100}),
    ("cidrs-not-a-list", {"gatewayNodepoolName": "gwpool", "excludeCidrs": "10.0.0.0/8"}),
    ("cidr-a-number", {"gatewayNodepoolName": "gwpool", "excludeCidrs": [7]}),
    ("too-many-cidrs", {"gatewayNodepoolName": "gwpool", "excludeCidrs": ["10.0.0.0/8"] * 257}),
    ("cidr-too-long", {"gatewayNodepoolName": "gwpool", "excludeCidrs": ["1" * 65]}),
    ("unknown-field", {"gatewayNodepoolName": "gwpool", "gatewayPool": "gwpool"}),
    *(
        (f"bad-cidr-{index}", {"gatewayNodepoolName": "gwpool", "excludeCidrs": [cidr]})
        for index, cidr in enumerate(BAD_CIDRS)
    ),
]

# Well-formed, so the API server admits them; the controller must refuse them without writing.
SEMANTIC_CASES: list[tuple[str, dict[str, Any]]] = [
    ("no-such-pool", {"gatewayNodepoolName": "nosuchpool"}),
    ("regular-pool-by-name", {"gatewayNodepoolName": "nodepool1"}),
    ("no-such-vmss", {"gatewayVmssProfile": {**PROFILE, "vmssName": "aks-nosuch-vmss"}}),
    ("no-such-group", {"gatewayVmssProfile": {**PROFILE, "vmssResourceGroup": "nosuch-rg"}}),
    (
        "regular-vmss",
        {"gatewayVmssProfile": {**PROFILE, "vmssName": "aks-nodepool1-31415926-vmss"}},
    ),
    (
        "no-such-prefix",
        {"gatewayNodepoolName": "gwpool", "publicIpPrefixId": prefix_id(SUBSCRIPTION, GROUP, "no")},
    ),
    (
        "prefix-in-other-subscription",
        {
            "gatewayNodepoolName": "gwpool",
            "publicIpPrefixId": prefix_id(OTHER_SUBSCRIPTION, GROUP, "byo"),
        },
    ),
    ("prefix-size-27", {"gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": 27}}),
    ("prefix-size-0", {"gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": 0}}),
    (
        "size-in-private-mode",
        {"gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": 31}, "provisionPublicIps": False},
    ),
    (
        "prefix-in-other-group",
        {"gatewayNodepoolName": "gwpool", "publicIpPrefixId": prefix_id(SUBSCRIPTION, "rg2", "b")},
    ),
]

CASES: list[tuple[str, dict[str, Any]]] = SCHEMA_CASES + SEMANTIC_CASES
