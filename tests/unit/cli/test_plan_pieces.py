"""The pure parts of `egressgw plan`: reading a manifest (egressgw/plan/documents.py), the inputs
it derives from Azure as read and the node changes (changes.py), and how a plan reads
(render.py). The whole command runs against the stack in tests/integration/test_plan_*.py."""

from __future__ import annotations

import json

import pytest

from contracts import resource_names
from contracts.azure_state import GatewayPool, PoolKind
from contracts.node_io import NodeGateway, SecretRef
from egressgw.plan.changes import (
    NEW_UID,
    Action,
    ConfigurationPlan,
    PlannedChange,
    Target,
    nic_ip_configs,
    node_changes,
    rules_on,
)
from egressgw.plan.documents import ManifestError, parse_manifest
from egressgw.plan.render import render_json, render_text

UID = "1e02eae6-16ad-438e-be33-e99d1f5e558c"
OTHER = "7b9f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b"


def test_a_manifest_yields_its_configurations_and_names_what_it_skips() -> None:
    text = """
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
---
apiVersion: egressgateway.kubernetes.azure.com/v1alpha1
kind: StaticGatewayConfiguration
metadata: {name: one, namespace: team-a}
spec:
  gatewayVmssProfile: {vmssResourceGroup: rg, vmssName: v, publicIpPrefixSize: 31.0}
  publicIpPrefixId: null
---
apiVersion: v1
kind: List
items:
  - apiVersion: egressgateway.kubernetes.azure.com/v1alpha1
    kind: StaticGatewayConfiguration
    metadata: {name: two}
    spec: {gatewayNodepoolName: gwpool, provisionPublicIps: false}
"""
    found, skipped = parse_manifest(text, "m.yaml")

    assert [(d.source, d.namespace, d.name, d.valid) for d in found] == [
        ("m.yaml document 3", "team-a", "one", True),
        ("m.yaml document 4 item 0", "", "two", True),
    ]
    assert found[0].spec is not None and found[0].spec.vmss_profile is not None
    assert found[0].spec.vmss_profile.public_ip_prefix_size == 31  # a whole number is an integer
    assert found[1].spec is not None and not found[1].spec.provision_public_ips
    assert [s.source for s in skipped] == ["m.yaml document 1"]


def test_a_configuration_without_a_name_or_spec_is_invalid() -> None:
    (found,), _ = parse_manifest(
        "apiVersion: egressgateway.kubernetes.azure.com/v1alpha1\n"
        "kind: StaticGatewayConfiguration\nmetadata: {}\n",
        "m.yaml",
    )

    assert [(e.field, e.message) for e in found.errors] == [
        ("metadata.name", "Required value: name or generateName is required"),
        ("spec", "Required value"),
    ]


@pytest.mark.parametrize("text", ["a: [", "- just\n- a list\n", "42\n"])
def test_what_is_not_a_manifest_of_objects_is_refused(text: str) -> None:
    with pytest.raises(ManifestError, match=r"m\.yaml"):
        parse_manifest(text, "m.yaml")


def test_other_owners_rules_are_read_from_the_load_balancer() -> None:
    pool_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb"
    lb = {
        "properties": {
            "loadBalancingRules": [
                {
                    "name": OTHER,
                    "properties": {
                        "backendAddressPool": {"id": f"{pool_id}/backendAddressPools/p1"}
                    },
                },
                {"name": "someone-elses-rule", "properties": {}},
            ]
        }
    }

    rules = rules_on(lb)  # type: ignore[arg-type]

    assert list(rules) == [OTHER]
    assert rules[OTHER].lb_pool_name == "p1"
    assert rules[OTHER].probe_path == resource_names.probe_path(OTHER)


def test_a_vm_pool_nics_public_ip_gives_back_the_prefix_it_was_carved_from() -> None:
    pool = GatewayPool(PoolKind.VM, "sub", "rg", "gwvmpool", "lbpool", 31, 2)
    prefix = resource_names.managed_resource_name(OTHER)
    ip_name = resource_names.vm_pool_public_ip_name(prefix, "nic-0")
    configs = [
        {"name": "ipconfig1", "properties": {"primary": True}},
        {
            "name": resource_names.managed_resource_name(OTHER),
            "properties": {
                "publicIPAddress": {"id": resource_names.public_ip_address_id("sub", "rg", ip_name)}
            },
        },
        {"name": resource_names.managed_resource_name(UID), "properties": {}},
    ]

    found = nic_ip_configs(configs, pool)  # type: ignore[arg-type]

    assert found[OTHER].public_ip_prefix_id == resource_names.public_ip_prefix_id(
        "sub", "rg", prefix
    )
    assert found[UID].public_ip_prefix_id == ""


def gateway(node: str, port: int = 6000, secondary: str = "10.0.0.9") -> NodeGateway:
    return NodeGateway(
        UID, "ns", "sgc", port, "10.225.0.4", "10.0.0.4", secondary, SecretRef("", "s"), "", node
    )


def test_node_changes_add_replace_and_remove_gateways() -> None:
    before = [gateway("a"), gateway("b"), gateway("c")]
    after = [gateway("a"), gateway("b", port=6001), gateway("d", secondary="")]

    planned = node_changes(before, after)

    assert [(c.action, c.resource) for c in planned] == [
        (Action.UPDATE, "node b"),
        (Action.DELETE, "node c"),
        (Action.CREATE, "node d"),
    ]
    assert planned[0].details[1].startswith("now gateway wg-6001")
    assert planned[1].details == ("remove gateway wg-6000",)
    assert planned[2].details == (
        "gateway wg-6000: frontend 10.225.0.4:6000, SNAT to secondary IP (allocated by Azure)",
    )


def test_a_plan_reads_as_marked_changes_with_the_new_uid_shown_as_a_placeholder() -> None:
    plan = ConfigurationPlan(
        source="m.yaml document 1",
        namespace="ns",
        name="sgc",
        uid="",
        changes=(
            PlannedChange(
                Action.CREATE, Target.AZURE, f"public IP prefix egressgateway-{NEW_UID}", ("/31",)
            ),
            PlannedChange(
                Action.UPDATE, Target.AZURE, "load balancer lb", (f"added rule {NEW_UID}",)
            ),
            PlannedChange(Action.DELETE, Target.NODE, "node a", ("remove gateway wg-6000",)),
        ),
    )

    text = render_text([plan])
    document = json.loads(render_json([plan]))

    assert text.splitlines() == [
        "StaticGatewayConfiguration ns/sgc (new; m.yaml document 1)",
        "  Azure:",
        "    + public IP prefix egressgateway-<uid>",
        "        /31",
        "    ~ load balancer lb",
        "        added rule <uid>",
        "  Gateway nodes:",
        "    - node a",
        "        remove gateway wg-6000",
        "",
        "Plan: 1 to create, 1 to update, 1 to delete.",
    ]
    assert NEW_UID not in json.dumps(document)
    assert document["items"][0]["uid"] is None
