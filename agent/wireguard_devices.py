"""A gateway node's WireGuard interfaces: one `wg-<listen_port>` per configuration.

The interface lives in the gateway namespace (address fe80::1/64, up, alias = the owning
configuration's UID so orphans can be traced) while its UDP socket lives in the agent's own
namespace on the listen port. Each pod is a peer (its key, allowed IP <pod_ip>/32, no endpoint,
no keepalive) plus a route <pod_ip>/32 on the interface in the gateway namespace.

The backend is the kernel module where present, wireguard-go otherwise (wireguard_kernel,
wireguard_userspace); this module does the links, addresses and routes both share. Calls are
synchronous: the agent runs node operations one at a time in a worker thread.

`host_netns` (open_wireguard): the namespace that plays "host". Production leaves it "" (the
agent's own); tests give a namespace of their own so nothing lands in the machine's.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pyroute2 import netns
from pyroute2.netlink.exceptions import NetlinkError

from agent.netns_handles import NetnsHandles
from agent.node_settings import NodeSettings, WireguardBackend, interface_name
from agent.peer_plan import (
    CurrentPeers,
    PeerChanges,
    PeerPlan,
    PeerSpec,
    peers_after,
    plan_peers,
    plan_routes,
    specs_of,
)
from agent.session_handover import PeerSession
from agent.wireguard_kernel import KernelWireguard, kernel_wireguard_available
from agent.wireguard_keys import check_private_key
from agent.wireguard_uapi import DeviceState
from agent.wireguard_userspace import UserspaceWireguard, birth_name
from contracts import kube_names

__all__ = [
    "InterfaceNotFoundError",
    "PeerChanges",
    "PeerSpec",
    "WireguardDevices",
    "open_wireguard",
]

LINK_LOCAL_ADDRESS = "fe80::1"
LINK_LOCAL_PREFIX = 64
_IFF_UP = 0x1
_SCOPE_LINK = 253
_MAIN_TABLE = 254
_ENODEV = 19
_ESRCH = 3


class InterfaceNotFoundError(LookupError):
    """The interface is not in the gateway namespace (ensure_interface builds it)."""


class WireguardDevices(Protocol):
    backend: WireguardBackend

    def ensure_interface(
        self, name: str, *, owner: str, listen_port: int, private_key: bytes
    ) -> list[str]: ...
    def sync_peers(self, name: str, peers: Sequence[PeerSpec]) -> PeerChanges: ...
    def change_peers(
        self, name: str, before: Sequence[PeerSpec], after: Sequence[PeerSpec]
    ) -> PeerChanges: ...
    def peers(self, name: str) -> list[PeerSpec]: ...
    def peer_sessions(self, name: str) -> list[PeerSession]: ...
    def start_handshake(self, name: str, public_key: bytes, endpoint: str) -> None: ...
    def stop_keepalive(self, name: str, public_key: bytes) -> None: ...
    def interfaces(self) -> dict[str, str]: ...
    def delete_interface(self, name: str) -> bool: ...
    def close(self) -> None: ...


class _Backend(Protocol):
    """What differs between the kernel module and wireguard-go."""

    kind: WireguardBackend

    def is_running(self, birth: str) -> bool: ...
    def create(self, birth: str) -> None: ...
    def discard(self, birth: str) -> bool: ...
    def daemon_pid(self, birth: str) -> int | None: ...
    def stop(self, pid: int) -> None: ...
    def read(self, name: str, birth: str) -> DeviceState: ...
    def configure(
        self,
        name: str,
        birth: str,
        *,
        private_key: bytes | None = None,
        listen_port: int | None = None,
        plan: PeerPlan | None = None,
    ) -> None: ...
    def set_peer_session(
        self, name: str, birth: str, public_key: bytes, *, endpoint: str | None, keepalive: int
    ) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class _Link:
    netns: str
    index: int
    ifname: str


def open_wireguard(
    settings: NodeSettings, handles: NetnsHandles, *, host_netns: str = ""
) -> WireguardDevices:
    """The node's WireGuard devices on the backend `settings` asks for (AUTO: kernel module
    when the kernel has it)."""
    kind = settings.wireguard_backend
    if kind is WireguardBackend.AUTO:
        kind = (
            WireguardBackend.KERNEL if kernel_wireguard_available() else WireguardBackend.USERSPACE
        )
    backend: _Backend
    if kind is WireguardBackend.KERNEL:
        backend = KernelWireguard(
            handles, gateway_netns=settings.gateway_netns, host_netns=host_netns
        )
    else:
        backend = UserspaceWireguard(
            wireguard_go_path=settings.wireguard_go_path, host_netns=host_netns
        )
    return _GatewayWireguard(settings, handles, backend, host_netns=host_netns)


def listen_port_of(name: str) -> int:
    prefix = kube_names.GATEWAY_WIREGUARD_INTERFACE_PREFIX
    port = name.removeprefix(prefix)
    if not name.startswith(prefix) or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"name: {name!r} is not a gateway interface name ({prefix}<port>)")
    return int(port)


class _GatewayWireguard:
    def __init__(
        self,
        settings: NodeSettings,
        handles: NetnsHandles,
        backend: _Backend,
        *,
        host_netns: str = "",
    ) -> None:
        self._settings = settings
        self._handles = handles
        self._backend = backend
        self._host_netns = host_netns
        self.backend = backend.kind
        self._route_sock: _RouteSocket | None = None

    # --- interfaces ------------------------------------------------------------------------------

    def ensure_interface(
        self, name: str, *, owner: str, listen_port: int, private_key: bytes
    ) -> list[str]:
        check_private_key(private_key)
        if name != interface_name(listen_port):
            raise ValueError(f"name: {name!r} does not match listen_port {listen_port}")
        birth = birth_name(self._settings.socket_tag, listen_port)
        gateway = self._handles.get(self._settings.gateway_netns, create=True)
        changes: list[str] = []

        link = self._locate(name, birth)
        if link is not None and not self._backend.is_running(birth):
            self._delete_link(link)
            changes.append(f"removed {name}: its WireGuard daemon was gone")
            link = None
        if link is None:
            if self._backend.discard(birth):
                changes.append(f"stopped a WireGuard daemon for {name} that had no interface")
            self._backend.create(birth)
            changes.append(f"created {name} ({self.backend.value})")
            link = self._locate(name, birth)
            if link is None:
                raise RuntimeError(f"{name}: the new link {birth} did not appear")
        if link.netns != self._settings.gateway_netns or link.ifname != name:
            link = self._move_into_gateway(link, name)
            changes.append(f"moved {name} into namespace {self._settings.gateway_netns}")

        info = gateway.link("get", index=link.index)[0]
        if info.get_attr("IFLA_IFALIAS") != owner:
            gateway.link("set", index=link.index, ifalias=owner)
            changes.append(f"set {name} owner to {owner}")
        if not self._has_link_local(link.index):
            gateway.addr(
                "add", index=link.index, address=LINK_LOCAL_ADDRESS, prefixlen=LINK_LOCAL_PREFIX
            )
            changes.append(f"added {LINK_LOCAL_ADDRESS}/{LINK_LOCAL_PREFIX} to {name}")
        if not info["flags"] & _IFF_UP:
            gateway.link("set", index=link.index, state="up")
            changes.append(f"set {name} up")

        state = self._backend.read(name, birth)
        if state.private_key != private_key:
            self._backend.configure(name, birth, private_key=private_key)
            changes.append(f"set {name} private key")
        if state.listen_port != listen_port:
            self._backend.configure(name, birth, listen_port=listen_port)
            changes.append(f"set {name} listen port {listen_port} (was {state.listen_port})")
        # A link that was down or moved lost its routes; peers kept theirs on the device.
        missing = plan_routes(self._routes(link.index), state.peers).add
        if missing:
            self._add_routes(link.index, missing)
            changes.append(f"restored {len(missing)} peer routes on {name}")
        return changes

    def interfaces(self) -> dict[str, str]:
        if not self._handles.exists(self._settings.gateway_netns):
            return {}
        gateway = self._handles.get(self._settings.gateway_netns)
        found: dict[str, str] = {}
        for info in gateway.link("dump"):
            ifname = info.get_attr("IFLA_IFNAME")
            if ifname.startswith(kube_names.GATEWAY_WIREGUARD_INTERFACE_PREFIX):
                found[ifname] = info.get_attr("IFLA_IFALIAS") or ""
        return found

    def delete_interface(self, name: str) -> bool:
        birth = birth_name(self._settings.socket_tag, listen_port_of(name))
        # Asked before the link goes: wireguard-go exits with its TUN link, and then takes
        # its socket (the only way to its PID) with it.
        pid = self._backend.daemon_pid(birth)
        removed = False
        while (link := self._locate(name, birth)) is not None:
            self._delete_link(link)
            removed = True
        if pid is not None:
            self._backend.stop(pid)
            removed = True
        return self._backend.discard(birth) or removed

    def close(self) -> None:
        self._backend.close()
        if self._route_sock is not None:
            self._route_sock.close()
            self._route_sock = None

    # --- peers -----------------------------------------------------------------------------------

    def sync_peers(self, name: str, peers: Sequence[PeerSpec]) -> PeerChanges:
        link, birth, state = self._device(name)
        return self._apply(name, birth, link, state.peers, plan_peers(state.peers, peers))

    def change_peers(
        self, name: str, before: Sequence[PeerSpec], after: Sequence[PeerSpec]
    ) -> PeerChanges:
        """Move the peers from `before`, what the device is known to hold (the last set this
        agent made), to `after` without reading the device: one update for the difference and
        the routes of exactly the peers that came and went. A thousand peers cost only their
        changes; the agent's peer resync (sync_peers, which reads) catches a device that was
        changed behind its back."""
        birth = birth_name(self._settings.socket_tag, listen_port_of(name))
        link = self._gateway_link(name)
        if link is None:
            raise InterfaceNotFoundError(
                f"{name} is not in namespace {self._settings.gateway_netns}"
            )
        known = {peer.public_key: frozenset({peer.allowed_network}) for peer in before}
        plan = plan_peers(known, after)
        if not plan.empty:
            self._backend.configure(name, birth, plan=plan)
        old_ip = {peer.public_key: peer.allowed_ip for peer in before}
        added = [peer.allowed_ip for peer in plan.add + plan.update]
        gone = {old_ip[key] for key in plan.remove} | {old_ip[p.public_key] for p in plan.update}
        # An address a removed peer had may be an added peer's now: its route stays.
        self._remove_routes(link.index, sorted(gone - set(added)))
        self._add_routes(link.index, added)
        return plan.changes

    def peers(self, name: str) -> list[PeerSpec]:
        _link, _birth, state = self._device(name)
        return sorted(specs_of(state.peers), key=lambda peer: peer.allowed_ip)

    def peer_sessions(self, name: str) -> list[PeerSession]:
        _link, _birth, state = self._device(name)
        return list(state.sessions)

    def start_handshake(self, name: str, public_key: bytes, endpoint: str) -> None:
        """Point the peer at `endpoint` and have this side send a handshake initiation now:
        a keepalive interval being set sends a keepalive at once, which without a session is
        an initiation (both backends). stop_keepalive undoes the interval."""
        birth = birth_name(self._settings.socket_tag, listen_port_of(name))
        self._backend.set_peer_session(name, birth, public_key, endpoint=endpoint, keepalive=1)

    def stop_keepalive(self, name: str, public_key: bytes) -> None:
        birth = birth_name(self._settings.socket_tag, listen_port_of(name))
        self._backend.set_peer_session(name, birth, public_key, endpoint=None, keepalive=0)

    def _device(self, name: str) -> tuple[_Link, str, DeviceState]:
        birth = birth_name(self._settings.socket_tag, listen_port_of(name))
        link = self._gateway_link(name)
        if link is None:
            raise InterfaceNotFoundError(
                f"{name} is not in namespace {self._settings.gateway_netns}"
            )
        return link, birth, self._backend.read(name, birth)

    def _apply(
        self, name: str, birth: str, link: _Link, current: CurrentPeers, plan: PeerPlan
    ) -> PeerChanges:
        """One device update for the whole plan, then the routes for the resulting peers."""
        if not plan.empty:
            self._backend.configure(name, birth, plan=plan)
        routes = plan_routes(self._routes(link.index), peers_after(current, plan))
        self._remove_routes(link.index, routes.remove)
        self._add_routes(link.index, routes.add)
        return plan.changes

    # --- links and routes ------------------------------------------------------------------------

    def _find(self, netns: str, ifname: str) -> _Link | None:
        if not self._handles.exists(netns):
            return None
        indices = self._handles.get(netns).link_lookup(ifname=ifname)
        return _Link(netns, indices[0], ifname) if indices else None

    def _gateway_link(self, name: str) -> _Link | None:
        return self._find(self._settings.gateway_netns, name)

    def _locate(self, name: str, birth: str) -> _Link | None:
        """Where this interface is, however far its building got: in the gateway namespace
        (renamed or not yet), or still in the host namespace under its birth name."""
        gateway = self._settings.gateway_netns
        return (
            self._find(gateway, name)
            or self._find(gateway, birth)
            or self._find(self._host_netns, birth)
        )

    def _move_into_gateway(self, link: _Link, name: str) -> _Link:
        gateway_netns = self._settings.gateway_netns
        handle = self._handles.get(link.netns)
        try:
            if link.netns == gateway_netns:
                handle.link("set", index=link.index, ifname=name)
            else:
                # One request moves and renames, so no other wg-<port> appears in the host.
                handle.link("set", index=link.index, net_ns_fd=gateway_netns, ifname=name)
        except NetlinkError:
            # Upstream deletes a link it could not move; the next ensure starts afresh.
            self._delete_link(link)
            raise
        moved = self._gateway_link(name)
        if moved is None:
            raise RuntimeError(f"{name} did not arrive in namespace {gateway_netns}")
        return moved

    def _delete_link(self, link: _Link) -> None:
        try:
            self._handles.get(link.netns).link("del", index=link.index)
        except NetlinkError as error:
            if error.code != _ENODEV:
                raise

    def _has_link_local(self, index: int) -> bool:
        gateway = self._handles.get(self._settings.gateway_netns)
        return any(
            address.get_attr("IFA_ADDRESS") == LINK_LOCAL_ADDRESS
            and address["prefixlen"] == LINK_LOCAL_PREFIX
            for address in gateway.get_addr(family=socket.AF_INET6, index=index)
        )

    def _route_socket(self) -> _RouteSocket:
        namespace = self._settings.gateway_netns
        if self._route_sock is not None and not self._route_sock.serves(namespace):
            self._route_sock.close()  # the namespace was removed and made again
            self._route_sock = None
        if self._route_sock is None:
            self._route_sock = _RouteSocket(namespace)
        return self._route_sock

    def _routes(self, index: int) -> list[ipaddress.IPv4Address]:
        return self._route_socket().host_routes(index)

    def _add_routes(self, index: int, addresses: Sequence[ipaddress.IPv4Address]) -> None:
        self._route_socket().change(_RTM_NEWROUTE, index, addresses)

    def _remove_routes(self, index: int, addresses: Sequence[ipaddress.IPv4Address]) -> None:
        self._route_socket().change(_RTM_DELROUTE, index, addresses)


# --- bulk routes ---------------------------------------------------------------------------------
# pyroute2 spends about a millisecond encoding and decoding each route message, so 1,000 peers'
# routes would take a second. These messages are tiny and fixed, so they are packed by hand and
# sent many to a datagram; the kernel answers each with an ack.

_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_RTM_NEWROUTE = 24
_RTM_DELROUTE = 25
_RTM_GETROUTE = 26
_NLM_F_REQUEST = 0x1
_NLM_F_ACK = 0x4
_NLM_F_DUMP = 0x300
_NLM_F_REPLACE = 0x100
_NLM_F_CREATE = 0x400
_RTA_DST = 1
_RTA_OIF = 4
_RTA_TABLE = 15
_RTN_UNICAST = 1
_RTPROT_BOOT = 3
_NETLINK_ROUTE = 0
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope,
# type, flags
_ATTR = struct.Struct("=HH")
_ROUTE_BODY_LENGTH = _HEADER.size + _RTMSG.size + 2 * (_ATTR.size + 4)
_MESSAGES_PER_SEND = 256


def route_message(kind: int, sequence: int, index: int, address: ipaddress.IPv4Address) -> bytes:
    """RTM_NEWROUTE (create or replace) / RTM_DELROUTE for <address>/32 dev <index> scope link
    in the main table."""
    flags = _NLM_F_REQUEST | _NLM_F_ACK
    if kind == _RTM_NEWROUTE:
        flags |= _NLM_F_CREATE | _NLM_F_REPLACE
    protocol = _RTPROT_BOOT if kind == _RTM_NEWROUTE else 0
    return (
        _HEADER.pack(_ROUTE_BODY_LENGTH, kind, flags, sequence, 0)
        + _RTMSG.pack(socket.AF_INET, 32, 0, 0, _MAIN_TABLE, protocol, _SCOPE_LINK, _RTN_UNICAST, 0)
        + _ATTR.pack(8, _RTA_DST)
        + address.packed
        + _ATTR.pack(8, _RTA_OIF)
        + struct.pack("=I", index)
    )


def parse_host_routes(data: bytes, index: int) -> tuple[list[ipaddress.IPv4Address], bool]:
    """The /32 main-table destinations on link `index` in a chunk of a route dump, and whether
    the dump is done."""
    found: list[ipaddress.IPv4Address] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, _seq, _port = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            break
        if kind == _NLMSG_DONE:
            return found, True
        if kind == _NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", data, offset + _HEADER.size)
            raise OSError(-error, f"route dump failed: {os.strerror(-error)}")
        if kind == _RTM_NEWROUTE:
            route = _parse_route(data[offset + _HEADER.size : offset + length])
            if route is not None and route[1] == index:
                found.append(route[0])
        offset += (length + 3) & ~3
    return found, False


def _parse_route(body: bytes) -> tuple[ipaddress.IPv4Address, int] | None:
    family, dst_len, _src, _tos, table, _proto, _scope, _type, _flags = _RTMSG.unpack_from(body)
    if family != socket.AF_INET or dst_len != 32:
        return None
    dst: bytes | None = None
    oif = 0
    offset = _RTMSG.size
    while offset + _ATTR.size <= len(body):
        length, kind = _ATTR.unpack_from(body, offset)
        if length < _ATTR.size:
            break
        value = body[offset + _ATTR.size : offset + length]
        if kind == _RTA_DST:
            dst = value
        elif kind == _RTA_OIF:
            (oif,) = struct.unpack("=I", value)
        elif kind == _RTA_TABLE:
            (table,) = struct.unpack("=I", value)
        offset += (length + 3) & ~3
    if dst is None or table != _MAIN_TABLE:
        return None
    return ipaddress.IPv4Address(dst), oif


def _namespace_inode(namespace: str) -> int:
    try:
        return Path(f"/var/run/netns/{namespace}").stat().st_ino
    except FileNotFoundError:
        return -1


class _RouteSocket:
    """A raw rtnetlink socket in the gateway namespace, for routes in bulk."""

    def __init__(self, namespace: str) -> None:
        self._sock = netns.create_socket(
            netns=namespace,
            family=socket.AF_NETLINK,
            socket_type=socket.SOCK_RAW,
            proto=_NETLINK_ROUTE,
        )
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sock.bind((0, 0))
        self._sequence = 0
        self._inode = _namespace_inode(namespace)

    def serves(self, namespace: str) -> bool:
        return _namespace_inode(namespace) == self._inode

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    def host_routes(self, index: int) -> list[ipaddress.IPv4Address]:
        request = _HEADER.pack(
            _HEADER.size + _RTMSG.size, _RTM_GETROUTE, _NLM_F_REQUEST | _NLM_F_DUMP, self._next(), 0
        ) + _RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        self._sock.send(request)
        found: list[ipaddress.IPv4Address] = []
        done = False
        while not done:
            chunk, done = parse_host_routes(self._sock.recv(1 << 20), index)
            found += chunk
        return found

    def change(self, kind: int, index: int, addresses: Sequence[ipaddress.IPv4Address]) -> None:
        """Send the changes many to a datagram; an absent route being deleted is fine."""
        for start in range(0, len(addresses), _MESSAGES_PER_SEND):
            batch = addresses[start : start + _MESSAGES_PER_SEND]
            pending: dict[int, ipaddress.IPv4Address] = {}
            messages = []
            for address in batch:
                sequence = self._next()
                pending[sequence] = address
                messages.append(route_message(kind, sequence, index, address))
            self._sock.send(b"".join(messages))
            while pending:
                self._read_acks(self._sock.recv(1 << 20), pending, kind)

    @staticmethod
    def _read_acks(data: bytes, pending: dict[int, ipaddress.IPv4Address], kind: int) -> None:
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, message_kind, _flags, sequence, _port = _HEADER.unpack_from(data, offset)
            if length < _HEADER.size:
                break
            if message_kind == _NLMSG_ERROR and sequence in pending:
                address = pending.pop(sequence)
                (error,) = struct.unpack_from("=i", data, offset + _HEADER.size)
                if error and not (kind == _RTM_DELROUTE and -error == _ESRCH):
                    verb = "add" if kind == _RTM_NEWROUTE else "delete"
                    raise OSError(-error, f"{verb} route {address}/32: {os.strerror(-error)}")
            offset += (length + 3) & ~3

    def close(self) -> None:
        self._sock.close()
