"""The gateway plumbing on real namespaces: what `ip` and `iptables-save` show afterwards, and
that traffic from a gateway interface leaves the node with the configuration's secondary IP.

Each test builds a stand-in node: a namespace "<tag>-h" playing the host (with a host interface
"<tag>e" into an "internet" namespace "<tag>-i"), and lets the code create the gateway namespace
"<tag>-g". The code treats its calling thread's namespace as the host namespace, so every
operation runs on one worker thread that entered "<tag>-h" first: the same pattern the agent
uses for a node of the dev stack.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pyroute2 import netns

from agent import gateway_plumbing
from agent.netns_handles import NetnsHandles
from agent.node_inventory import read_inventory
from agent.node_settings import GatewaySetup, NodeSettings
from agent.orphan_plan import DesiredGateway, plan_orphans
from tests.fixtures.netns import sh

pytestmark = pytest.mark.needs_root

_T = TypeVar("_T")

PRIMARY = "10.1.0.4"
UPLINK = "10.1.0.1"  # the "internet" namespace's side of the host interface
FRONTEND = "10.1.0.100"
INTERNET_SERVER = "198.18.0.1"
KEY = bytes(range(32))

A = GatewaySetup("uid-a", 6000, FRONTEND, PRIMARY, "10.1.0.5", KEY)
B = GatewaySetup("uid-b", 6001, FRONTEND, PRIMARY, "10.1.0.6", KEY)


def ip(ns: str, command: str) -> str:
    return sh("ip", "-n", ns, *shlex.split(command))


def in_ns(ns: str, command: str) -> str:
    return sh("ip", "netns", "exec", ns, *shlex.split(command))


def ip_json(ns: str, *args: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(sh("ip", "-n", ns, "-j", *args) or "[]")
    return result


def nat_rules(ns: str) -> list[str]:
    return [
        line
        for line in in_ns(ns, "iptables-save -t nat").splitlines()
        if line.startswith(("-A", ":"))
    ]


def addresses(ns: str, dev: str) -> set[tuple[str, int, str]]:
    return {
        (info["local"], info["prefixlen"], info.get("label", ""))
        for link in ip_json(ns, "-4", "addr", "show", "dev", dev)
        for info in link["addr_info"]
    }


def routes(ns: str) -> set[str]:
    return {
        " ".join(
            part
            for part in (
                route["dst"],
                f"via {route['gateway']}" if "gateway" in route else "",
                f"dev {route['dev']}",
                f"scope {route.get('scope', 'global')}",
            )
            if part
        )
        for route in ip_json(ns, "-4", "route", "show")
    }


def is_up(ns: str, dev: str) -> bool:
    return "UP" in ip_json(ns, "link", "show", "dev", dev)[0]["flags"]


@dataclass
class Node:
    tag: str
    pool: ThreadPoolExecutor
    handles: NetnsHandles
    settings: NodeSettings
    namespaces: list[str]
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"{self.tag}-h"

    @property
    def gateway(self) -> str:
        return self.settings.gateway_netns

    @property
    def internet(self) -> str:
        return f"{self.tag}-i"

    def run(self, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Call on the node's worker thread, whose namespace is the stand-in host's."""
        return self.pool.submit(call, *args, **kwargs).result()

    def apply(self, setup: GatewaySetup) -> list[str]:
        return self.run(gateway_plumbing.apply_plumbing, setup, self.settings, self.handles)

    def remove(self, port: int, secondary_ip: str) -> list[str]:
        return self.run(
            gateway_plumbing.remove_plumbing, port, secondary_ip, self.settings, self.handles
        )

    def delete_link(self, name: str) -> bool:
        gateway = self.handles.get(self.gateway)
        found = gateway.link_lookup(ifname=name)
        for index in found:
            gateway.link("del", index=index)
        return bool(found)


def _remove_namespace(name: str) -> None:
    if name in netns.listnetns():
        netns.remove(name)


@pytest.fixture
def node(net_tag: str) -> Iterator[Node]:
    host, internet, host_if = f"{net_tag}-h", f"{net_tag}-i", f"{net_tag}e"
    created = [host, internet, f"{net_tag}-g", f"{net_tag}-c"]
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{net_tag}-node")
    handles = NetnsHandles()
    made = Node(
        net_tag,
        pool,
        handles,
        NodeSettings(gateway_netns=f"{net_tag}-g", host_interface=host_if),
        created,
    )
    try:
        for name in (host, internet):
            netns.create(name)
        ip(host, f"link add {host_if} type veth peer name {net_tag}i netns {internet}")
        for ns, dev, address in (
            (host, host_if, f"{PRIMARY}/24"),
            (internet, f"{net_tag}i", f"{UPLINK}/24"),
        ):
            ip(ns, f"addr add {address} dev {dev}")
            ip(ns, f"link set {dev} up")
        root_ns = Path("/proc/self/ns/net").stat().st_ino
        pool.submit(netns.setns, host, flags=0).result()
        worker_ns = made.run(lambda: Path("/proc/thread-self/ns/net").stat().st_ino)
        assert worker_ns != root_ns  # never let a test touch the machine's own namespace
        yield made
    finally:
        pool.submit(handles.close).result()
        pool.shutdown()
        for process in made.processes:  # only the processes this test started, by PID
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        for name in created:
            _remove_namespace(name)


def test_apply_builds_the_gateway_and_repeating_it_changes_nothing(node: Node) -> None:
    first = node.apply(A)
    second = node.apply(A)

    assert first
    assert second == []
    host_if, gw = node.settings.host_interface, node.gateway
    assert in_ns(gw, "cat /proc/sys/net/ipv4/ip_forward").strip() == "1"
    assert is_up(gw, "lo") and is_up(gw, "host0") and is_up(node.host, "host-gateway")
    assert (FRONTEND, 32, f"{host_if}:egress") in addresses(node.host, host_if)
    assert addresses(gw, "host0") == {("10.1.0.5", 32, "host0")}
    assert "10.1.0.5 dev host-gateway scope global" in routes(node.host)
    assert routes(gw) == {
        f"{PRIMARY} dev host0 scope link",
        f"default via {PRIMARY} dev host0 scope global",
    }
    assert nat_rules(node.host) == [
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        ":EGRESS-10-1-0-5 - [0:0]",
        ":EGRESS-GATEWAY-SNAT - [0:0]",
        '-A POSTROUTING -m comment --comment "kube-egress-gateway no MASQUERADE" '
        "-j EGRESS-GATEWAY-SNAT",
        "-A EGRESS-10-1-0-5 -s 10.1.0.5/32 -j ACCEPT",
        '-A EGRESS-GATEWAY-SNAT -m comment --comment "kube-egress-gateway no sNAT packet from '
        'ip 10.1.0.5" -j EGRESS-10-1-0-5',
    ]
    assert nat_rules(gw)[4:] == [
        ":EGRESS-GATEWAY-MARK-6000 - [0:0]",
        ":EGRESS-GATEWAY-SNAT-6000 - [0:0]",
        '-A PREROUTING -m comment --comment "kube-egress-gateway mark packets from gateway link '
        'wg-6000" -j EGRESS-GATEWAY-MARK-6000',
        '-A POSTROUTING -m comment --comment "kube-egress-gateway sNAT packets from gateway link '
        'wg-6000" -j EGRESS-GATEWAY-SNAT-6000',
        "-A EGRESS-GATEWAY-MARK-6000 -i wg-6000 -j CONNMARK --set-xmark 0x1770/0xffffffff",
        "-A EGRESS-GATEWAY-SNAT-6000 -o host0 -m connmark --mark 0x1770 -j SNAT "
        "--to-source 10.1.0.5",
    ]


def test_apply_repairs_half_built_state(node: Node) -> None:
    node.apply(A)
    gw, host_if = node.gateway, node.settings.host_interface
    ip(node.host, "route del 10.1.0.5/32")
    ip(gw, "addr del 10.1.0.5/32 dev host0")
    ip(gw, "link set host0 down")  # also drops the gateway's routes
    ip(node.host, f"addr del {FRONTEND}/32 dev {host_if}")
    ip(node.host, f"addr add 10.1.0.5/32 dev {host_if}")  # moved onto host0, as upstream does
    in_ns(gw, 'sh -c "echo 0 > /proc/sys/net/ipv4/ip_forward"')
    in_ns(gw, "iptables -t nat -F EGRESS-GATEWAY-MARK-6000")
    in_ns(gw, "iptables -t nat -A EGRESS-GATEWAY-SNAT-6000 -j ACCEPT")
    in_ns(node.host, "iptables -t nat -F POSTROUTING")

    repairs = node.apply(A)

    assert set(repairs) == {
        f"added {FRONTEND}/32 to {host_if}",
        "set host0 up in " + gw,
        f"removed 10.1.0.5/32 from {host_if}",
        f"added 10.1.0.5/32 to host0 in {gw}",
        "set route 10.1.0.5/32 dev host-gateway",
        f"set route {PRIMARY}/32 dev host0 scope link in {gw}",
        f"set route default via {PRIMARY} dev host0 in {gw}",
        f"enabled IPv4 forwarding in {gw}",
        "rewrote chain EGRESS-GATEWAY-MARK-6000",
        "rewrote chain EGRESS-GATEWAY-SNAT-6000",
        "added jump POSTROUTING -> EGRESS-GATEWAY-SNAT",
    }
    assert node.apply(A) == []
    assert ("10.1.0.5", 32, host_if) not in addresses(node.host, host_if)
    assert "10.1.0.5 dev host-gateway scope global" in routes(node.host)


def test_a_veth_end_left_in_the_host_namespace_is_moved_into_the_gateway(node: Node) -> None:
    # Upstream creates host0 in the host namespace and moves it: a crash in between leaves this.
    sh("ip", "netns", "add", node.gateway)
    ip(node.host, "link add host-gateway type veth peer name host0")

    changes = node.apply(A)

    assert f"moved host0 into {node.gateway}" in changes
    assert f"created network namespace {node.gateway}" not in changes
    assert not any(link["ifname"] == "host0" for link in ip_json(node.host, "link", "show"))
    assert addresses(node.gateway, "host0") == {("10.1.0.5", 32, "host0")}
    assert node.apply(A) == []


def test_removing_one_configuration_leaves_the_other_untouched(node: Node) -> None:
    node.apply(A)
    node.apply(B)
    gw = node.gateway
    b_host_rules = [rule for rule in nat_rules(node.host) if "10-1-0-6" in rule]
    b_gateway_rules = [rule for rule in nat_rules(gw) if "6001" in rule]

    removed = node.remove(6000, "")  # secondary IP unknown: read from the SNAT rule

    assert set(removed) == {
        "removed chain EGRESS-GATEWAY-MARK-6000",
        "removed chain EGRESS-GATEWAY-SNAT-6000",
        f"removed 10.1.0.5/32 from host0 in {gw}",
        "removed route 10.1.0.5/32 dev host-gateway",
        "removed chain EGRESS-10-1-0-5",
        "removed egressgw_reply_6000",
    }
    assert node.remove(6000, "10.1.0.5") == []
    assert addresses(gw, "host0") == {("10.1.0.6", 32, "host0")}
    assert "10.1.0.5 dev host-gateway scope global" not in routes(node.host)
    assert "10.1.0.6 dev host-gateway scope global" in routes(node.host)
    assert not any("6000" in rule or "10-1-0-5" in rule for rule in nat_rules(gw))
    assert not any("10-1-0-5" in rule for rule in nat_rules(node.host))
    assert [rule for rule in nat_rules(node.host) if "10-1-0-6" in rule] == b_host_rules
    assert [rule for rule in nat_rules(gw) if "6001" in rule] == b_gateway_rules
    tables = subprocess.run(
        ["ip", "netns", "exec", node.host, "nft", "list", "tables"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "egressgw_reply_6001" in tables and "egressgw_reply_6000" not in tables
    assert node.apply(B) == []


def test_orphan_removal_takes_only_ours(node: Node) -> None:
    gw, host_if = node.gateway, node.settings.host_interface
    node.apply(A)
    node.apply(B)
    for port, uid in ((6000, "uid-a"), (6001, "uid-b")):  # stand-ins for the WireGuard links
        ip(gw, f"link add wg-{port} type bridge")
        ip(gw, f"link set wg-{port} alias {uid}")
    # Things that are not ours and must survive.
    ip(gw, "link add other0 type bridge")
    ip(node.host, f"addr add 10.1.0.50/32 dev {host_if}")
    in_ns(node.host, f"iptables -t nat -A POSTROUTING -o {host_if} -j MASQUERADE")
    in_ns(gw, "iptables -t nat -N EGRESS-GATEWAY-CUSTOM")
    desired_a = DesiredGateway("uid-a", 6000, "10.1.0.5", FRONTEND)

    inventory = node.run(read_inventory, node.settings, node.handles)
    assert inventory.wireguard_links == {"wg-6000": "uid-a", "wg-6001": "uid-b"}
    plan = plan_orphans(inventory, [desired_a])
    removed = node.run(
        gateway_plumbing.remove_orphans,
        plan,
        node.settings,
        node.handles,
        delete_link=node.delete_link,
    )

    assert "deleted wg-6001" in removed
    assert node.apply(A) == []  # A is whole
    after = node.run(read_inventory, node.settings, node.handles)
    assert plan_orphans(after, [desired_a]).empty
    assert set(after.wireguard_links) == {"wg-6000"}
    assert after.host0_addresses == {"10.1.0.5"}

    everything = plan_orphans(after, [])
    node.run(
        gateway_plumbing.remove_orphans,
        everything,
        node.settings,
        node.handles,
        delete_link=node.delete_link,
    )

    emptied = node.run(read_inventory, node.settings, node.handles)
    assert plan_orphans(emptied, []).empty
    assert not emptied.snat_base_chain and not emptied.frontend_addresses
    assert nat_rules(node.host)[4:] == [f"-A POSTROUTING -o {host_if} -j MASQUERADE"]
    assert nat_rules(gw)[4:] == [":EGRESS-GATEWAY-CUSTOM - [0:0]"]
    assert any(link["ifname"] == "other0" for link in ip_json(gw, "link", "show"))
    assert ("10.1.0.50", 32, host_if) in addresses(node.host, host_if)
    assert is_up(gw, "host0")  # the veth is never deleted, as upstream


_ECHO_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 7007))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(100)
    s.sendto(peer[0].encode(), peer)
"""

_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(b"hello", (sys.argv[1], 7007))
print(s.recvfrom(100)[0].decode())
"""


def test_traffic_from_a_gateway_link_leaves_with_the_secondary_ip(node: Node) -> None:
    """client -> wg-6000 (a veth standing in) -> gateway ns -> host0 -> host -> internet: the
    internet sees 10.1.0.5, although the host masquerades everything else on its interface."""
    tag, gw, host_if = node.tag, node.gateway, node.settings.host_interface
    client = f"{tag}-c"
    node.apply(A)
    netns.create(client)
    ip(gw, f"link add wg-6000 type veth peer name {tag}c netns {client}")
    ip(gw, "addr add 10.20.0.1/24 dev wg-6000")
    ip(gw, "link set wg-6000 up")
    ip(client, f"addr add 10.20.0.2/24 dev {tag}c")
    ip(client, f"link set {tag}c up")
    ip(client, "route add default via 10.20.0.1")
    # The host: forwards, masquerades its own traffic, reaches the internet via its uplink.
    in_ns(node.host, 'sh -c "echo 1 > /proc/sys/net/ipv4/ip_forward"')
    in_ns(node.host, f"iptables -t nat -A POSTROUTING -o {host_if} -j MASQUERADE")
    ip(node.host, f"route add 198.18.0.0/24 via {UPLINK}")
    # The internet: a server address, and the way back to the secondary IP via the node.
    ip(node.internet, f"addr add {INTERNET_SERVER}/32 dev {tag}i")
    ip(node.internet, f"route add 10.1.0.5/32 via {PRIMARY}")
    in_internet = ["ip", "netns", "exec", node.internet]  # execs: Popen.pid is the server's
    server = subprocess.Popen(
        [*in_internet, sys.executable, "-c", _ECHO_SERVER, INTERNET_SERVER],
        stdout=subprocess.PIPE,
        text=True,
    )
    node.processes.append(server)
    assert server.stdout is not None
    assert server.stdout.readline().strip() == "ready"

    seen = sh("ip", "netns", "exec", client, sys.executable, "-c", _CLIENT, INTERNET_SERVER)

    assert seen.strip() == "10.1.0.5"
