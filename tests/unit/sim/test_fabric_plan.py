"""The fabric's pure decisions: names and addresses, which backend a flow goes to, the nftables
ruleset, route changes, and what it reads from the ARM emulator's records."""

from __future__ import annotations

import ipaddress
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
from sim.fabric.outbound import render_outbound_nat
from sim.fabric.plan import (
    GATEWAY,
    IFNAME_MAX,
    REGULAR,
    NodeSpec,
    node_pod_cidrs,
    node_suffixes,
    plan_fabric,
    secondary_route_changes,
)
from sim.fabric.probes import ProbeSpec, ProbeTarget
from sim.topology import Topology

PROBE = ProbeSpec("http", 8082, "/gw/uid-1")
RULE = LbRule("uid-1", "10.225.0.4", "udp", 6000, PROBE, ("10.224.0.4", "10.224.0.5"))

# --- plan ---------------------------------------------------------------------------------------


SEEDED_NAMES = [
    "aks-gwpool-12345678-vmss000000",
    "aks-gwpool-12345678-vmss000001",
    "aks-gwvmpool-0",
    "aks-gwvmpool-1",
    "aks-nodepool1-31415926-vmss000000",
    "aks-nodepool1-31415926-vmss00000a",
]


@pytest.mark.parametrize(
    ("prefix", "suffixes"),
    [
        (
            "egw",
            ["gwpool-0", "gwpool-1", "gwvmpool-0", "gwvmpool-1", "nodepool1-0", "nodepool-10"],
        ),
        # A longer prefix leaves less room: the pool name is shortened, the instance kept.
        ("t1a2b3", ["gwpool-0", "gwpool-1", "gwvmpo-0", "gwvmpo-1", "nodepo-0", "nodep-10"]),
    ],
)
def test_seeded_node_names_get_readable_short_namespaces(prefix: str, suffixes: list[str]) -> None:
    plan = plan_fabric(
        prefix, [NodeSpec(n, f"10.224.0.{4 + i}", 16) for i, n in enumerate(SEEDED_NAMES)]
    )
    assert [n.netns for n in plan.nodes] == [f"{prefix}-{s}" for s in suffixes]
    every = [*plan.namespaces, *(n.router_link for n in plan.nodes), plan.internet_link]
    assert all(len(name) <= IFNAME_MAX for name in every)
    assert len(set(plan.namespaces)) == len(plan.namespaces)
    assert plan.router_netns == f"{prefix}-vnet" and plan.internet_netns == f"{prefix}-inet"


def test_colliding_or_reserved_tails_fall_back_to_positions() -> None:
    suffixes = node_suffixes("egress-gw", ["pool-a-node1", "pool-b-node1", "x-inet"])
    assert suffixes == {"pool-a-node1": "n0", "pool-b-node1": "n1", "x-inet": "n2"}
    # A fallback that equals another node's own suffix: every node takes its position.
    names = ["a-node", "b-node", "n1"]
    assert node_suffixes("egress-gw", names) == {"a-node": "n0", "b-node": "n1", "n1": "n2"}


def test_the_longest_prefix_still_gives_unique_names_that_fit() -> None:
    plan = plan_fabric(
        "abcdefghij", [NodeSpec(n, f"10.224.0.{4 + i}", 16) for i, n in enumerate(SEEDED_NAMES)]
    )
    names = [n.netns for n in plan.nodes]
    assert len(set(names)) == len(names)
    assert all(len(name) <= IFNAME_MAX for name in names)


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


def test_clients_live_in_their_slice_of_the_pod_range_under_the_prefix() -> None:
    plan = plan_fabric("egw", [NodeSpec("a", "10.224.0.4", 16)])
    client = plan.client("pod1", "10.244.0.9")
    assert (client.netns, client.gateway_ip) == ("egw-pod1", "10.244.0.1")
    assert plan.client("pod2", "10.244.7.10").ip == "10.244.7.10"
    (node,) = plan.nodes
    for name, ip in [
        ("pod1", "10.224.0.9"),
        ("pod1", "10.244.0.1"),  # the clients' gateway
        ("vnet", "10.244.0.9"),
        ("pod1", "10.244.16.9"),  # a node's pods' address
    ]:
        with pytest.raises(ValueError):
            plan.client(name, ip)
    assert node.pod_cidr == "10.244.16.0/24"


def test_every_node_gets_its_own_pod_cidr_outside_the_clients_slice() -> None:
    specs = [
        NodeSpec("reg-b", "10.224.0.9", 16, REGULAR),
        NodeSpec("gw-a", "10.224.0.4", 16),
        NodeSpec("reg-a", "10.224.0.8", 16, REGULAR),
    ]
    plan = plan_fabric("egw", specs)
    gw, reg_a, reg_b = plan.nodes  # ordered by name, like the marks
    assert [n.pod_cidr for n in plan.nodes] == [
        "10.244.16.0/24",
        "10.244.17.0/24",
        "10.244.18.0/24",
    ]
    assert reg_a.pod_gateway_ip == "10.244.17.1"
    assert (gw.role, reg_a.role, reg_b.role) == (GATEWAY, REGULAR, REGULAR)
    assert plan.gateway_nodes == (gw,) and plan.regular_nodes == (reg_a, reg_b)
    pods = ipaddress.IPv4Network(plan.pod_cidr)
    clients = ipaddress.IPv4Network(plan.client_cidr)
    for node in plan.nodes:
        cidr = ipaddress.IPv4Network(node.pod_cidr)
        assert cidr.subnet_of(pods) and not cidr.overlaps(clients)


def test_pod_cidrs_need_room_in_the_pod_range() -> None:
    assert node_pod_cidrs("10.244.0.0/16", "10.244.0.0/20", 2) == [
        "10.244.16.0/24",
        "10.244.17.0/24",
    ]
    assert node_pod_cidrs("10.244.0.0/16", "10.244.255.0/24", 1) == ["10.244.0.0/24"]
    with pytest.raises(ValueError, match="no room"):
        node_pod_cidrs("10.244.0.0/19", "10.244.0.0/20", 17)
    with pytest.raises(ValueError, match="not inside"):
        node_pod_cidrs("10.244.0.0/16", "10.245.0.0/20", 1)
    with pytest.raises(ValueError, match="role"):
        plan_fabric("egw", [NodeSpec("a", "10.224.0.4", 16, "worker")])


def test_outbound_snat_covers_regular_nodes_and_all_pods_but_not_gateways() -> None:
    specs = [NodeSpec("gw", "10.224.0.4", 16), NodeSpec("reg", "10.224.0.8", 16, REGULAR)]
    plan = plan_fabric("egw", specs, outbound_ip="20.240.128.1")
    assert plan.outbound_sources == ("10.224.0.8/32", "10.244.16.0/24", "10.244.17.0/24")
    assert plan_fabric("egw", specs).outbound_sources == ()  # no outbound IP, no SNAT

    text = render_outbound_nat(plan.internet_link, plan.outbound_sources, plan.outbound_ip)
    assert "delete table ip fabric_outbound" in text
    (rule,) = [line.strip() for line in text.splitlines() if "snat" in line]
    assert rule == (
        'oifname "egw-inet" ip saddr { 10.224.0.8/32, 10.244.16.0/24, 10.244.17.0/24 } '
        "snat ip to 20.240.128.1"
    )
    assert "snat" not in render_outbound_nat("egw-inet", (), None)


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


def test_reads_nodes_roles_secondary_ips_load_balancer_rules_and_outbound_ip() -> None:
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

    roles = {n.name: n.role for n in network.nodes}
    assert roles == {
        **{TOPO.vmss_pools[0].computer_name(i): GATEWAY for i in range(2)},
        **{TOPO.vm_pools[0].vm_name(i): GATEWAY for i in range(2)},
        **{TOPO.user_pools[0].computer_name(i): REGULAR for i in range(2)},
    }
    outbound = store.get(TOPO.outbound_ip_id)
    assert outbound is not None
    assert network.outbound_ip == outbound.properties["ipAddress"]
    vm0 = next(n for n in network.nodes if n.name == TOPO.vm_pools[0].vm_name(0))
    assert vm0.prefix_len == 16 and len(vm0.secondary_ips) == 1
    assert network.secondary_routes() == {vm0.secondary_ips[0]: vm0.primary_ip}
    (rule,) = network.rules
    assert rule.frontend_ip.startswith("10.225.0.")
    assert (rule.protocol, rule.port, rule.floating_ip) == ("udp", 6000, True)
    assert rule.probe == ProbeSpec("http", 8082, "/gw/uid-1")
    assert rule.backends == (vm0.primary_ip,)
    assert len({s.primary_ip for s in network.node_specs()}) == 6


# --- echo records ------------------------------------------------------------------------------


def test_echo_records_skip_a_line_still_being_written(tmp_path: Path) -> None:
    path = tmp_path / "echo.jsonl"
    assert read_records(path) == []
    path.write_text(
        '{"time": 1.5, "proto": "udp", "src_ip": "10.224.0.8", "src_port": 4000}\n{"time": 2'
    )
    (record,) = read_records(path)
    assert (record.proto, record.src_ip, record.src_port) == ("udp", "10.224.0.8", 4000)
