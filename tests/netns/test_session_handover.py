"""A gateway hands a moved pod over to itself: two stand-in nodes A and B hold the same
configuration (same key, frontend IP, port) behind a router namespace that plays the load
balancer (its route to the frontend IP picks the node). A pod with its own wireguard-go has its
session with A; the route then moves to B, which cannot decrypt the pod's packets. B's
hand_over starts a handshake towards the pod, and the pod's traffic flows through B well before
WireGuard's own 15 s timer. B never nudges a pod whose flow it does not see.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from pyroute2 import netns

from agent import wireguard_uapi
from agent.gateway_dataplane import Dataplane, open_dataplane
from agent.node_settings import GatewaySetup, NodeSettings
from agent.peer_plan import PeerSpec
from agent.wireguard_keys import generate_private_key, public_key_of
from tests.fixtures.netns import sh, stop_daemons

pytestmark = pytest.mark.needs_root

FRONTEND = "10.1.0.100"
PORT = 6000
POD_IP = "10.244.0.5"
GATEWAY_KEY = generate_private_key()
# node -> (primary IP, router side, secondary IP)
NODES = {"a": ("10.1.0.4", "10.1.0.1", "10.1.0.5"), "b": ("10.2.0.4", "10.2.0.1", "10.2.0.5")}


def udp_socket(namespace: str) -> socket.socket:
    sock: socket.socket = netns.create_socket(
        netns=namespace, family=socket.AF_INET, socket_type=socket.SOCK_DGRAM
    )
    sock.settimeout(0.2)
    return sock


def arrives(sender: socket.socket, receiver: socket.socket, address: str) -> bool:
    """One datagram from the pod through the tunnel reaches a gateway namespace."""
    sender.sendto(b"hello", (address, 7000))
    try:
        data, source = receiver.recvfrom(100)
    except TimeoutError:
        return False
    return (data, source[0]) == (b"hello", POD_IP)


@dataclass
class Stand:
    tag: str
    dataplanes: dict[str, Dataplane]

    @property
    def pod(self) -> str:
        return f"{self.tag}-p"

    @property
    def router(self) -> str:
        return f"{self.tag}-r"

    def balance_to(self, node: str) -> None:
        sh("ip", "-n", self.router, "route", "replace", f"{FRONTEND}/32", "via", NODES[node][0])


def build(tag: str) -> None:
    router, pod = f"{tag}-r", f"{tag}-p"
    for name in (router, pod, f"{tag}-ah", f"{tag}-bh"):
        netns.create(name)
    sh("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    sh("ip", "-n", router, "link", "add", f"{tag}rp", "type", "veth", "peer", "name", f"{tag}p",
       "netns", pod)  # fmt: skip
    sh("ip", "-n", router, "addr", "add", "10.244.0.1/24", "dev", f"{tag}rp")
    sh("ip", "-n", pod, "addr", "add", f"{POD_IP}/24", "dev", f"{tag}p")
    for ns, dev in ((router, f"{tag}rp"), (pod, f"{tag}p"), (pod, "lo")):
        sh("ip", "-n", ns, "link", "set", dev, "up")
    sh("ip", "-n", pod, "route", "add", "default", "via", "10.244.0.1")
    for node, (primary, router_side, _secondary) in NODES.items():
        host = f"{tag}-{node}h"
        sh("ip", "-n", router, "link", "add", f"{tag}r{node}", "type", "veth", "peer", "name",
           f"{tag}{node}e", "netns", host)  # fmt: skip
        sh("ip", "-n", router, "addr", "add", f"{router_side}/24", "dev", f"{tag}r{node}")
        sh("ip", "-n", router, "link", "set", f"{tag}r{node}", "up")
        sh("ip", "-n", host, "addr", "add", f"{primary}/24", "dev", f"{tag}{node}e")
        sh("ip", "-n", host, "link", "set", f"{tag}{node}e", "up")
        sh("ip", "-n", host, "route", "add", "default", "via", router_side)


@pytest.fixture
def pod_daemon(net_tag: str) -> Iterator[tuple[str, bytes]]:
    """The pod's wireguard-go (started by this fixture, stopped by PID) and its key; the
    namespaces are made here too so the daemon has somewhere to live."""
    pod_key = generate_private_key()
    created = [f"{net_tag}-{suffix}" for suffix in ("r", "p", "ah", "bh", "ag", "bg")]
    ifname = f"{net_tag}pw"
    process: subprocess.Popen[bytes] | None = None
    try:
        build(net_tag)
        process = subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{net_tag}-p", "wireguard-go", "-f", ifname],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "WG_PROCESS_FOREGROUND": "1"},
        )
        deadline = time.monotonic() + 5
        while not wireguard_uapi.socket_path(ifname).exists():
            assert process.poll() is None and time.monotonic() < deadline, "no pod wireguard-go"
            time.sleep(0.01)
        yield ifname, pod_key
    finally:
        if process is not None:
            process.kill()
            process.wait()
        wireguard_uapi.socket_path(ifname).unlink(missing_ok=True)
        for name in created:
            if name in netns.listnetns():
                netns.remove(name)


@pytest.fixture
async def stand(net_tag: str, pod_daemon: tuple[str, bytes]) -> AsyncIterator[Stand]:
    dataplanes: dict[str, Dataplane] = {}
    try:
        for node in NODES:
            settings = NodeSettings(
                gateway_netns=f"{net_tag}-{node}g",
                host_interface=f"{net_tag}{node}e",
                socket_tag=f"{net_tag}{node}",
            )
            dataplanes[node] = open_dataplane(settings, host_netns=f"{net_tag}-{node}h")
        yield Stand(net_tag, dataplanes)
    finally:
        for dataplane in dataplanes.values():
            await dataplane.close()
        stop_daemons(net_tag)


def configure_pod(stand: Stand, ifname: str, pod_key: bytes) -> None:
    gateway = public_key_of(GATEWAY_KEY).hex()
    reply = wireguard_uapi.call(
        wireguard_uapi.socket_path(ifname),
        f"set=1\nprivate_key={pod_key.hex()}\npublic_key={gateway}\n"
        f"endpoint={FRONTEND}:{PORT}\nallowed_ip=0.0.0.0/0\n\n",
    )
    wireguard_uapi.check_set_reply(reply)
    sh("ip", "-n", stand.pod, "link", "set", ifname, "up")
    for _primary, _router, secondary in NODES.values():
        # The gateways' secondary IPs answer pings from inside their gateway namespaces.
        sh("ip", "-n", stand.pod, "route", "add", f"{secondary}/32", "dev", ifname)


async def test_moved_pod_is_handed_over_to_the_new_gateway(
    stand: Stand, pod_daemon: tuple[str, bytes]
) -> None:
    ifname, pod_key = pod_daemon
    pod_peer = PeerSpec(public_key_of(pod_key), ipaddress.IPv4Address(POD_IP))
    for node, (primary, _router, secondary) in NODES.items():
        setup = GatewaySetup("uid-h8", PORT, FRONTEND, primary, secondary, GATEWAY_KEY)
        await stand.dataplanes[node].apply(setup, [pod_peer])
    configure_pod(stand, ifname, pod_key)
    stand.balance_to("a")
    receivers = {}
    with contextlib.ExitStack() as sockets:
        sender = sockets.enter_context(udp_socket(stand.pod))
        for node, (_primary, _router, secondary) in NODES.items():
            receivers[node] = sockets.enter_context(udp_socket(f"{stand.tag}-{node}g"))
            receivers[node].bind((secondary, 7000))

        deadline = time.monotonic() + 20  # the first handshake and wireguard-go's up detection
        while not arrives(sender, receivers["a"], NODES["a"][2]):
            assert time.monotonic() < deadline, "the pod never reached gateway A"
        # The pod's flow reaches A only: B sees nothing and nudges nobody.
        assert await stand.dataplanes["b"].hand_over() == []

        stand.balance_to("b")
        # Still on A's session, which B cannot read.
        assert not arrives(sender, receivers["b"], NODES["b"][2])
        nudges = await stand.dataplanes["b"].hand_over()
        assert [(n.pod_ip, n.listen_port, n.public_key) for n in nudges] == [
            (POD_IP, PORT, pod_peer.public_key)
        ]
        handed_over = time.monotonic()
        while not arrives(sender, receivers["b"], NODES["b"][2]):
            assert time.monotonic() - handed_over < 3, "the pod did not move to gateway B"
        print(f"pod traffic through B {time.monotonic() - handed_over:.2f} s after the hand-over")
    # B has a session with the pod now: nothing more to do there. A still has its recent
    # session, so it never nudges, whatever its conntrack still holds.
    assert await stand.dataplanes["b"].hand_over() == []
    assert await stand.dataplanes["a"].hand_over() == []
