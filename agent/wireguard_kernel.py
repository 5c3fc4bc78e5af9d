"""WireGuard through the kernel module, configured over generic netlink (pyroute2 WireGuard).

The link is created in the host namespace, which is where the kernel binds its UDP socket, and
the device layer moves it into the gateway namespace; configuration then goes to the gateway
namespace, where the device now lives. pyroute2 0.9's `WireGuard.set` takes one peer per call,
so a peer plan is one netlink request per peer (each well under a millisecond in the kernel).
Not exercised on machines without the module (the netns tests use wireguard-go).
"""

from __future__ import annotations

import base64
import errno
from collections.abc import Iterable
from typing import Any

from pyroute2 import WireGuard
from pyroute2.netlink.exceptions import NetlinkError

from agent.netns_handles import NetnsHandles
from agent.node_settings import WireguardBackend
from agent.peer_plan import PeerPlan
from agent.session_handover import PeerSession
from agent.wireguard_keys import check_private_key, to_base64
from agent.wireguard_uapi import DeviceState

# The generic netlink family is missing (ENOENT) or links of kind wireguard are unknown
# (EOPNOTSUPP) when the module is absent.
_ABSENT = (errno.ENOENT, errno.EOPNOTSUPP)


def kernel_wireguard_available() -> bool:
    """Whether the kernel has WireGuard: opening the "wireguard" generic netlink family fails
    without the module (and asking for it loads the module where it is installed)."""
    try:
        probe = WireGuard()
    except NetlinkError as error:
        if error.code in _ABSENT:
            return False
        raise
    probe.close()
    return True


class KernelWireguard:
    """The kernel half of a WireguardDevices."""

    kind = WireguardBackend.KERNEL

    def __init__(self, handles: NetnsHandles, *, gateway_netns: str, host_netns: str = "") -> None:
        self._handles = handles
        self._gateway_netns = gateway_netns
        self._host_netns = host_netns
        self._genl: Any = None

    def _wg(self) -> Any:
        if self._genl is None:
            self._genl = WireGuard(netns=self._gateway_netns)
        return self._genl

    def is_running(self, birth: str) -> bool:
        return True  # the link is the device: it runs while it exists

    def create(self, birth: str) -> None:
        self._handles.get(self._host_netns).link("add", ifname=birth, kind="wireguard")

    def daemon_pid(self, birth: str) -> int | None:
        return None  # no process: the device is the kernel's

    def stop(self, pid: int) -> None:
        return None

    def discard(self, birth: str) -> bool:
        return False  # nothing outlives the link

    def read(self, name: str, birth: str) -> DeviceState:
        return device_state(self._wg().info(name))

    def configure(
        self,
        name: str,
        birth: str,
        *,
        private_key: bytes | None = None,
        listen_port: int | None = None,
        plan: PeerPlan | None = None,
    ) -> None:
        wg = self._wg()
        if private_key is not None or listen_port is not None:
            key = None
            if private_key is not None:
                key = base64.b64encode(check_private_key(private_key)).decode("ascii")
            wg.set(name, private_key=key, listen_port=listen_port)
        if plan is None:
            return
        for public_key in plan.remove:
            wg.set(name, peer={"public_key": to_base64(public_key), "remove": True})
        for peer in plan.add + plan.update:
            wg.set(
                name,
                peer={
                    "public_key": to_base64(peer.public_key),
                    "replace_allowed_ips": True,
                    "allowed_ips": [peer.allowed_network],
                },
            )

    def set_peer_session(
        self, name: str, birth: str, public_key: bytes, *, endpoint: str | None, keepalive: int
    ) -> None:
        peer: dict[str, Any] = {
            "public_key": to_base64(public_key),
            "update_only": True,
            "persistent_keepalive": keepalive,
        }
        if endpoint is not None:
            address, _, port = endpoint.rpartition(":")
            peer["endpoint_addr"] = address
            peer["endpoint_port"] = int(port)
        self._wg().set(name, peer=peer)

    def close(self) -> None:
        if self._genl is not None:
            self._genl.close()
            self._genl = None


def device_state(messages: Iterable[Any]) -> DeviceState:
    """Gather a WG_CMD_GET_DEVICE dump: large devices come in several messages, each with a
    share of the peers (a peer may continue into the next message)."""
    listen_port = 0
    private_key: bytes | None = None
    peers: dict[bytes, set[str]] = {}
    handshakes: dict[bytes, float] = {}
    keepalives: dict[bytes, int] = {}
    for message in messages:
        port = message.get_attr("WGDEVICE_A_LISTEN_PORT")
        if port is not None:
            listen_port = int(port)
        key = message.get_attr("WGDEVICE_A_PRIVATE_KEY")
        if key is not None:
            private_key = base64.b64decode(key)
        for peer in message.get_attr("WGDEVICE_A_PEERS") or ():
            public_key = base64.b64decode(peer.get_attr("WGPEER_A_PUBLIC_KEY"))
            networks = peers.setdefault(public_key, set())
            handshake = peer.get_attr("WGPEER_A_LAST_HANDSHAKE_TIME")
            if handshake is not None:
                handshakes[public_key] = float(handshake["tv_sec"])
            keepalive = peer.get_attr("WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL")
            if keepalive is not None:
                keepalives[public_key] = int(keepalive)
            for allowed in peer.get_attr("WGPEER_A_ALLOWEDIPS") or ():
                networks.add(str(allowed["addr"]))
    return DeviceState(
        listen_port=listen_port,
        private_key=private_key,
        peers={key: frozenset(nets) for key, nets in peers.items()},
        sessions=tuple(
            PeerSession(
                public_key=key,
                allowed_ips=frozenset(nets),
                last_handshake=handshakes.get(key, 0.0),
                keepalive=keepalives.get(key, 0),
            )
            for key, nets in peers.items()
        ),
    )
