"""The fabric's pure decisions: names and addresses, which backend a flow goes to, the nftables
ruleset, route changes, and what it reads from the ARM emulator's records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sim.arm import ids
from sim.arm.api import ArmApi, ArmRequest
from sim.arm.seed import seed_topology
from sim.arm.store import Store, Transaction
from sim.fabric.arm_view import read_arm_network
from sim.fabric.echo import read_records
from sim.fabric.load_balancer import (
    BUCKETS,
    LbRule,
    assign_buckets,
    eligible_backends,
    render_ruleset,
)
from sim.fabric.plan import (
    IFNAME_MAX,
    NodeSpec,
    node_suffixes,
    plan_fabric,
    secondary_route_changes,
)
from sim.fabric.probes import ProbeSpec, ProbeTarget
from sim.topology import Topology

PROBE = ProbeSpec("http", 8082, "/gw/uid-1")
RULE = LbRule("uid-1", "10.225.0.4", "udp", 6000, PROBE, ("10.224.0.4", "10.224.0.5"))

# --- plan ---------------------------------------------------------------------------------------


def test_seeded_node_names_get_readable_short_namespaces() -> None:
    names = [
        "aks-gwpool-12345678-vmss000000",
        "aks-gwpool-12345678-vmss000001",
        "aks-gwvmpool-0",
        "aks-gwvmpool-1",
    ]
    plan = plan_fabric(
        "t1a2b3", [NodeSpec(n, f"10.224.0.{4 + i}", 16) for i, n in enumerate(names)]
    )
    assert [n.netns for n in plan.nodes] == [
        "t1a2b3-ss000000",
        "t1a2b3-ss000001",
        "t1a2b3-vmpool-0",
        "t1a2b3-vmpool-1",
    ]
    every = [*plan.namespaces, *(n.router_link for n in plan.nodes), plan.internet_link]
    assert all(len(name) <= IFNAME_MAX for name in every)
    assert len(set(plan.namespaces)) == len(plan.namespaces)
    assert plan.router_netns == "t1a2b3-vnet" and plan.internet_netns == "t1a2b3-inet"


def test_colliding_or_reserved_tails_fall_back_to_positions() -> None:
    suffixes = node_suffixes("egress-gw", ["pool-a-node1", "pool-b-node1", "x-inet"])
    assert suffixes == {"pool-a-node1": "n0", "pool-b-node1": "n1", "x-inet": "n2"}


def test_node_addresses_and_policy_routing_marks() -> None:
    plan = plan_fabric("egw", [NodeSpec("b", "10.224.0.5", 16), NodeSpec("a", "10.224.0.4", 16)])
    a, b = plan.nodes  # ordered by name, so marks do not depend on ARM's listing order
    assert (a.name, a.primary_ip, a.prefix_len) == ("a", "10.224.0.4", 16)
    assert a.gateway_ip == "10.224.0.1"
    assert a.mark != b.mark
    assert plan.router_addresses == ("10.224.0.1", "10.244.0.1")
    assert plan.node_by_ip("10.224.0.5") == b


@pytest.mark.parametrize(
    "prefix",
    ["Upper", "much-too-long-prefix", "bad_prefix"],
)
def test_unusable_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError):
        plan_fabric(prefix, [NodeSpec("a", "10.224.0.4", 16)])


def test_duplicate_nodes_and_gateway_addresses_are_refused() -> None:
    with pytest.raises(ValueError, match="primary IPs"):
        plan_fabric("egw", [NodeSpec("a", "10.224.0.4", 16), NodeSpec("b", "10.224.0.4", 16)])
    with pytest.raises(ValueError, match="gateway"):
        plan_fabric("egw", [NodeSpec("a", "10.224.0.1", 16)])


def test_clients_live_in_the_pod_range_under_the_prefix() -> None:
    plan = plan_fabric("egw", [NodeSpec("a", "10.224.0.4", 16)])
    client = plan.client("pod1", "10.244.0.9")
    assert (client.netns, client.gateway_ip) == ("egw-pod1", "10.244.0.1")
    for name, ip in [("pod1", "10.224.0.9"), ("pod1", "10.244.0.1"), ("vnet", "10.244.0.9")]:
        with pytest.raises(ValueError):
            plan.client(name, ip)


def test_secondary_route_changes() -> None:
    current = {"10.224.0.8": "10.224.0.4", "10.224.0.9": "10.224.0.4", "10.224.0.10": "10.224.0.5"}
    desired = {"10.224.0.8": "10.224.0.4", "10.224.0.9": "10.224.0.5", "10.224.0.11": "10.224.0.5"}
    to_set, to_delete = secondary_route_changes(current, desired)
    assert to_set == {"10.224.0.9": "10.224.0.5", "10.224.0.11": "10.224.0.5"}
    assert to_delete == ["10.224.0.10"]


# --- load balancer ----------------------------------------------------------------------------


def test_every_bucket_has_a_backend_and_both_backends_get_some() -> None:
    assignment = assign_buckets(["10.224.0.4", "10.224.0.5"])
    assert len(assignment) == BUCKETS
    assert set(assignment) == {"10.224.0.4", "10.224.0.5"}
    assert assign_buckets([]) == ()


def test_a_backend_leaving_moves_only_its_own_buckets() -> None:
    three = assign_buckets(["10.224.0.4", "10.224.0.5", "10.224.0.6"])
    two = assign_buckets(["10.224.0.4", "10.224.0.6"])
    for before, after in zip(three, two, strict=True):
        if before != "10.224.0.5":
            assert after == before
        assert after != "10.224.0.5"


def test_unhealthy_backends_get_no_flows_unless_none_is_healthy() -> None:
    up = {ProbeTarget("10.224.0.4", PROBE): True, ProbeTarget("10.224.0.5", PROBE): False}
    assert eligible_backends(RULE, up) == ("10.224.0.4",)
    down = dict.fromkeys(RULE.probe_targets(), False)
    assert eligible_backends(RULE, down) == RULE.backends
    assert eligible_backends(RULE, {}) == RULE.backends  # never probed yet
    no_probe = LbRule("r", "10.225.0.4", "udp", 6001, None, RULE.backends)
    assert eligible_backends(no_probe, down) == RULE.backends


def test_ruleset_marks_flows_to_the_frontend_for_eligible_nodes_only() -> None:
    marks = {"10.224.0.4": 0xFA00, "10.224.0.5": 0xFA01}
    up = {ProbeTarget("10.224.0.4", PROBE): True, ProbeTarget("10.224.0.5", PROBE): False}
    text = render_ruleset([RULE], marks, up)
    assert "delete table ip fabric_lb" in text
    rule_line = next(line for line in text.splitlines() if "10.225.0.4" in line)
    assert "udp th dport 6000" in rule_line and "jhash ip saddr . th sport" in rule_line
    assert "0xfa00" in rule_line and "0xfa01" not in rule_line
    both = render_ruleset([RULE], marks, {})
    assert "0xfa01" in both


def test_ruleset_leaves_out_rules_it_cannot_serve() -> None:
    non_floating = LbRule("n", "10.225.0.5", "udp", 6000, None, ("10.224.0.4",), False)
    unknown_backend = LbRule("u", "10.225.0.6", "udp", 6000, None, ("10.224.9.9",))
    text = render_ruleset([non_floating, unknown_backend], {"10.224.0.4": 0xFA00}, {})
    assert "10.225.0.5" not in text and "10.225.0.6" not in text


# --- reading ARM --------------------------------------------------------------------------------

TOPO = Topology()
API_VERSION = {"api-version": "2024-05-01"}


def _put(api: ArmApi, resource_id: str, body: dict[str, Any]) -> dict[str, Any]:
    request = ArmRequest(
        "PUT", ids.parse_path(resource_id), API_VERSION, {}, json.dumps(body).encode()
    )
    answer = api.handle(request, None)
    assert answer.status < 300, answer.body
    result: dict[str, Any] = answer.body
    return result


def _arm() -> tuple[Store, ArmApi]:
    store = Store()
    tx = Transaction(store)
    seed_topology(tx, TOPO)
    tx.commit()
    return store, ArmApi(store, lambda: "https://127.0.0.1", lambda: None, 100)


def test_reads_nodes_secondary_ips_and_load_balancer_rules() -> None:
    store, api = _arm()
    rg = TOPO.resource_group_id
    lb = f"{rg}/providers/Microsoft.Network/loadBalancers/kubeegressgateway-ilb"
    vnet = f"{rg}/providers/Microsoft.Network/virtualNetworks/{TOPO.vnet_name}"
    pool = f"{lb}/backendAddressPools/be"
    _put(
        api,
        lb,
        {
            "location": TOPO.location,
            "sku": {"name": "Standard"},
            "properties": {
                "frontendIPConfigurations": [
                    {
                        "name": "fe",
                        "properties": {
                            "privateIPAllocationMethod": "Dynamic",
                            "subnet": {"id": f"{vnet}/subnets/{TOPO.gateway_subnet_name}"},
                        },
                    }
                ],
                "backendAddressPools": [{"name": "be"}],
                "probes": [
                    {
                        "name": "uid-1",
                        "properties": {
                            "protocol": "Http",
                            "port": 8082,
                            "requestPath": "/gw/uid-1",
                        },
                    }
                ],
                "loadBalancingRules": [
                    {
                        "name": "uid-1",
                        "properties": {
                            "frontendIPConfiguration": {"id": f"{lb}/frontendIPConfigurations/fe"},
                            "backendAddressPool": {"id": pool},
                            "probe": {"id": f"{lb}/probes/uid-1"},
                            "protocol": "Udp",
                            "frontendPort": 6000,
                            "backendPort": 6000,
                            "enableFloatingIP": True,
                        },
                    }
                ],
            },
        },
    )
    nic_id = f"{rg}/providers/Microsoft.Network/networkInterfaces/{TOPO.vm_pools[0].nic_name(0)}"
    nic = api.render(store.get(nic_id))  # type: ignore[arg-type]
    configs = nic["properties"]["ipConfigurations"]
    configs[0]["properties"]["loadBalancerBackendAddressPools"] = [{"id": pool}]
    subnet = configs[0]["properties"]["subnet"]
    configs.append(
        {"name": "sgc", "properties": {"privateIPAllocationMethod": "Dynamic", "subnet": subnet}}
    )
    _put(api, nic_id, {"location": TOPO.location, "properties": {"ipConfigurations": configs}})

    network = read_arm_network(store)

    names = [n.name for n in network.nodes]
    assert names == sorted(
        [TOPO.vmss_pools[0].computer_name(i) for i in range(2)]
        + [TOPO.vm_pools[0].vm_name(i) for i in range(2)]
    )
    vm0 = next(n for n in network.nodes if n.name == TOPO.vm_pools[0].vm_name(0))
    assert vm0.prefix_len == 16 and len(vm0.secondary_ips) == 1
    assert network.secondary_routes() == {vm0.secondary_ips[0]: vm0.primary_ip}
    (rule,) = network.rules
    assert rule.frontend_ip.startswith("10.225.0.")
    assert (rule.protocol, rule.port, rule.floating_ip) == ("udp", 6000, True)
    assert rule.probe == ProbeSpec("http", 8082, "/gw/uid-1")
    assert rule.backends == (vm0.primary_ip,)
    assert len({s.primary_ip for s in network.node_specs()}) == 4


# --- echo records ------------------------------------------------------------------------------


def test_echo_records_skip_a_line_still_being_written(tmp_path: Path) -> None:
    path = tmp_path / "echo.jsonl"
    assert read_records(path) == []
    path.write_text(
        '{"time": 1.5, "proto": "udp", "src_ip": "10.224.0.8", "src_port": 4000}\n{"time": 2'
    )
    (record,) = read_records(path)
    assert (record.proto, record.src_ip, record.src_port) == ("udp", "10.224.0.8", 4000)
