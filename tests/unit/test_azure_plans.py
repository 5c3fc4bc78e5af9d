"""The pure planners behind the Azure activities: the load balancer, our NIC ipConfigs, the gateway
pool choice, and reading Retry-After."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities.azure.arm_json import IpConfigurationJson, LoadBalancerJson
from activities.azure.errors import retry_after
from activities.azure.ip_config_plan import (
    NicShape,
    NicShapeError,
    WantedIpConfig,
    plan_ip_configs,
)
from activities.azure.load_balancer_plan import (
    LoadBalancerAction,
    LoadBalancerTarget,
    PlanError,
    plan_load_balancer,
)
from activities.azure.pool_resolution import (
    PoolResolutionError,
    pool_from_nodepool,
)
from contracts import resource_names
from contracts.activity_io import LoadBalancerRule, ResourceChange
from contracts.azure_state import PoolKind

SUB = "9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b"
RG = "rg"
SUBNET = resource_names.subnet_id(SUB, RG, "vnet", "gateway-subnet")
TARGET = LoadBalancerTarget(SUB, RG, "ilb", "westeurope", SUBNET)
POOL_A = "pool-a"
POOL_B = "pool-b"


def uid(n: int) -> str:
    return str(uuid.UUID(int=n))


def rule(n: int, pool: str = POOL_A) -> LoadBalancerRule:
    return LoadBalancerRule(uid(n), pool, f"/gw/{uid(n)}")


def applied(plan_body: LoadBalancerJson | None) -> LoadBalancerJson:
    """What Azure would hand back after the PUT: ids filled in, frontends addressed."""
    assert plan_body is not None
    body = copy.deepcopy(plan_body)
    props = body["properties"]
    for key in ("frontendIPConfigurations", "backendAddressPools", "probes", "loadBalancingRules"):
        for item in props.get(key, []):  # type: ignore[attr-defined]
            item["id"] = f"{resource_names.load_balancer_id(SUB, RG, 'ilb')}/{key}/{item['name']}"
    for i, front in enumerate(props.get("frontendIPConfigurations", [])):
        front["properties"]["privateIPAddress"] = f"10.225.0.{4 + i}"
    body["etag"] = 'W/"1"'
    return body


def rules_by_name(lb: LoadBalancerJson) -> dict[str, Any]:
    return {r["name"]: r["properties"] for r in lb["properties"].get("loadBalancingRules", [])}


# --- load balancer -------------------------------------------------------------------------------


def test_nothing_wanted_and_no_load_balancer_means_nothing_to_do() -> None:
    plan = plan_load_balancer(None, TARGET, [])
    assert plan.action is LoadBalancerAction.NONE
    assert plan.changes == ()


def test_a_new_load_balancer_is_standard_with_everything_a_rule_needs() -> None:
    plan = plan_load_balancer(None, TARGET, [rule(1)])
    assert plan.action is LoadBalancerAction.PUT
    body = plan.body
    assert body is not None
    assert body["sku"] == {"name": "Standard", "tier": "Regional"}
    props = body["properties"]
    [front] = props["frontendIPConfigurations"]
    assert front["properties"]["subnet"]["id"] == SUBNET
    assert front["properties"]["privateIPAllocationMethod"] == "Dynamic"
    [probe] = props["probes"]
    assert probe["properties"] == {
        "protocol": "Http",
        "port": 8082,
        "requestPath": f"/gw/{uid(1)}",
        "intervalInSeconds": 5,
        "probeThreshold": 1,
    }
    rule_props = rules_by_name(body)[uid(1)]
    assert rule_props["protocol"] == "Udp"
    assert rule_props["enableFloatingIP"] is True
    assert rule_props["frontendPort"] == rule_props["backendPort"] == 6000
    assert rule_props["probe"]["id"].endswith(f"/probes/{uid(1)}")
    assert plan.ports == {uid(1): 6000}


def test_an_unchanged_load_balancer_is_not_written() -> None:
    current = applied(plan_load_balancer(None, TARGET, [rule(1), rule(2)]).body)
    plan = plan_load_balancer(current, TARGET, [rule(2), rule(1)])
    assert plan.action is LoadBalancerAction.NONE
    assert plan.ports == {uid(1): 6000, uid(2): 6001}


def test_ports_are_kept_gaps_are_filled_and_pools_have_their_own_ports() -> None:
    current = applied(plan_load_balancer(None, TARGET, [rule(1), rule(2), rule(3)]).body)
    assert plan_load_balancer(current, TARGET, [rule(1), rule(2), rule(3)]).ports == {
        uid(1): 6000,
        uid(2): 6001,
        uid(3): 6002,
    }
    without_two = applied(plan_load_balancer(current, TARGET, [rule(1), rule(3)]).body)
    plan = plan_load_balancer(without_two, TARGET, [rule(1), rule(3), rule(4), rule(5, POOL_B)])
    assert plan.ports == {uid(1): 6000, uid(3): 6002, uid(4): 6001, uid(5): 6000}


def test_a_rule_that_drifted_is_replaced_and_unwanted_ones_are_dropped() -> None:
    current = applied(plan_load_balancer(None, TARGET, [rule(1), rule(2)]).body)
    rules_by_name(current)[uid(1)]["enableFloatingIP"] = False
    current["properties"]["probes"][1]["properties"]["intervalInSeconds"] = 15
    plan = plan_load_balancer(current, TARGET, [rule(1)])
    assert plan.action is LoadBalancerAction.PUT
    assert plan.body is not None
    assert rules_by_name(plan.body)[uid(1)]["enableFloatingIP"] is True
    assert set(rules_by_name(plan.body)) == {uid(1)}
    assert [p["name"] for p in plan.body["properties"]["probes"]] == [uid(1)]
    # Each change names the configuration it belongs to, for that configuration's drift event.
    assert ResourceChange(f"replaced rule {uid(1)}", uid(1)) in plan.changes
    assert ResourceChange(f"removed rule {uid(2)} (port 6001)", uid(2)) in plan.changes
    assert ResourceChange(f"removed probe {uid(2)}", uid(2)) in plan.changes


def test_other_rules_on_a_shared_load_balancer_are_kept_and_their_ports_avoided() -> None:
    current = applied(plan_load_balancer(None, TARGET, [rule(1)]).body)
    foreign = copy.deepcopy(current["properties"]["loadBalancingRules"][0])
    foreign["name"] = "someone-elses-rule"
    foreign["properties"]["frontendPort"] = foreign["properties"]["backendPort"] = 6001
    current["properties"]["loadBalancingRules"].append(foreign)
    plan = plan_load_balancer(current, TARGET, [rule(1), rule(2)])
    assert plan.ports[uid(2)] == 6002
    assert plan.body is not None
    assert "someone-elses-rule" in rules_by_name(plan.body)
    # Its frontend stays while the foreign rule uses it, even with no rule of ours left.
    gone = plan_load_balancer(current, TARGET, [])
    assert gone.action is LoadBalancerAction.PUT
    assert gone.body is not None
    assert set(rules_by_name(gone.body)) == {"someone-elses-rule"}
    assert [f["name"] for f in gone.body["properties"]["frontendIPConfigurations"]] == [POOL_A]


def test_unused_frontends_and_pools_go_and_an_empty_load_balancer_is_deleted() -> None:
    current = applied(plan_load_balancer(None, TARGET, [rule(1), rule(2, POOL_B)]).body)
    plan = plan_load_balancer(current, TARGET, [rule(2, POOL_B)])
    assert plan.body is not None
    assert [f["name"] for f in plan.body["properties"]["frontendIPConfigurations"]] == [POOL_B]
    assert [p["name"] for p in plan.body["properties"]["backendAddressPools"]] == [POOL_B]
    # Frontends and backend pools are shared: no configuration owns their changes.
    assert ResourceChange(f"removed frontend {POOL_A}") in plan.changes
    assert ResourceChange(f"removed backend pool {POOL_A}") in plan.changes
    empty = plan_load_balancer(current, TARGET, [])
    assert empty.action is LoadBalancerAction.DELETE
    assert empty.changes[-1] == ResourceChange("deleted load balancer ilb")


def test_a_load_balancer_with_other_items_is_not_deleted() -> None:
    current = applied(plan_load_balancer(None, TARGET, [rule(1)]).body)
    current["properties"]["inboundNatRules"] = [{"name": "ssh", "properties": {}}]
    plan = plan_load_balancer(current, TARGET, [])
    assert plan.action is LoadBalancerAction.PUT
    assert plan.body is not None
    assert plan.body["properties"]["inboundNatRules"] == [{"name": "ssh", "properties": {}}]
    assert plan.body["properties"]["loadBalancingRules"] == []


def test_a_failed_load_balancer_is_written_again() -> None:
    current = applied(plan_load_balancer(None, TARGET, [rule(1)]).body)
    current["properties"]["provisioningState"] = "Failed"
    plan = plan_load_balancer(current, TARGET, [rule(1)])
    assert plan.action is LoadBalancerAction.PUT
    assert plan.changes == (ResourceChange("re-applied load balancer ilb (it was Failed)"),)


def test_a_full_port_range_is_a_plan_error() -> None:
    current = applied(plan_load_balancer(None, TARGET, [rule(1)]).body)
    template = current["properties"]["loadBalancingRules"][0]
    others = []
    for port in range(6000, 7000):
        extra = copy.deepcopy(template)
        extra["name"] = f"other-{port}"
        extra["properties"]["frontendPort"] = extra["properties"]["backendPort"] = port
        others.append(extra)
    current["properties"]["loadBalancingRules"] = others
    with pytest.raises(PlanError, match="no free port"):
        plan_load_balancer(current, TARGET, [rule(2)])


# --- NIC ipConfigs -------------------------------------------------------------------------------

NODE_SUBNET = resource_names.subnet_id(SUB, RG, "vnet", "aks-subnet")
BACKEND = resource_names.backend_address_pool_id(SUB, RG, "ilb", POOL_A)
PREFIX = resource_names.public_ip_prefix_id(SUB, RG, "egressgateway-p")


def nic(*extra: IpConfigurationJson) -> list[IpConfigurationJson]:
    primary: IpConfigurationJson = {
        "name": "ipconfig1",
        "properties": {"primary": True, "subnet": {"id": NODE_SUBNET}},
    }
    return [primary, *extra]


def names(configs: list[IpConfigurationJson]) -> list[str]:
    return [c["name"] for c in configs]


def test_wanted_ip_configs_are_added_with_the_primary_subnet_and_the_backend_pool() -> None:
    wanted = [WantedIpConfig("egressgateway-a", PREFIX), WantedIpConfig("egressgateway-b", "")]
    plan = plan_ip_configs(nic(), wanted, BACKEND, NicShape.VMSS_PROFILE)
    assert names(plan.ip_configurations) == ["ipconfig1", "egressgateway-a", "egressgateway-b"]
    a = plan.ip_configurations[1]["properties"]
    assert a["primary"] is False
    assert a["subnet"] == {"id": NODE_SUBNET}
    assert a["publicIPAddressConfiguration"] == {
        "name": "egressgateway-a",
        "properties": {"publicIPPrefix": {"id": PREFIX}},
    }
    assert "publicIPAddressConfiguration" not in plan.ip_configurations[2]["properties"]
    assert plan.ip_configurations[0]["properties"]["loadBalancerBackendAddressPools"] == [
        {"id": BACKEND}
    ]
    again = plan_ip_configs(plan.ip_configurations, wanted, BACKEND, NicShape.VMSS_PROFILE)
    assert not again.changed


def test_ours_not_wanted_are_removed_with_the_backend_pool_and_others_stay() -> None:
    current = plan_ip_configs(
        nic({"name": "someone-else", "properties": {"subnet": {"id": NODE_SUBNET}}}),
        [WantedIpConfig("egressgateway-a", "")],
        BACKEND,
        NicShape.VMSS_PROFILE,
    ).ip_configurations
    plan = plan_ip_configs(current, [], BACKEND, NicShape.VMSS_PROFILE)
    assert names(plan.ip_configurations) == ["ipconfig1", "someone-else"]
    assert plan.ip_configurations[0]["properties"]["loadBalancerBackendAddressPools"] == []
    assert plan.changes == (
        ResourceChange("removed ipConfig egressgateway-a", "a"),
        ResourceChange("removed backend pool pool-a from the primary ipConfig"),
    )


def test_a_differing_ip_config_is_replaced_and_keeps_its_private_ip() -> None:
    pip = resource_names.public_ip_address_id(SUB, RG, "egressgateway-p-1")
    current = nic(
        {
            "name": "egressgateway-a",
            "properties": {
                "primary": False,
                "subnet": {"id": NODE_SUBNET},
                "privateIPAddress": "10.224.0.9",
                "publicIPAddress": {"id": pip},
            },
        }
    )
    plan = plan_ip_configs(
        current, [WantedIpConfig("egressgateway-a", "")], BACKEND, NicShape.STANDALONE_NIC
    )
    replaced = plan.ip_configurations[1]["properties"]
    assert "publicIPAddress" not in replaced
    assert replaced["privateIPAddress"] == "10.224.0.9"
    assert (
        ResourceChange("replaced ipConfig egressgateway-a (its public IP differed)", "a")
        in plan.changes
    )


def test_a_nic_without_a_primary_ip_config_is_refused() -> None:
    two = [
        {"name": "x", "properties": {"subnet": {"id": NODE_SUBNET}}},
        {"name": "y", "properties": {"subnet": {"id": NODE_SUBNET}}},
    ]
    with pytest.raises(NicShapeError):
        plan_ip_configs(two, [], BACKEND, NicShape.VMSS_PROFILE)  # type: ignore[arg-type]


# --- gateway pool choice -------------------------------------------------------------------------


def vmss(name: str, **tags: str) -> dict[str, Any]:
    return {
        "name": name,
        "tags": tags,
        "sku": {"capacity": 3},
        "properties": {"uniqueId": f"uid-{name}"},
    }


def test_a_nodepool_is_found_case_insensitively_and_its_tag_gives_the_prefix() -> None:
    sets = [
        vmss("other", **{"aks-managed-poolName": "other"}),
        vmss("gw", **{"AKS-MANAGED-POOLNAME": "GwPool", "aks-managed-gatewayIPPrefixSize": "30"}),
    ]
    pool = pool_from_nodepool("gwpool", sets, [], SUB, RG, public=True)
    assert (pool.kind, pool.name, pool.lb_pool_name) == (PoolKind.VMSS, "gw", "uid-gw")
    assert (pool.prefix_length, pool.instance_count) == (30, 3)


def test_vm_pools_are_named_by_their_tag_and_need_the_prefix_tag_in_public_mode() -> None:
    vms: list[dict[str, Any]] = [
        {"name": f"vm{i}", "tags": {"aks-managed-poolName": "VmPool"}} for i in range(2)
    ]
    private = pool_from_nodepool("vmpool", [], vms, SUB, RG, public=False)
    assert private.kind is PoolKind.VM
    assert private.lb_pool_name == resource_names.vm_pool_lb_pool_name("VmPool")
    assert (private.prefix_length, private.instance_count) == (0, 2)
    with pytest.raises(PoolResolutionError, match="vmpool has no aks-managed-gatewayIPPrefixSize"):
        pool_from_nodepool("vmpool", [], vms, SUB, RG, public=True)
    vms[0]["tags"]["aks-managed-gatewayIPPrefixSize"] = "thirty"
    with pytest.raises(PoolResolutionError, match="not a number"):
        pool_from_nodepool("vmpool", [], vms, SUB, RG, public=False)


def test_an_unknown_nodepool_is_not_found() -> None:
    with pytest.raises(PoolResolutionError) as err:
        pool_from_nodepool("missing", [vmss("gw")], [], SUB, RG, public=True)
    assert err.value.not_found
    assert "missing" in str(err.value)


# --- Retry-After ---------------------------------------------------------------------------------


def test_retry_after_forms() -> None:
    now = datetime(2026, 11, 26, 8, 0, 0, tzinfo=UTC)
    assert retry_after({"Retry-After": "7"}) == timedelta(seconds=7)
    assert retry_after({"retry-after-ms": "1500", "Retry-After": "9"}) == timedelta(seconds=1.5)
    assert retry_after({"x-ms-retry-after-ms": "250"}) == timedelta(milliseconds=250)
    assert retry_after({"Retry-After": "Thu, 26 Nov 2026 08:00:30 GMT"}, now) == timedelta(
        seconds=30
    )
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after({}) is None
