"""Regular nodes in the emulated network, on real namespaces: a regular node reaches the internet
with the cluster's outbound public IP; a pod attached by the node's CNI chain (the real `bridge`,
`host-local` and `loopback` plugins from the cached Kubernetes binaries, run inside the node's
namespace) gets an address of the node's pod CIDR, reaches the echo with the outbound IP and a pod
on the other regular node with its own address; gateway nodes and clients leave unchanged.

Nodes and the outbound IP come from the ARM emulator's records of the seeded topology.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sim.arm.seed import seed_topology
from sim.arm.store import Store, Transaction
from sim.control_plane.binaries import kube_binaries
from sim.fabric import namespaces
from sim.fabric.arm_view import read_arm_network
from sim.fabric.cni import NodeCni, install_node_cni
from sim.fabric.network import Fabric, netns_command
from sim.fabric.plan import REGULAR, FabricPlan, NodePlan, plan_fabric
from sim.topology import Topology

CLIENT_IP = "10.244.0.5"
POD_PORT = 7070

# One UDP datagram to dst:port from an ephemeral port; prints the answer ("" when none came).
SEND = """
import socket, sys
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.settimeout(3)
    s.sendto(b"hi", (sys.argv[1], int(sys.argv[2])))
    try:
        print(s.recvfrom(200)[0].decode().strip())
    except TimeoutError:
        print("")
"""

# A pod's server: answers each UDP datagram with the source address it saw.
SERVE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(200)
    s.sendto(peer[0].encode(), peer)
"""


def _run(netns: str, *argv: str) -> str:
    done = subprocess.run(
        netns_command(netns, list(argv)), capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout


def _send(netns: str, dst: str, port: int) -> str:
    return _run(netns, sys.executable, "-c", SEND, dst, str(port)).strip()


@dataclass
class Pod:
    name: str  # its namespace
    node: NodePlan
    cni: NodeCni
    result: dict[str, Any]  # the CNI chain's ADD result

    @property
    def ip(self) -> str:
        (address,) = self.result["ips"]
        return str(address["address"]).split("/")[0]


def _cni(pod_netns: str, node: NodePlan, cni: NodeCni, command: str) -> dict[str, Any]:
    """The node's conflist run as a container runtime runs it (CNI spec 1.0: ADD through the
    plugins in order, each given the previous result; DEL in reverse), in the node's namespace."""
    conflist = json.loads(cni.conflist.read_text())
    plugins = conflist["plugins"] if command == "ADD" else conflist["plugins"][::-1]
    env = {
        "PATH": os.environ["PATH"],
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": pod_netns,
        "CNI_NETNS": f"/var/run/netns/{pod_netns}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(cni.bin_dir),
    }
    result: dict[str, Any] = {}
    for plugin in plugins:
        config = {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **plugin}
        if result:
            config["prevResult"] = result
        done = subprocess.run(
            netns_command(node.netns, [str(cni.bin_dir / plugin["type"])]),
            input=json.dumps(config),
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=30,
        )
        assert done.returncode == 0, f"{plugin['type']} {command}: {done.stdout}{done.stderr}"
        if command == "ADD":
            result = json.loads(done.stdout)
    return result


@dataclass
class Nodes:
    fabric: Fabric
    plan: FabricPlan
    outbound_ip: str
    cnis: dict[str, NodeCni]
    tag: str
    pods: list[Pod]
    servers: list[subprocess.Popen[str]]

    def regular(self, index: int) -> NodePlan:
        return self.plan.regular_nodes[index]

    def pod(self, suffix: str, node: NodePlan) -> Pod:
        name = f"{self.tag}-pod{suffix}"
        namespaces.create(name)
        pod = Pod(name, node, self.cnis[node.name], {})
        self.pods.append(pod)
        pod.result = _cni(name, node, pod.cni, "ADD")
        return pod

    def serve(self, netns: str) -> None:
        argv = [sys.executable, "-c", SERVE, str(POD_PORT)]
        proc = subprocess.Popen(netns_command(netns, argv), stdout=subprocess.PIPE, text=True)
        self.servers.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def echo_sources(self) -> list[str]:
        return [r.src_ip for r in self.fabric.echo_records()]


@pytest.fixture
def nodes(net_tag: str, tmp_path: Path) -> Iterator[Nodes]:
    store = Store()
    tx = Transaction(store)
    seed_topology(tx, Topology())
    tx.commit()
    network = read_arm_network(store)
    assert network.outbound_ip is not None
    plan = plan_fabric(net_tag, network.node_specs(), outbound_ip=network.outbound_ip)
    fabric = Fabric(plan, tmp_path / "network")
    plugins = kube_binaries(build=False).directory
    cnis = {n.name: NodeCni.under(tmp_path / "nodes" / n.name / "cni") for n in plan.nodes}
    world = Nodes(fabric, plan, network.outbound_ip, cnis, net_tag, [], [])
    try:
        fabric.build()
        for node in plan.nodes:
            install_node_cni(cnis[node.name], node.pod_cidr, plugins)
        yield world
    finally:
        for proc in world.servers:
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        for pod in world.pods:
            if namespaces.exists(pod.name):
                _cni(pod.name, pod.node, pod.cni, "DEL")
                namespaces.remove(pod.name)
        fabric.destroy()


def test_a_regular_node_reaches_the_internet_with_the_outbound_ip(nodes: Nodes) -> None:
    node = nodes.regular(0)
    assert node.role == REGULAR

    seen = _send(node.netns, nodes.plan.echo_ip, nodes.plan.echo_port)

    assert seen == nodes.outbound_ip != node.primary_ip
    assert nodes.echo_sources() == [nodes.outbound_ip]


def test_gateway_nodes_and_clients_leave_with_their_own_addresses(nodes: Nodes) -> None:
    gateway = nodes.plan.gateway_nodes[0]
    client = nodes.fabric.add_client("c", CLIENT_IP)

    assert _send(gateway.netns, nodes.plan.echo_ip, nodes.plan.echo_port) == gateway.primary_ip
    assert _send(client.netns, nodes.plan.echo_ip, nodes.plan.echo_port) == CLIENT_IP
    assert nodes.echo_sources() == [gateway.primary_ip, CLIENT_IP]


def test_a_pod_on_the_cni_chain_reaches_the_internet_and_a_pod_on_another_node(
    nodes: Nodes,
) -> None:
    first, second = nodes.regular(0), nodes.regular(1)
    here = nodes.pod("a", first)
    there = nodes.pod("b", second)

    assert ipaddress.IPv4Address(here.ip) in ipaddress.IPv4Network(first.pod_cidr)
    assert ipaddress.IPv4Address(there.ip) in ipaddress.IPv4Network(second.pod_cidr)
    assert here.result["ips"][0]["gateway"] == first.pod_gateway_ip
    assert f"inet {here.ip}/24" in _run(here.name, "ip", "-4", "addr", "show", "eth0")
    assert "<LOOPBACK,UP," in _run(here.name, "ip", "link", "show", "lo")

    # To the internet: SNATed to the cluster's outbound IP at the VNet's edge.
    assert _send(here.name, nodes.plan.echo_ip, nodes.plan.echo_port) == nodes.outbound_ip
    assert nodes.echo_sources() == [nodes.outbound_ip]

    # To a pod on the other node, and to a gateway node: the pod's own address arrives.
    nodes.serve(there.name)
    assert _send(here.name, there.ip, POD_PORT) == here.ip
    gateway = nodes.plan.gateway_nodes[0]
    nodes.serve(gateway.netns)
    assert _send(here.name, gateway.primary_ip, POD_PORT) == here.ip


def test_deleting_a_pod_returns_its_address_and_destroy_leaves_nothing(
    nodes: Nodes, net_tag: str
) -> None:
    node = nodes.regular(0)
    pod = nodes.pod("a", node)
    leases = nodes.cnis[node.name].data_dir / "pods"
    assert (leases / pod.ip).exists()

    _cni(pod.name, node, pod.cni, "DEL")
    namespaces.remove(pod.name)

    assert not (leases / pod.ip).exists()
    nodes.fabric.destroy()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert net_tag not in listed.stdout and net_tag not in links.stdout
