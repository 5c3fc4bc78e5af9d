"""The emulated network on real namespaces: a client's UDP to the load balancer frontend reaches a
healthy gateway node with its destination unchanged, an unhealthy node stops getting flows after
the next poll, a node's secondary IP reaches the internet echo as the source (private mode) or as
its public IP while ARM gives its ipConfiguration one (public mode: Azure's edge), and destroy()
leaves nothing behind.

The nodes, their secondary IPs and the load balancer come from the ARM emulator's records,
written through its API as the controller would.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sim.arm import ids
from sim.arm.api import ArmApi, ArmRequest
from sim.arm.seed import seed_topology
from sim.arm.store import Store, Transaction
from sim.fabric.arm_view import read_arm_network
from sim.fabric.network import Fabric, netns_command
from sim.fabric.plan import FabricPlan, plan_fabric
from sim.topology import Topology

pytestmark = pytest.mark.needs_root

TOPO = Topology()
RG = TOPO.resource_group_id
LB_ID = f"{RG}/providers/Microsoft.Network/loadBalancers/kubeegressgateway-ilb"
POOL_ID = f"{LB_ID}/backendAddressPools/be"
SGC_UID = "0b4c7f6e-1f7a-4d7e-9a53-3f6d2f0c1a11"
PORT = 6000
PROBE_PORT = 8082
CLIENT_IP = "10.244.0.5"
SOURCE_PORTS = range(41000, 41024)

# A gateway node's stand-in: the probe server (/gw/<uid>: 200 while the uid is served and no
# "down" file exists, else 503) and a UDP socket bound to the frontend IP that answers with the
# node's name, which proves the destination arrived unchanged.
NODE_SERVER = """
import http.server, pathlib, socket, sys, threading
node, frontend, port, probe_port, down, uid = sys.argv[1:7]
class Probe(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        parts = self.path.split("/")
        if len(parts) != 3 or parts[1] != "gw":
            status = 400
        else:
            status = 200 if parts[2] == uid and not pathlib.Path(down).exists() else 503
        self.send_response(status)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("0.0.0.0", int(probe_port)), Probe)
threading.Thread(target=server.serve_forever, daemon=True).start()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind((frontend, int(port)))
print("ready", flush=True)
while True:
    data, peer = udp.recvfrom(2048)
    udp.sendto(node.encode(), peer)
"""

# Sends one datagram from each source port and prints {port: answer}; "" when nothing came back.
SENDER = """
import json, socket, sys
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = {}
for sport in map(int, sys.argv[4:]):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.bind((src, sport))
        s.sendto(b"hello", (dst, port))
        try:
            data, peer = s.recvfrom(2048)
            out[sport] = f"{data.decode()}@{peer[0]}"
        except TimeoutError:
            out[sport] = ""
print(json.dumps(out))
"""


def _put(api: ArmApi, resource_id: str, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    path = ids.parse_path(resource_id)
    answer = api.handle(ArmRequest("PUT", path, {"api-version": "2024-05-01"}, {}, raw), None)
    assert answer.status < 300, answer.body


def _ref(resource_id: str) -> dict[str, str]:
    return {"id": resource_id}


def _load_balancer_body() -> dict[str, Any]:
    gateway_subnet = (
        f"{RG}/providers/Microsoft.Network/virtualNetworks/{TOPO.vnet_name}/subnets/"
        f"{TOPO.gateway_subnet_name}"
    )
    return {
        "location": TOPO.location,
        "sku": {"name": "Standard"},
        "properties": {
            "frontendIPConfigurations": [
                {
                    "name": "fe",
                    "properties": {
                        "privateIPAllocationMethod": "Dynamic",
                        "subnet": _ref(gateway_subnet),
                    },
                }
            ],
            "backendAddressPools": [{"name": "be"}],
            "probes": [
                {
                    "name": SGC_UID,
                    "properties": {
                        "protocol": "Http",
                        "port": PROBE_PORT,
                        "requestPath": f"/gw/{SGC_UID}",
                        "intervalInSeconds": 5,
                        "probeThreshold": 1,
                    },
                }
            ],
            "loadBalancingRules": [
                {
                    "name": SGC_UID,
                    "properties": {
                        "frontendIPConfiguration": _ref(f"{LB_ID}/frontendIPConfigurations/fe"),
                        "backendAddressPool": _ref(POOL_ID),
                        "probe": _ref(f"{LB_ID}/probes/{SGC_UID}"),
                        "protocol": "Udp",
                        "frontendPort": PORT,
                        "backendPort": PORT,
                        "enableFloatingIP": True,
                    },
                }
            ],
        },
    }


def _put_gateway_nic(
    api: ArmApi, store: Store, index: int, *, secondary: bool, public_ip: str | None = None
) -> None:
    """The controller's change to a VM pool NIC: primary joins the backend pool, plus (or minus)
    one secondary ipConfiguration, with the public IP resource `public_ip` in public mode."""
    nic_id = (
        f"{RG}/providers/Microsoft.Network/networkInterfaces/{TOPO.vm_pools[0].nic_name(index)}"
    )
    record = store.get(nic_id)
    assert record is not None
    primary = next(
        c for c in api.render(record)["properties"]["ipConfigurations"] if c["name"] == "ipconfig1"
    )
    primary["properties"]["loadBalancerBackendAddressPools"] = [_ref(POOL_ID)]
    configs = [{"name": "ipconfig1", "properties": primary["properties"]}]
    if secondary:
        props = {
            "privateIPAllocationMethod": "Dynamic",
            "subnet": primary["properties"]["subnet"],
        }
        if public_ip is not None:
            props["publicIPAddress"] = _ref(public_ip)
        configs.append({"name": "sgc", "properties": props})
    _put(api, nic_id, {"location": TOPO.location, "properties": {"ipConfigurations": configs}})


@dataclass
class World:
    fabric: Fabric
    plan: FabricPlan
    store: Store
    api: ArmApi
    frontend_ip: str
    down_files: dict[str, Path]  # node name -> file whose presence makes its probe answer 503
    servers: dict[str, subprocess.Popen[str]]

    def send(self, netns: str, src: str, dst: str, port: int, sports: range) -> dict[int, str]:
        argv = [sys.executable, "-c", SENDER, src, dst, str(port), *map(str, sports)]
        done = subprocess.run(
            netns_command(netns, argv), capture_output=True, text=True, check=True
        )
        return {int(k): v for k, v in json.loads(done.stdout).items()}


def _run(netns: str, *argv: str) -> str:
    done = subprocess.run(
        netns_command(netns, list(argv)), capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def world(net_tag: str, tmp_path: Path) -> Iterator[World]:
    store = _seeded()
    api = ArmApi(store, lambda: "https://127.0.0.1", lambda: None, 100)
    _put(api, LB_ID, _load_balancer_body())
    for index in range(TOPO.vm_pools[0].vm_count):
        _put_gateway_nic(api, store, index, secondary=index == 0)
    network = read_arm_network(store)
    vm_nodes = [s for s in network.node_specs() if s.name.startswith("aks-gwvmpool-")]
    plan = plan_fabric(net_tag, vm_nodes)
    fabric = Fabric(plan, tmp_path, probe_interval=0.2, probe_timeout=1.0)
    servers: dict[str, subprocess.Popen[str]] = {}
    try:
        fabric.build()
        fabric.sync_from_arm(store)
        (rule,) = fabric.rules
        down_files = {n.name: tmp_path / f"{n.netns}.down" for n in plan.nodes}
        for node in plan.nodes:
            # What the agent does on its host interface: hold the frontend IP.
            _run(node.netns, "ip", "addr", "add", f"{rule.frontend_ip}/32", "dev", "eth0")
            argv = [
                sys.executable, "-c", NODE_SERVER, node.name, rule.frontend_ip, str(PORT),
                str(PROBE_PORT), str(down_files[node.name]), SGC_UID,
            ]  # fmt: skip
            proc = subprocess.Popen(
                netns_command(node.netns, argv), stdout=subprocess.PIPE, text=True
            )
            servers[node.name] = proc
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        fabric.add_client("c", CLIENT_IP)
        yield World(fabric, plan, store, api, rule.frontend_ip, down_files, servers)
    finally:
        fabric.stop_probing()
        for proc in servers.values():
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        fabric.destroy()


def _answering_nodes(world: World) -> dict[int, str]:
    answers = world.send(f"{world.plan.prefix}-c", CLIENT_IP, world.frontend_ip, PORT, SOURCE_PORTS)
    nodes = {}
    for sport, answer in answers.items():
        node, _, replied_from = answer.partition("@")
        assert replied_from == world.frontend_ip, f"flow from port {sport}: {answer!r}"
        nodes[sport] = node
    return nodes


def test_flows_to_the_frontend_reach_healthy_nodes_with_destination_unchanged(world: World) -> None:
    results = world.fabric.probe_once()
    assert set(results.values()) == {True}

    first = _answering_nodes(world)
    again = _answering_nodes(world)

    assert set(first.values()) == {n.name for n in world.plan.nodes}  # spread over both
    assert again == first  # each flow sticks to its node


def test_a_node_whose_probe_fails_gets_no_new_flows_after_the_next_poll(world: World) -> None:
    down, up = world.plan.nodes
    world.fabric.probe_once()
    world.down_files[down.name].touch()
    world.fabric.probe_once()

    assert set(_answering_nodes(world).values()) == {up.name}
    (rule,) = world.fabric.rules
    assert world.fabric.serving_backends(rule) == (up.primary_ip,)

    # A stopped probe server counts as down too; with no healthy node left, both serve again.
    world.servers[up.name].kill()
    world.servers[up.name].wait()
    world.fabric.probe_once()
    assert world.fabric.serving_backends(rule) == (down.primary_ip, up.primary_ip)


def test_the_polling_thread_takes_a_node_out_and_back(world: World) -> None:
    node = world.plan.nodes[0]
    (rule,) = world.fabric.rules
    world.fabric.start_probing()

    def after_next_poll() -> tuple[str, ...]:
        rounds = world.fabric.probe_rounds
        deadline = time.monotonic() + 30
        while world.fabric.probe_rounds < rounds + 2:  # one round may have started before
            assert time.monotonic() < deadline, "the prober stopped polling"
            time.sleep(0.05)
        return world.fabric.serving_backends(rule)

    world.down_files[node.name].touch()
    assert node.primary_ip not in after_next_poll()
    assert node.name not in _answering_nodes(world).values()
    world.down_files[node.name].unlink()
    assert node.primary_ip in after_next_poll()


def test_traffic_from_a_secondary_ip_reaches_the_internet_with_that_source(world: World) -> None:
    network = read_arm_network(world.store)
    (holder,) = [n for n in network.nodes if n.secondary_ips]
    node = world.plan.node(holder.name)
    secondary = holder.secondary_ips[0]
    # What the gateway's SNAT produces, short of the agent: packets from the secondary IP.
    _run(node.netns, "ip", "addr", "add", f"{secondary}/32", "dev", "eth0")

    answers = world.send(
        node.netns, secondary, world.plan.echo_ip, world.plan.echo_port, range(42000, 42001)
    )

    assert answers == {42000: f"{secondary}\n@{world.plan.echo_ip}"}
    records = world.fabric.echo_records()
    assert [(r.proto, r.src_ip, r.src_port) for r in records] == [("udp", secondary, 42000)]


def _public_ip_from_prefix(api: ArmApi, store: Store) -> tuple[str, str, str]:
    """What the controller creates for a VM pool NIC in public mode: a prefix and a public IP
    from it. (public IP ID, its address, the prefix)."""
    prefix_id = f"{RG}/providers/Microsoft.Network/publicIPPrefixes/egressgateway-edge"
    pip_id = f"{RG}/providers/Microsoft.Network/publicIPAddresses/egressgateway-edge-0"
    _put(api, prefix_id, {"location": TOPO.location, "properties": {"prefixLength": 31}})
    _put(
        api,
        pip_id,
        {
            "location": TOPO.location,
            "sku": {"name": "Standard"},
            "properties": {"publicIPPrefix": _ref(prefix_id)},
        },
    )
    prefix, pip = store.get(prefix_id), store.get(pip_id)
    assert prefix is not None and pip is not None
    return pip_id, str(pip.properties["ipAddress"]), str(prefix.properties["ipPrefix"])


def test_a_secondary_ip_leaves_with_its_public_ip_while_arm_gives_it_one(world: World) -> None:
    pip_id, public, prefix = _public_ip_from_prefix(world.api, world.store)
    assert ipaddress.IPv4Address(public) in ipaddress.IPv4Network(prefix)
    holder_name = next(n.name for n in read_arm_network(world.store).nodes if n.secondary_ips)
    index = [n.name for n in world.plan.nodes].index(holder_name)
    _put_gateway_nic(world.api, world.store, index, secondary=True, public_ip=pip_id)
    world.fabric.sync_from_arm(world.store)
    (holder,) = [n for n in read_arm_network(world.store).nodes if n.name == holder_name]
    node = world.plan.node(holder.name)
    (secondary,) = holder.secondary_ips
    _run(node.netns, "ip", "addr", "add", f"{secondary}/32", "dev", "eth0")
    assert world.fabric.translations == {secondary: public}

    def send_once() -> str:
        sport = 42000  # the same flow every time: a change must reach flows already tracked
        answers = world.send(
            node.netns, secondary, world.plan.echo_ip, world.plan.echo_port, range(sport, sport + 1)
        )
        return answers[sport]

    # The echo sees the public IP, and its answer finds the way back to the secondary IP.
    assert send_once() == f"{public}\n@{world.plan.echo_ip}"
    assert send_once() == f"{public}\n@{world.plan.echo_ip}"
    # The public IP taken off the ipConfiguration (its private IP stays): private mode again.
    _put_gateway_nic(world.api, world.store, index, secondary=True)
    world.fabric.sync_from_arm(world.store)
    assert world.fabric.translations == {}
    assert send_once() == f"{secondary}\n@{world.plan.echo_ip}"
    # Given back: public again, for the same flow.
    _put_gateway_nic(world.api, world.store, index, secondary=True, public_ip=pip_id)
    world.fabric.sync_from_arm(world.store)
    assert send_once() == f"{public}\n@{world.plan.echo_ip}"

    records = [(r.src_ip, r.src_port) for r in world.fabric.echo_records()]
    assert records == [(public, 42000), (public, 42000), (secondary, 42000), (public, 42000)]


def test_routes_follow_secondary_ips_in_arm(world: World) -> None:
    router = world.plan.router_netns
    (holder,) = [n for n in read_arm_network(world.store).nodes if n.secondary_ips]
    node = world.plan.node(holder.name)
    assert f"{holder.secondary_ips[0]} via {node.primary_ip}" in _run(router, "ip", "route")

    index = [n.name for n in world.plan.nodes].index(holder.name)
    _put_gateway_nic(world.api, world.store, index, secondary=False)
    world.fabric.sync_from_arm(world.store)

    assert holder.secondary_ips[0] not in _run(router, "ip", "route")


def test_destroy_leaves_no_namespace_link_or_process(net_tag: str, world: World) -> None:
    echo_pid = world.fabric.echo_pid
    assert echo_pid is not None
    client = world.plan.client("c", CLIENT_IP)
    for proc in world.servers.values():
        proc.kill()
        proc.wait()

    world.fabric.destroy()

    left = _run_root("ip", "netns", "list")
    assert net_tag not in left
    assert net_tag not in _run_root("ip", "-o", "link")
    assert not Path(f"/proc/{echo_pid}").exists()
    assert client.netns not in left
    world.fabric.destroy()  # twice is fine


def _run_root(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True).stdout


def test_destroy_cleans_up_a_half_built_fabric(net_tag: str, tmp_path: Path) -> None:
    plan = plan_fabric(net_tag, read_arm_network(_seeded()).node_specs()[:2])
    fabric = Fabric(plan, tmp_path)
    # Half a build: the router and one node exist, the rest never came.
    subprocess.run(["ip", "netns", "add", plan.router_netns], check=True)
    subprocess.run(["ip", "netns", "add", plan.nodes[0].netns], check=True)
    try:
        fabric.destroy()
        assert net_tag not in _run_root("ip", "netns", "list")
    finally:
        for name in plan.namespaces:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def _seeded() -> Store:
    store = Store()
    tx = Transaction(store)
    seed_topology(tx, TOPO)
    tx.commit()
    return store


def test_echo_answers_tcp_with_the_source_it_saw(world: World) -> None:
    code = (
        "import socket, sys\n"
        "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)\n"
        "print(s.recv(100).decode().strip())\n"
    )
    client = world.plan.client("c", CLIENT_IP)
    seen = _run(
        client.netns, sys.executable, "-c", code, world.plan.echo_ip, str(world.plan.echo_port)
    )
    assert seen.strip() == CLIENT_IP
    assert [(r.proto, r.src_ip) for r in world.fabric.echo_records()] == [("tcp", CLIENT_IP)]


async def test_following_arm_routes_a_new_secondary_ip(world: World) -> None:
    router = world.plan.router_netns
    second = world.plan.nodes[1]
    index = [n.name for n in world.plan.nodes].index(second.name)
    task = asyncio.create_task(world.fabric.follow_arm(world.store, interval=0.05))
    try:
        _put_gateway_nic(world.api, world.store, index, secondary=True)
        (added,) = next(
            n for n in read_arm_network(world.store).nodes if n.name == second.name
        ).secondary_ips
        expected = f"{added} via {second.primary_ip}"
        for _ in range(200):
            if expected in await asyncio.to_thread(_run, router, "ip", "route"):
                break
            await asyncio.sleep(0.05)
        assert expected in _run(router, "ip", "route")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
