"""The gateway's WireGuard interfaces on real namespaces (wireguard-go here: no kernel module).

Each test gets three namespaces of its own: <tag>-h plays the agent's host namespace (passed as
host_netns), <tag>-gw is the gateway namespace, <tag>-c (traffic test) a pod's node.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import netns

from agent import wireguard_uapi
from agent.netns_handles import NetnsHandles
from agent.node_settings import NodeSettings, WireguardBackend
from agent.wireguard_devices import (
    InterfaceNotFoundError,
    PeerSpec,
    WireguardDevices,
    open_wireguard,
)
from agent.wireguard_keys import generate_private_key, public_key_of

pytestmark = pytest.mark.needs_root

PORT = 51820
NAME = f"wg-{PORT}"
OWNER = "0b9a6c2e-5d1f-4c3e-9f0a-1e2d3c4b5a69"


@dataclass
class Stand:
    tag: str
    host: str
    gateway: str
    handles: NetnsHandles
    settings: NodeSettings
    devices: WireguardDevices
    private_key: bytes

    @property
    def birth(self) -> str:
        return f"wg{self.tag}{PORT}"

    def gw(self) -> Any:
        return self.handles.get(self.gateway)

    def link(self) -> Any:
        (index,) = self.gw().link_lookup(ifname=NAME)
        return self.gw().link("get", index=index)[0]

    def routes(self) -> set[str]:
        (index,) = self.gw().link_lookup(ifname=NAME)
        return {
            route.get_attr("RTA_DST")
            for route in self.gw().get_routes(family=socket.AF_INET, oif=index)
        }

    def ensure(self, private_key: bytes | None = None) -> list[str]:
        return self.devices.ensure_interface(
            NAME, owner=OWNER, listen_port=PORT, private_key=private_key or self.private_key
        )

    def daemon_pid(self) -> int | None:
        return wireguard_uapi.daemon_pid(wireguard_uapi.socket_path(self.birth))


def _socket_paths(tag: str) -> list[Path]:
    return sorted(wireguard_uapi.SOCKET_DIR.glob(f"*{tag}*.sock"))


def _stop_daemons(tag: str) -> None:
    """Stop the wireguard-go daemons of this test only (their sockets carry its tag), by PID."""
    for path in _socket_paths(tag):
        pid = wireguard_uapi.daemon_pid(path)
        if pid is not None and Path(f"/proc/{pid}/comm").read_text().strip() == "wireguard-go":
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        path.unlink(missing_ok=True)


@pytest.fixture
def stand(net_tag: str) -> Iterator[Stand]:
    host, gateway = f"{net_tag}-h", f"{net_tag}-gw"
    handles = NetnsHandles()
    handles.get(host, create=True)
    settings = NodeSettings(gateway_netns=gateway, socket_tag=net_tag)
    devices = open_wireguard(settings, handles, host_netns=host)
    try:
        yield Stand(
            net_tag, host, gateway, handles, settings, devices, private_key=generate_private_key()
        )
    finally:
        devices.close()
        handles.close()
        _stop_daemons(net_tag)
        for name in (host, gateway, f"{net_tag}-c"):
            if name in netns.listnetns():
                netns.remove(name)


def _peer(n: int) -> PeerSpec:
    return PeerSpec(public_key_of(generate_private_key()), ipaddress.IPv4Address(f"10.98.0.{n}"))


def _listening(namespace: str, port: int) -> bool:
    """Whether a UDP socket already holds `port` in `namespace` (binding there fails)."""
    netns.pushns(namespace)
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    finally:
        netns.popns()
    with probe:
        try:
            probe.bind(("::", port))
        except OSError:
            return True
    return False


def test_backend_is_wireguard_go_without_kernel_module(stand: Stand) -> None:
    assert stand.devices.backend is WireguardBackend.USERSPACE


def test_ensure_builds_the_interface_once(stand: Stand) -> None:
    changes = stand.ensure()

    assert any("created" in change for change in changes)
    assert stand.devices.interfaces() == {NAME: OWNER}
    link = stand.link()
    assert link["flags"] & 1  # up
    addresses = {
        (a.get_attr("IFA_ADDRESS"), a["prefixlen"])
        for a in stand.gw().get_addr(family=socket.AF_INET6, index=link["index"])
    }
    assert ("fe80::1", 64) in addresses
    assert _listening(stand.host, PORT)  # the UDP socket is in the host namespace ...
    assert not stand.handles.get(stand.host).link_lookup(ifname=stand.birth)  # ... the link not
    assert stand.ensure() == []


@pytest.mark.parametrize("where", ["host namespace", "gateway namespace, not renamed"])
def test_ensure_finishes_a_half_moved_link(stand: Stand, where: str) -> None:
    stand.ensure()
    index = stand.link()["index"]
    if where == "host namespace":
        stand.gw().link("set", index=index, net_ns_fd=stand.host, ifname=stand.birth)
    else:
        stand.gw().link("set", index=index, ifname=stand.birth)

    changes = stand.ensure()

    assert any("moved" in change for change in changes)
    assert stand.devices.interfaces() == {NAME: OWNER}
    assert stand.ensure() == []


def test_ensure_repairs_down_link_and_restores_its_routes(stand: Stand) -> None:
    stand.ensure()
    stand.devices.sync_peers(NAME, [_peer(1), _peer(2)])
    stand.gw().link("set", index=stand.link()["index"], state="down")  # drops the routes

    changes = stand.ensure()

    assert f"set {NAME} up" in changes
    assert stand.link()["flags"] & 1
    assert stand.routes() == {"10.98.0.1", "10.98.0.2"}


def test_ensure_repairs_listen_port_key_and_owner(stand: Stand) -> None:
    stand.ensure()
    wireguard_uapi.call(wireguard_uapi.socket_path(stand.birth), "set=1\nlisten_port=51999\n\n")
    stand.gw().link("set", index=stand.link()["index"], ifalias="someone-else")

    changes = stand.ensure()

    assert f"set {NAME} listen port {PORT} (was 51999)" in changes
    assert f"set {NAME} owner to {OWNER}" in changes
    assert _listening(stand.host, PORT)
    new_key = generate_private_key()
    assert stand.ensure(new_key) == [f"set {NAME} private key"]
    assert stand.ensure(new_key) == []


def test_ensure_replaces_a_dead_daemon_and_its_stale_socket(stand: Stand) -> None:
    stand.ensure()
    pid = stand.daemon_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # no chance to remove its socket
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    assert wireguard_uapi.socket_path(stand.birth).exists()

    changes = stand.ensure()

    assert any("created" in change for change in changes)
    assert stand.daemon_pid() not in (None, pid)
    assert stand.devices.interfaces() == {NAME: OWNER}
    assert stand.ensure() == []


def test_peer_syncs_keep_routes_in_step(stand: Stand) -> None:
    stand.ensure()
    first, second, third = _peer(1), _peer(2), _peer(3)

    assert stand.devices.sync_peers(NAME, [first, second]).added == 2
    assert stand.devices.peers(NAME) == [first, second]
    assert stand.routes() == {"10.98.0.1", "10.98.0.2"}

    moved = PeerSpec(second.public_key, ipaddress.IPv4Address("10.98.0.9"))
    changes = stand.devices.sync_peers(NAME, [moved, third])
    assert (changes.added, changes.removed, changes.updated) == (1, 1, 1)
    assert stand.devices.peers(NAME) == [third, moved]
    assert stand.routes() == {"10.98.0.3", "10.98.0.9"}

    assert stand.devices.sync_peers(NAME, [moved, third, first]).added == 1
    assert stand.devices.sync_peers(NAME, [moved, third, first]).added == 0
    assert stand.routes() == {"10.98.0.1", "10.98.0.3", "10.98.0.9"}

    assert stand.devices.sync_peers(NAME, []).removed == 3
    assert stand.routes() == set()


def test_a_reused_pod_ip_moves_to_the_new_peer(stand: Stand) -> None:
    stand.ensure()
    old, new = _peer(5), _peer(5)
    stand.devices.sync_peers(NAME, [old])

    changes = stand.devices.sync_peers(NAME, [new])

    assert (changes.added, changes.removed) == (1, 1)
    assert stand.devices.peers(NAME) == [new]
    assert stand.routes() == {"10.98.0.5"}


def test_changing_peers_from_a_known_set_ends_where_a_sync_would(stand: Stand) -> None:
    stand.ensure()
    first, second, third = _peer(1), _peer(2), _peer(3)
    before = [first, second]
    stand.devices.sync_peers(NAME, before)
    moved = PeerSpec(second.public_key, ipaddress.IPv4Address("10.98.0.9"))
    reused = PeerSpec(_peer(1).public_key, first.allowed_ip)  # first's IP, another pod's key

    changes = stand.devices.change_peers(NAME, before, [moved, third, reused])

    assert (changes.added, changes.removed, changes.updated) == (2, 1, 1)
    assert stand.devices.peers(NAME) == sorted(
        [moved, third, reused], key=lambda peer: peer.allowed_ip
    )
    assert stand.routes() == {"10.98.0.1", "10.98.0.3", "10.98.0.9"}
    assert stand.devices.change_peers(NAME, [moved, third, reused], []).removed == 3
    assert stand.routes() == set()


def test_changing_peers_trusts_the_known_set_and_a_sync_reads_the_device(stand: Stand) -> None:
    stand.ensure()
    pod, stranger = _peer(1), _peer(2)
    stand.devices.sync_peers(NAME, [pod])
    stand.devices.sync_peers(NAME, [pod, stranger])  # as a hand-made change would

    stand.devices.change_peers(NAME, [pod], [pod])  # nothing to change, as far as it knows
    assert stand.devices.peers(NAME) == [pod, stranger]
    assert stand.devices.sync_peers(NAME, [pod]).removed == 1  # the agent's resync
    assert stand.devices.peers(NAME) == [pod]
    assert stand.routes() == {"10.98.0.1"}


def test_peers_of_a_missing_interface(stand: Stand) -> None:
    with pytest.raises(InterfaceNotFoundError):
        stand.devices.peers(NAME)
    with pytest.raises(InterfaceNotFoundError):
        stand.devices.change_peers(NAME, [], [_peer(1)])


def test_restarted_agent_adopts_the_interface(stand: Stand) -> None:
    stand.ensure()
    peer = _peer(7)
    stand.devices.sync_peers(NAME, [peer])
    pid = stand.daemon_pid()
    stand.devices.close()
    stand.handles.close()

    handles = NetnsHandles()
    again = open_wireguard(stand.settings, handles, host_netns=stand.host)
    try:
        assert (
            again.ensure_interface(
                NAME, owner=OWNER, listen_port=PORT, private_key=stand.private_key
            )
            == []
        )
        assert again.peers(NAME) == [peer]
        assert stand.daemon_pid() == pid
    finally:
        again.close()
        handles.close()


def test_delete_removes_link_daemon_and_socket(stand: Stand) -> None:
    stand.ensure()
    pid = stand.daemon_pid()
    assert pid is not None

    assert stand.devices.delete_interface(NAME) is True

    assert stand.devices.interfaces() == {}
    assert not wireguard_uapi.socket_path(stand.birth).exists()
    assert not Path(f"/proc/{pid}").exists()
    assert stand.devices.delete_interface(NAME) is False


# --- traffic ----------------------------------------------------------------------------------


def _udp_socket(namespace: str) -> socket.socket:
    netns.pushns(namespace)
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    finally:
        netns.popns()


@pytest.fixture
def client_daemon(stand: Stand) -> Iterator[str]:
    """A pod node's namespace <tag>-c with its own wireguard-go, wired to the host by a veth."""
    client = f"{stand.tag}-c"
    host = stand.handles.get(stand.host)
    peer_ns = stand.handles.get(client, create=True)
    host.link(
        "add",
        ifname=f"{stand.tag}h",
        kind="veth",
        peer={"ifname": f"{stand.tag}c", "net_ns_fd": client},
    )
    (host_end,) = host.link_lookup(ifname=f"{stand.tag}h")
    (client_end,) = peer_ns.link_lookup(ifname=f"{stand.tag}c")
    host.addr("add", index=host_end, address="198.18.0.1", prefixlen=30)
    host.link("set", index=host_end, state="up")
    peer_ns.addr("add", index=client_end, address="198.18.0.2", prefixlen=30)
    peer_ns.link("set", index=client_end, state="up")
    ifname = f"{stand.tag}cw"
    process = subprocess.Popen(
        ["nsenter", f"--net=/var/run/netns/{client}", "wireguard-go", "-f", ifname],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "WG_PROCESS_FOREGROUND": "1"},
    )
    try:
        deadline = time.monotonic() + 5
        while (
            not peer_ns.link_lookup(ifname=ifname)
            or not wireguard_uapi.socket_path(ifname).exists()
        ):
            assert process.poll() is None and time.monotonic() < deadline, "no client wireguard-go"
            time.sleep(0.01)
        yield ifname
    finally:
        process.kill()
        process.wait()
        wireguard_uapi.socket_path(ifname).unlink(missing_ok=True)


def test_pod_traffic_reaches_the_gateway_namespace(stand: Stand, client_daemon: str) -> None:
    client = stand.handles.get(f"{stand.tag}-c")
    stand.ensure()
    gateway_public = public_key_of(stand.private_key)
    pod_key = generate_private_key()
    pod_ip = ipaddress.IPv4Address("10.99.1.2")
    stand.devices.sync_peers(NAME, [PeerSpec(public_key_of(pod_key), pod_ip)])

    # The pod side, configured as a CNI plugin would: gateway's key, the host's address.
    reply = wireguard_uapi.call(
        wireguard_uapi.socket_path(client_daemon),
        f"set=1\nprivate_key={pod_key.hex()}\nlisten_port=51821\n"
        f"public_key={gateway_public.hex()}\nendpoint=198.18.0.1:{PORT}\n"
        "allowed_ip=10.99.0.0/24\n\n",
    )
    wireguard_uapi.check_set_reply(reply)
    (pod_link,) = client.link_lookup(ifname=client_daemon)
    client.addr("add", index=pod_link, address=str(pod_ip), prefixlen=32)
    client.link("set", index=pod_link, state="up")
    client.route("add", dst="10.99.0.0/24", oif=pod_link, scope=253)
    # Something to talk to in the gateway namespace.
    (lo,) = stand.gw().link_lookup(ifname="lo")
    stand.gw().link("set", index=lo, state="up")
    stand.gw().addr("add", index=lo, address="10.99.0.1", prefixlen=32)

    with _udp_socket(stand.gateway) as server, _udp_socket(f"{stand.tag}-c") as sender:
        server.bind(("10.99.0.1", 7000))
        server.settimeout(0.5)
        sender.settimeout(0.5)
        received: tuple[bytes, Any] | None = None
        deadline = time.monotonic() + 20  # handshake and wireguard-go's up detection
        while received is None and time.monotonic() < deadline:
            sender.sendto(b"hello", ("10.99.0.1", 7000))
            with contextlib.suppress(TimeoutError):
                received = server.recvfrom(100)
        assert received is not None, "nothing arrived through the tunnel"
        data, source = received
        assert (data, source[0]) == (b"hello", str(pod_ip))
        server.sendto(b"back", source)  # the return path uses the peer's route
        assert sender.recvfrom(100)[0] == b"back"
