"""The name builders in contracts.resource_names, and their parsers where the product has one,
including awkward inputs."""

from __future__ import annotations

import re
import uuid

import pytest

from contracts import resource_names as rn
from contracts import search_attributes

SUB = "9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b"


# --- workflow IDs and task queues ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("default", "sgc"),
        ("kube-system", "a.b.c"),
        ("payments", "egress-0-long-name-with-many-parts-abcdefghijklmnopqrstuvwxyz0123"),
        ("ns", "1"),
    ],
)
def test_gateway_config_workflow_id(namespace: str, name: str) -> None:
    workflow_id = rn.gateway_config_workflow_id(namespace, name)
    assert workflow_id == f"egressgw/sgc/{namespace}/{name}"


@pytest.mark.parametrize(
    ("builder", "kind"),
    [(rn.load_balancer_workflow_id, "lb"), (rn.gateway_pool_workflow_id, "pool")],
)
@pytest.mark.parametrize(
    ("resource_group", "name"),
    [
        ("MC_prod_AKS_westeurope", "kubeegressgateway-ilb"),
        ("rg.with.dots(and)parens", "aks-gwpool-12345678-vmss"),
        ("x", "Y"),
    ],
)
def test_azure_workflow_ids_are_case_insensitive(
    builder: object, kind: str, resource_group: str, name: str
) -> None:
    assert callable(builder)
    upper = builder(SUB.upper(), resource_group, name)
    lower = builder(SUB, resource_group.lower(), name.lower())
    assert upper == lower == f"egressgw/{kind}/{SUB}/{resource_group.lower()}/{name.lower()}"


def test_workflow_id_builders_refuse_parts_that_would_be_ambiguous() -> None:
    with pytest.raises(ValueError):
        rn.gateway_config_workflow_id("ns", "")
    with pytest.raises(ValueError):
        rn.load_balancer_workflow_id(SUB, "rg/evil", "lb")


@pytest.mark.parametrize(
    "node", ["aks-gwpool-12345678-vmss000000", "aks-gwvmpool-0", "node.example.internal"]
)
def test_node_task_queue(node: str) -> None:
    assert rn.node_task_queue(node) == f"egressgw-node-{node}"
    with pytest.raises(ValueError):
        rn.node_task_queue("")


def test_search_attributes_are_keywords_for_the_dev_server_flag() -> None:
    registrations = search_attributes.registrations()
    flags = [f"{name}={kind}" for name, kind in registrations]
    assert "EgressgwNamespace=Keyword" in flags
    assert "EgressgwPhase=Keyword" in flags
    assert len({name for name, _ in registrations}) == len(search_attributes.ALL)


# --- Azure names ---------------------------------------------------------------------------------

UID = "0f5d2c1e-6a3b-4c8d-9e7f-112233445566"


def test_managed_resource_names_are_recognised_case_insensitively() -> None:
    name = rn.managed_resource_name(UID)
    assert name == f"egressgateway-{UID}"
    assert rn.is_managed_resource_name(name.replace("egressgateway", "EgressGateway"))
    assert not rn.is_managed_resource_name("ipconfig1")
    assert not rn.is_managed_resource_name("egressgateway-")


def test_lb_rule_and_probe_names_are_the_uid() -> None:
    assert rn.lb_rule_name(UID) == rn.lb_probe_name(UID) == UID
    assert rn.parse_lb_rule_name(rn.lb_rule_name(UID)) == UID
    with pytest.raises(ValueError):
        rn.parse_lb_rule_name("kubernetes-rule-for-some-service")


def test_vm_pool_frontend_name_is_upstreams_md5_uuid() -> None:
    # uuid.NewMD5(2c96e82c-842f-11f0-8ea5-6bee14278ecd, []byte(pool)) in Go: a version-3 UUID.
    name = rn.vm_pool_lb_pool_name("gwvmpool")
    parsed = uuid.UUID(name)
    assert parsed.version == 3
    assert name == str(uuid.uuid3(uuid.UUID("2c96e82c-842f-11f0-8ea5-6bee14278ecd"), "gwvmpool"))
    assert rn.vmss_lb_pool_name("d3b0c6a4-1f2e-4e5d-9c8b-7a6f5e4d3c2b") == (
        "d3b0c6a4-1f2e-4e5d-9c8b-7a6f5e4d3c2b"
    )


@pytest.mark.parametrize(
    ("data", "digest"),
    [
        # Reference values of 64-bit FNV-1a.
        ("", 0xCBF29CE484222325),
        ("a", 0xAF63DC4C8601EC8C),
        ("foobar", 0x85944171F73967E8),
    ],
)
def test_fnv1a_64_matches_the_reference_vectors(data: str, digest: int) -> None:
    assert rn.fnv1a_64(data) == digest


@pytest.mark.parametrize(
    ("prefix", "nic"),
    [
        ("egressgateway-" + UID, "aks-gwvmpool-0-nic"),
        ("my-byo-prefix", "aks-gwvmpool-1-nic"),
        ("p", "a"),
    ],
)
def test_vm_pool_public_ip_name_round_trips(prefix: str, nic: str) -> None:
    name = rn.vm_pool_public_ip_name(prefix, nic)
    assert name == f"{prefix}-{rn.fnv1a_64(nic):x}"
    parsed = rn.parse_vm_pool_public_ip_name(name)
    assert parsed.prefix_name == prefix
    assert parsed.belongs_to(nic)
    assert not parsed.belongs_to(nic + "x")


def test_vm_pool_public_ip_hash_is_not_zero_padded_like_gos_percent_x() -> None:
    # fnv1a_64("aks-gwvmpool-4-nic") == 0x089fe5ea60858a8e: Go's %x drops the leading zero.
    name = rn.vm_pool_public_ip_name("prefix", "aks-gwvmpool-4-nic")
    assert name == "prefix-89fe5ea60858a8e"
    assert rn.parse_vm_pool_public_ip_name(name).belongs_to("aks-gwvmpool-4-nic")


@pytest.mark.parametrize("bad", ["noprefixhash", "-abc", "prefix-", "prefix-xyz", "p-" + "f" * 17])
def test_malformed_public_ip_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        rn.parse_vm_pool_public_ip_name(bad)


def test_secret_names_round_trip_and_probe_paths() -> None:
    assert rn.gateway_secret_name(UID) == f"sgw-{UID}"
    assert rn.parse_gateway_secret_name(f"sgw-{UID}") == UID
    assert rn.probe_path(UID) == f"/gw/{UID}"


@pytest.mark.parametrize("bad", ["sgw-", "my-secret"])
def test_malformed_secret_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        rn.parse_gateway_secret_name(bad)


# --- ARM resource IDs ----------------------------------------------------------------------------


def test_arm_id_builders_produce_the_ids_azure_uses() -> None:
    lb = rn.load_balancer_id(SUB, "egressgw-dev", "kubeegressgateway-ilb")
    assert lb == (
        f"/subscriptions/{SUB}/resourceGroups/egressgw-dev/providers/Microsoft.Network"
        "/loadBalancers/kubeegressgateway-ilb"
    )
    assert rn.probe_id(SUB, "egressgw-dev", "kubeegressgateway-ilb", UID) == f"{lb}/probes/{UID}"
    assert rn.frontend_ip_configuration_id(SUB, "egressgw-dev", "kubeegressgateway-ilb", "f") == (
        f"{lb}/frontendIPConfigurations/f"
    )
    assert rn.backend_address_pool_id(SUB, "egressgw-dev", "kubeegressgateway-ilb", "b") == (
        f"{lb}/backendAddressPools/b"
    )
    assert rn.vmss_vm_id(SUB, "rg", "vmss", "3") == (
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute"
        "/virtualMachineScaleSets/vmss/virtualMachines/3"
    )


@pytest.mark.parametrize(
    ("resource_id", "resource_type", "name"),
    [
        (f"/subscriptions/{SUB}/resourceGroups/rg", "", "rg"),
        (rn.public_ip_prefix_id(SUB, "rg", "p"), "Microsoft.Network/publicIPPrefixes", "p"),
        (rn.public_ip_address_id(SUB, "rg", "p-1"), "Microsoft.Network/publicIPAddresses", "p-1"),
        (rn.network_interface_id(SUB, "rg", "nic"), "Microsoft.Network/networkInterfaces", "nic"),
        (
            rn.subnet_id(SUB, "rg", "aks-vnet", "gateway-subnet"),
            "Microsoft.Network/virtualNetworks/subnets",
            "gateway-subnet",
        ),
        (
            rn.vmss_id(SUB, "MC_rg(1)", "aks-gwpool-vmss"),
            "Microsoft.Compute/virtualMachineScaleSets",
            "aks-gwpool-vmss",
        ),
        (
            rn.vm_id(SUB, "rg", "aks-gwvmpool-0"),
            "Microsoft.Compute/virtualMachines",
            "aks-gwvmpool-0",
        ),
        (
            rn.probe_id(SUB, "rg", "ilb", UID),
            "Microsoft.Network/loadBalancers/probes",
            UID,
        ),
    ],
)
def test_parse_arm_resource_id_inverts_the_builders(
    resource_id: str, resource_type: str, name: str
) -> None:
    parsed = rn.parse_arm_resource_id(resource_id)
    assert str(parsed) == resource_id
    assert parsed.resource_type == resource_type
    assert parsed.name == name
    assert parsed.subscription == SUB


def test_arm_id_keywords_match_case_insensitively_and_names_keep_their_spelling() -> None:
    written = rn.probe_id(SUB, "MC_Prod", "ILB", UID)
    shouted = written.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")
    assert rn.parse_arm_resource_id(written.lower()).resource_group == "mc_prod"
    parsed = rn.parse_arm_resource_id(shouted)
    assert parsed.provider == "MICROSOFT.NETWORK"
    assert parsed.resource_type == "MICROSOFT.NETWORK/LOADBALANCERS/PROBES"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "subscriptions/s/resourceGroups/rg",
        "/subscriptions/s",
        "/subscriptions//resourceGroups/rg",
        "/subscriptions/s/resourceGroups/rg/",
        "/subscriptions/s/resourcegroup/rg",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb/probes",
        "/subscriptions/s/resourceGroups/rg/things/Microsoft.Network/loadBalancers/lb",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers//x/y",
    ],
)
def test_malformed_arm_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        rn.parse_arm_resource_id(bad)


LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


@pytest.mark.parametrize("name", ["gw", "a" * 63, "team.egress-1"])
def test_a_name_that_fits_a_label_is_its_own_label_value(name: str) -> None:
    """As 0.1.0 and upstream write it: existing Secrets keep their labels."""
    assert rn.owner_name_label_value(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "a" * 64,
        "x" * 253,
        "a" * 51 + ".b" * 100,  # the cut lands on a "." and still makes a valid value
        "a" * 52 + "-" + "b" * 200,
    ],
)
def test_a_longer_name_gets_a_derived_label_value(name: str) -> None:
    value = rn.owner_name_label_value(name)
    assert len(value) == 63
    assert LABEL_VALUE.fullmatch(value)
    assert value.startswith(name[:52])
    assert rn.owner_name_label_value(name) == value  # stable
    assert rn.owner_name_label_value(name[:-1] + "z") != value  # the digest tells them apart
