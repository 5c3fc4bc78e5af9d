"""The agent's one door to its node: every change to namespaces, links, WireGuard, routes and
iptables goes through a Dataplane.

The real one runs every operation on a single dedicated thread, in order: operations never
interleave (two activities for one node cannot half-apply each other's work), the synchronous
netlink/iptables/UAPI calls never block the event loop that serves Temporal and the probe server,
and the thread's network namespace is the agent's "host" namespace. In production that is the
process's own; in the dev stack and tests (`host_netns`), the thread enters a namespace that plays
the node while the process stays where it can reach Temporal on 127.0.0.1. wireguard-go daemons
started from that thread inherit its namespace, so their UDP sockets listen on the node.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pyroute2 import netns

from agent import gateway_plumbing
from agent.conntrack_flows import udp_flows_to
from agent.gateway_namespace import ensure_gateway_namespace
from agent.netns_handles import NetnsHandles
from agent.node_inventory import read_inventory
from agent.node_settings import GatewaySetup, NodeSettings, interface_name
from agent.orphan_plan import DesiredGateway, plan_orphans
from agent.session_handover import (
    NUDGE_COOLDOWN_SECONDS,
    Nudge,
    PeerKey,
    PeerSession,
    keepalives_to_stop,
    plan_nudges,
)
from agent.wireguard_devices import (
    InterfaceNotFoundError,
    PeerChanges,
    PeerSpec,
    WireguardDevices,
    open_wireguard,
)

__all__ = [
    "AppliedGateway",
    "Dataplane",
    "GatewayOwnedElsewhereError",
    "InterfaceNotFoundError",
    "Nudge",
    "open_dataplane",
    "peer_changes_line",
]

_T = TypeVar("_T")


class GatewayOwnedElsewhereError(RuntimeError):
    """The interface for this listen port belongs to another configuration."""


@dataclass(frozen=True)
class AppliedGateway:
    interface_name: str
    changes: tuple[str, ...]  # what this call changed; () when everything was in place
    peers: PeerChanges | None  # None: peers were left as they were
    # Debugging aid: seconds spent per step ("namespace", "wireguard", "plumbing", "peers").
    step_seconds: tuple[tuple[str, float], ...] = ()


class Dataplane(Protocol):
    async def apply(self, setup: GatewaySetup, peers: Sequence[PeerSpec] | None) -> AppliedGateway:
        """Namespace, WireGuard interface, plumbing, then peers: None leaves the interface's
        peers alone, a sequence makes them exactly these."""
        ...

    async def remove(self, sgc_uid: str, listen_port: int, secondary_ip: str) -> list[str]:
        """Delete wg-<port> (unless another configuration owns it) and its plumbing."""
        ...

    async def sync_peers(
        self, listen_port: int, peers: Sequence[PeerSpec], *, owner: str = ""
    ) -> PeerChanges:
        """Make wg-<port>'s peers exactly `peers`. InterfaceNotFoundError when it is not there;
        GatewayOwnedElsewhereError when `owner` is given and another configuration owns it."""
        ...

    async def remove_orphans(self, desired: Sequence[DesiredGateway]) -> list[str]:
        """Remove everything of ours that no desired gateway accounts for."""
        ...

    async def hand_over(self) -> list[Nudge]:
        """Start a handshake with each pod whose flow this node's load balancer rule now brings
        here while its session is with another gateway (agent/session_handover.py); and end the
        keepalives of earlier hand-overs. The nudges made now."""
        ...

    async def resync_peers(self) -> list[str]:
        """Make each interface's peers (and their routes) again exactly what the last apply or
        sync asked for: a peer added or removed by hand, or lost with its route, comes back in
        line without the workflow. What it changed, one line per interface."""
        ...

    async def close(self) -> None: ...


def peer_changes_line(name: str, changes: PeerChanges) -> str | None:
    """One line for a change list, or None when the peers did not change."""
    if changes == PeerChanges():
        return None
    return (
        f"peers of {name}: {changes.added} added, {changes.removed} removed, "
        f"{changes.updated} updated"
    )


def owner_problem(name: str, owner: str | None, sgc_uid: str) -> str | None:
    """Why configuration `sgc_uid` may not touch interface `name` whose alias is `owner`
    (None: no such interface; "": no owner recorded), or None when it may."""
    if owner is None or owner in ("", sgc_uid):
        return None
    return f"{name} belongs to configuration {owner}, not {sgc_uid}"


def open_dataplane(settings: NodeSettings, *, host_netns: str = "") -> Dataplane:
    """The node's dataplane. `host_netns`: a namespace under /var/run/netns that plays the
    node (dev stack, tests); "" = the agent's own namespace (production)."""
    if host_netns and host_netns not in netns.listnetns():
        raise FileNotFoundError(f"host_netns: network namespace {host_netns} does not exist")
    return _NodeDataplane(settings, host_netns)


def _enter(host_netns: str) -> None:
    if host_netns:
        # flags=0: never create a namespace by accident. A failure here breaks the executor, so
        # no operation can ever run in the wrong (the machine's own) namespace.
        netns.setns(host_netns, flags=0)


class _NodeDataplane:
    def __init__(self, settings: NodeSettings, host_netns: str) -> None:
        self._settings = settings
        self._pool = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="dataplane",
            initializer=_enter,
            initargs=(host_netns,),
        )
        self._handles = NetnsHandles()
        self._wireguard: WireguardDevices | None = None  # opened on the worker thread
        # Hand-over state, on the worker thread: frontend IP per listen port as applied here,
        # when each peer was last nudged, and nudged peers whose keepalive is still on.
        self._frontends: dict[int, str] = {}
        self._nudged: dict[PeerKey, float] = {}
        self._keepalive_on: dict[PeerKey, float] = {}
        # Per listen port, the owner's UID and the peers the workflow last asked for: what
        # resync_peers holds the device to. Kept on the worker thread, in order with the changes.
        self._wanted_peers: dict[int, tuple[str, tuple[PeerSpec, ...]]] = {}
        self._closed = False

    async def _run(self, call: Callable[..., _T], *args: object) -> _T:
        if self._closed:
            raise RuntimeError("the dataplane is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(call, *args))

    # --- on the worker thread --------------------------------------------------------------------

    def _devices(self) -> WireguardDevices:
        if self._wireguard is None:
            # host_netns "": this thread already is in the node's namespace.
            self._wireguard = open_wireguard(self._settings, self._handles, host_netns="")
        return self._wireguard

    def _apply(self, setup: GatewaySetup, peers: Sequence[PeerSpec] | None) -> AppliedGateway:
        name = interface_name(setup.listen_port)
        steps: list[tuple[str, float]] = []
        started = time.perf_counter()

        def step(label: str) -> None:
            nonlocal started
            now = time.perf_counter()
            steps.append((label, now - started))
            started = now

        changes = ensure_gateway_namespace(self._settings, self._handles)
        step("namespace")
        devices = self._devices()
        changes += devices.ensure_interface(
            name,
            owner=setup.sgc_uid,
            listen_port=setup.listen_port,
            private_key=setup.private_key,
        )
        step("wireguard")
        changes += gateway_plumbing.apply_plumbing(setup, self._settings, self._handles)
        step("plumbing")
        # Peers last: no pod traffic enters the interface before SNAT is in place.
        peer_changes = None
        # An apply reads the device (it may have been rebuilt just now); without peers it leaves
        # them alone, and what the device holds is no longer known for sure.
        self._wanted_peers.pop(setup.listen_port, None)
        if peers is not None:
            peer_changes = devices.sync_peers(name, peers)
            self._wanted_peers[setup.listen_port] = (setup.sgc_uid, tuple(peers))
            step("peers")
            line = peer_changes_line(name, peer_changes)
            if line is not None:
                changes.append(line)
        self._frontends[setup.listen_port] = setup.frontend_ip
        return AppliedGateway(name, tuple(changes), peer_changes, tuple(steps))

    def _remove(self, sgc_uid: str, listen_port: int, secondary_ip: str) -> list[str]:
        name = interface_name(listen_port)
        devices = self._devices()
        if owner_problem(name, devices.interfaces().get(name), sgc_uid) is not None:
            # The port went to another configuration: its interface and chains are not ours to
            # remove; orphan removal takes our secondary IP if nothing uses it.
            return []
        self._frontends.pop(listen_port, None)
        self._wanted_peers.pop(listen_port, None)
        changes = [f"deleted {name}"] if devices.delete_interface(name) else []
        changes += gateway_plumbing.remove_plumbing(
            listen_port, secondary_ip, self._settings, self._handles
        )
        return changes

    def _sync_peers(self, listen_port: int, peers: Sequence[PeerSpec], owner: str) -> PeerChanges:
        name = interface_name(listen_port)
        devices = self._devices()
        if owner:
            interfaces = devices.interfaces()
            if name not in interfaces:
                raise InterfaceNotFoundError(
                    f"{name} is not in namespace {self._settings.gateway_netns}"
                )
            problem = owner_problem(name, interfaces[name], owner)
            if problem is not None:
                raise GatewayOwnedElsewhereError(problem)
        known = self._wanted_peers.pop(listen_port, None)
        if known is not None and known[0] == owner:
            # What this agent made last: change only the difference (no read of the device).
            changes = devices.change_peers(name, known[1], peers)
        else:
            changes = devices.sync_peers(name, peers)
        self._wanted_peers[listen_port] = (owner, tuple(peers))
        return changes

    def _remove_orphans(self, desired: Sequence[DesiredGateway]) -> list[str]:
        plan = plan_orphans(read_inventory(self._settings, self._handles), desired)
        if plan.empty:
            return []
        for port in list(self._wanted_peers):
            if interface_name(port) in plan.links:
                del self._wanted_peers[port]
        return gateway_plumbing.remove_orphans(
            plan, self._settings, self._handles, delete_link=self._devices().delete_interface
        )

    def _resync_peers(self) -> list[str]:
        devices = self._devices()
        present = devices.interfaces()
        changed: list[str] = []
        for port, (owner, peers) in list(self._wanted_peers.items()):
            name = interface_name(port)
            if name not in present:
                continue  # gone by hand: rebuilding it is the workflow's (the drift pass)
            if owner and owner_problem(name, present[name], owner) is not None:
                del self._wanted_peers[port]  # the port serves another configuration now
                continue
            try:
                line = peer_changes_line(name, devices.sync_peers(name, peers))
            except InterfaceNotFoundError:
                continue  # removed since the listing
            if line is not None:
                changed.append(line)
        return changed

    def _hand_over(self) -> list[Nudge]:
        now = time.time()  # handshake times are wall-clock seconds
        devices = self._devices()
        present = devices.interfaces()
        ports = [port for port in self._frontends if interface_name(port) in present]
        flows = udp_flows_to([(self._frontends[port], port) for port in ports])
        # A device is read (every peer: costly with a thousand) only when a flow to its port
        # may need a nudge or a keepalive of an earlier one may end; this runs every second.
        wanted = {flow.dest_port for flow in flows} | {port for port, _ in self._keepalive_on}
        sessions: dict[int, list[PeerSession]] = {}
        for port in ports:
            if port not in wanted:
                continue
            try:
                sessions[port] = devices.peer_sessions(interface_name(port))
            except InterfaceNotFoundError:
                continue  # removed since the listing
        for key in keepalives_to_stop(self._keepalive_on, sessions, now):
            del self._keepalive_on[key]
            port, public_key = key
            if any(peer.public_key == public_key for peer in sessions.get(port, ())):
                devices.stop_keepalive(interface_name(port), public_key)
        frontends = {port: ip for port, ip in self._frontends.items() if port in sessions}
        nudges = plan_nudges(flows, frontends, sessions, self._nudged, now)
        for nudge in nudges:
            devices.start_handshake(
                interface_name(nudge.listen_port), nudge.public_key, nudge.endpoint
            )
            key = (nudge.listen_port, nudge.public_key)
            self._nudged[key] = now
            self._keepalive_on[key] = now
        self._nudged = {
            key: at for key, at in self._nudged.items() if now - at < NUDGE_COOLDOWN_SECONDS
        }
        return nudges

    def _close(self) -> None:
        if self._wireguard is not None:
            self._wireguard.close()
        self._handles.close()

    # --- the async face --------------------------------------------------------------------------

    async def apply(self, setup: GatewaySetup, peers: Sequence[PeerSpec] | None) -> AppliedGateway:
        return await self._run(self._apply, setup, peers)

    async def remove(self, sgc_uid: str, listen_port: int, secondary_ip: str) -> list[str]:
        return await self._run(self._remove, sgc_uid, listen_port, secondary_ip)

    async def sync_peers(
        self, listen_port: int, peers: Sequence[PeerSpec], *, owner: str = ""
    ) -> PeerChanges:
        return await self._run(self._sync_peers, listen_port, peers, owner)

    async def remove_orphans(self, desired: Sequence[DesiredGateway]) -> list[str]:
        return await self._run(self._remove_orphans, desired)

    async def hand_over(self) -> list[Nudge]:
        return await self._run(self._hand_over)

    async def resync_peers(self) -> list[str]:
        return await self._run(self._resync_peers)

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self._run(self._close)
        finally:
            self._closed = True
            self._pool.shutdown(wait=False)
