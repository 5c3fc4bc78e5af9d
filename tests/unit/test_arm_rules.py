"""Pure decisions of the ARM emulator: address allocation, resource ID parsing, fault matching."""

from __future__ import annotations

import ipaddress
import random

import pytest

from sim.arm import ids, ipam
from sim.arm.errors import ArmError
from sim.arm.faults import Faults, rule_from_json
from sim.arm.request_log import LoggedRequest, RequestLog

SUBNET = ipaddress.IPv4Network("10.0.0.0/29")


def test_private_allocation_skips_reserved_and_used_addresses() -> None:
    # /29: .0-.3 reserved, .7 broadcast reserved -> .4 .5 .6 usable.
    assert ipam.allocate_private_ip("s", SUBNET, set(), None) == "10.0.0.4"
    assert ipam.allocate_private_ip("s", SUBNET, {"10.0.0.4"}, None) == "10.0.0.5"
    with pytest.raises(ArmError) as err:
        ipam.allocate_private_ip("s", SUBNET, {"10.0.0.4", "10.0.0.5", "10.0.0.6"}, None)
    assert (err.value.status, err.value.code) == (400, "SubnetIsFull")


@pytest.mark.parametrize(
    ("requested", "code"),
    [
        ("10.0.0.7", "PrivateIPAddressInReservedRange"),
        ("10.0.1.4", "PrivateIPAddressNotInSubnet"),
        ("10.0.0.5", "PrivateIPAddressInUse"),
        ("banana", "InvalidPrivateIPAddressFormat"),
    ],
)
def test_static_requests_are_checked(requested: str, code: str) -> None:
    with pytest.raises(ArmError) as err:
        ipam.allocate_private_ip("s", SUBNET, {"10.0.0.5"}, requested)
    assert err.value.code == code
    assert ipam.allocate_private_ip("s", SUBNET, {"10.0.0.5"}, "10.0.0.6") == "10.0.0.6"


def test_prefixes_do_not_overlap_and_lengths_are_limited() -> None:
    first = ipam.allocate_prefix(28, [])
    second = ipam.allocate_prefix(31, [first])
    assert not first.overlaps(second)
    assert ipam.allocate_prefix(31, [first, second]) != second
    with pytest.raises(ArmError):
        ipam.allocate_prefix(27, [])
    prefix = ipaddress.IPv4Network("20.240.0.0/31")
    assert ipam.allocate_in_prefix("p", prefix, {"20.240.0.0"}) == "20.240.0.1"
    with pytest.raises(ArmError) as err:
        ipam.allocate_in_prefix("p", prefix, {"20.240.0.0", "20.240.0.1"})
    assert err.value.code == "PublicIpPrefixOutOfIpAddresses"


def test_paths_parse_case_insensitively_and_keep_casing() -> None:
    path = ids.parse_path(
        "/subscriptions/S/resourcegroups/RG/providers/microsoft.compute/"
        "virtualMachineScaleSets/V/virtualMachines/3/networkInterfaces/N"
    )
    assert path.canonical_type == ids.VMSS_VM_NICS
    assert path.name == "N"
    assert path.key == path.id.lower()
    parent = path.parent()
    assert parent is not None and parent.canonical_type == ids.VMSS_VMS
    collection = ids.parse_path(
        "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Network/loadBalancers"
    )
    assert collection.is_collection and collection.canonical_type == ids.LOAD_BALANCERS
    rg = ids.parse_path("/subscriptions/S/resourceGroups/RG")
    assert rg.canonical_type == ids.RESOURCE_GROUPS
    for bad in (
        "/nothing",
        "/subscriptions/S/resourceGroups/R/x/y",
        "/subscriptions/S/resourceGroups/a<b",
    ):
        with pytest.raises(ArmError):
            ids.parse_path(bad)


def test_fault_rules_match_by_method_type_and_count() -> None:
    faults = Faults(seed=1)
    rule = faults.add(effect="throttle", method="PUT", resource_type="loadBalancers", count=2)
    assert faults.pick("GET", "Microsoft.Network/loadBalancers", lro=False) is None
    assert faults.pick("PUT", "Microsoft.Network/publicIPPrefixes", lro=True) is None
    assert faults.pick("PUT", "Microsoft.Network/loadBalancers", lro=True) is rule
    assert faults.pick("put", "microsoft.network/loadbalancers", lro=True) is rule
    assert faults.pick("PUT", "Microsoft.Network/loadBalancers", lro=True) is None
    assert rule.error().headers == {"Retry-After": "1"}
    failing = faults.add(effect="fail-operation")
    assert faults.pick("GET", None, lro=False) is None
    assert faults.pick("DELETE", None, lro=True) is failing


def test_fault_probability_is_respected_roughly() -> None:
    faults = Faults(seed=7)
    faults.add(effect="error", probability=0.25)
    hits = sum(faults.pick("GET", None, lro=False) is not None for _ in range(2000))
    assert 350 < hits < 650


@pytest.mark.parametrize(
    "raw",
    [
        {"effect": "explode"},
        {"effect": "error", "status": 418},
        {"effect": "drop", "count": "1"},
        [],
    ],
)
def test_bad_fault_rules_are_refused(raw: object) -> None:
    with pytest.raises(ArmError):
        rule_from_json(raw)


def test_request_log_counts() -> None:
    log = RequestLog()
    rng = random.Random(0)
    for method, type_ in [
        ("GET", "Microsoft.Network/loadBalancers"),
        ("PUT", "Microsoft.Network/loadBalancers"),
        ("GET", "Microsoft.Network/locations/operations"),
        ("DELETE", "Microsoft.Compute/virtualMachineScaleSets"),
    ]:
        log.record(LoggedRequest(method, "/p", type_, "2026-03-01", 200, None, rng.random()))
    assert log.reads() == 1
    assert log.writes() == 2
    assert log.polls() == 1
    assert log.writes("loadBalancers") == 1
