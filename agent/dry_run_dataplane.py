"""A Dataplane that changes nothing on the machine: for running the agent without root (the dev
stack on a laptop, a demo).

It keeps what a real node would hold in memory, so repeated applies report no changes, removal
and orphan removal act only on what was applied, and peer counts add up; and it appends one JSON
line per operation to a file, saying what a real node would have changed:

    {"time": "...", "op": "apply", "interface": "wg-6000", "sgc_uid": "...", "would": [...]}

Private keys never reach the file: only whether the key would change.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.gateway_dataplane import (
    AppliedGateway,
    GatewayOwnedElsewhereError,
    owner_problem,
    peer_changes_line,
)
from agent.node_inventory import NodeInventory
from agent.node_settings import GatewaySetup, NodeSettings, interface_name
from agent.orphan_plan import DesiredGateway, OrphanPlan, plan_orphans
from agent.peer_plan import (
    CurrentPeers,
    PeerChanges,
    PeerSpec,
    peers_after,
    plan_peers,
    specs_of,
)
from agent.session_handover import Nudge
from agent.wireguard_devices import InterfaceNotFoundError


@dataclass
class _Gateway:
    """One applied configuration as the node would hold it."""

    sgc_uid: str
    listen_port: int
    frontend_ip: str
    primary_ip: str
    secondary_ip: str
    key_digest: bytes  # tells a key change apart without keeping the key itself
    peers: dict[bytes, frozenset[str]] = field(default_factory=dict)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DryRunDataplane:
    def __init__(
        self,
        log_path: Path,
        settings: NodeSettings | None = None,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._path = log_path
        self._settings = settings or NodeSettings()
        self._clock = clock
        self._gateways: dict[int, _Gateway] = {}  # by listen port
        self._namespace = False
        self._lock = asyncio.Lock()  # operations never interleave, as on the real node
        self._file_lock = threading.Lock()

    # --- the record ------------------------------------------------------------------------------

    def _record(
        self, op: str, interface: str, sgc_uid: str, would: Sequence[str], **extra: Any
    ) -> None:
        line = {
            "time": self._clock().isoformat(),
            "op": op,
            "interface": interface,
            "sgc_uid": sgc_uid,
            "would": list(would),
            **extra,
        }
        with self._file_lock:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.open("a", encoding="utf-8") as log_file:
                log_file.write(json.dumps(line, sort_keys=True) + "\n")

    # --- state as an inventory, so orphan planning is the real one --------------------------------

    def _inventory(self) -> NodeInventory:
        gateways = self._gateways.values()
        secondaries = frozenset(gateway.secondary_ip for gateway in gateways)
        return NodeInventory(
            gateway_netns_exists=self._namespace,
            wireguard_links={
                interface_name(gateway.listen_port): gateway.sgc_uid for gateway in gateways
            },
            host0_addresses=secondaries,
            gateway_chain_ports=frozenset(self._gateways),
            host_routes=secondaries,
            host_ip_chains=secondaries,
            snat_base_chain=bool(self._gateways),
            frontend_addresses=frozenset(gateway.frontend_ip for gateway in gateways),
        )

    # --- operations ------------------------------------------------------------------------------

    def _apply_changes(self, setup: GatewaySetup, name: str) -> list[str]:
        settings = self._settings
        gw_ns = settings.gateway_netns
        would: list[str] = []
        if not self._namespace:
            would.append(f"create network namespace {gw_ns}")
            self._namespace = True
        current = self._gateways.get(setup.listen_port)
        digest = hashlib.blake2b(setup.private_key, digest_size=16).digest()
        others = [g for port, g in self._gateways.items() if port != setup.listen_port]
        if current is None:
            would += [f"create {name}", f"set {name} owner to {setup.sgc_uid}"]
            would += [f"set {name} private key", f"set {name} listen port {setup.listen_port}"]
            current = _Gateway(
                setup.sgc_uid,
                setup.listen_port,
                setup.frontend_ip,
                setup.primary_ip,
                setup.secondary_ip,
                digest,
            )
            self._gateways[setup.listen_port] = current
            known_frontends = {g.frontend_ip for g in others}
            known_secondaries = {g.secondary_ip for g in others}
            if setup.frontend_ip not in known_frontends:
                would.append(f"add {setup.frontend_ip}/32 to {settings.host_interface}")
            if setup.secondary_ip not in known_secondaries:
                would += [
                    f"add chain EGRESS-{setup.secondary_ip.replace('.', '-')}",
                    f"add {setup.secondary_ip}/32 to host0 in {gw_ns}",
                    f"set route {setup.secondary_ip}/32 dev host-gateway",
                ]
            would.append(
                f"add chains EGRESS-GATEWAY-MARK-{setup.listen_port} and "
                f"EGRESS-GATEWAY-SNAT-{setup.listen_port}"
            )
            return would
        if current.sgc_uid != setup.sgc_uid:
            would.append(f"set {name} owner to {setup.sgc_uid}")
            current.sgc_uid = setup.sgc_uid
        if current.key_digest != digest:
            would.append(f"set {name} private key")
            current.key_digest = digest
        if current.frontend_ip != setup.frontend_ip:
            would.append(f"add {setup.frontend_ip}/32 to {settings.host_interface}")
            current.frontend_ip = setup.frontend_ip
        if current.primary_ip != setup.primary_ip:
            would.append(f"set route default via {setup.primary_ip} dev host0 in {gw_ns}")
            current.primary_ip = setup.primary_ip
        if current.secondary_ip != setup.secondary_ip:
            would += [
                f"add {setup.secondary_ip}/32 to host0 in {gw_ns}",
                f"rewrite chain EGRESS-GATEWAY-SNAT-{setup.listen_port}",
            ]
            current.secondary_ip = setup.secondary_ip
        return would

    def _sync(self, gateway: _Gateway, peers: Sequence[PeerSpec]) -> PeerChanges:
        current: CurrentPeers = gateway.peers
        plan = plan_peers(current, peers)
        gateway.peers = peers_after(current, plan)
        return plan.changes

    async def apply(self, setup: GatewaySetup, peers: Sequence[PeerSpec] | None) -> AppliedGateway:
        async with self._lock:
            name = interface_name(setup.listen_port)
            would = self._apply_changes(setup, name)
            changes: PeerChanges | None = None
            if peers is not None:
                changes = self._sync(self._gateways[setup.listen_port], peers)
                line = peer_changes_line(name, changes)
                if line is not None:
                    would.append(line)
            self._record("apply", name, setup.sgc_uid, would, **_peer_fields(changes))
            return AppliedGateway(name, tuple(would), changes)

    async def remove(self, sgc_uid: str, listen_port: int, secondary_ip: str) -> list[str]:
        async with self._lock:
            name = interface_name(listen_port)
            gateway = self._gateways.get(listen_port)
            would: list[str] = []
            owner = gateway.sgc_uid if gateway is not None else None
            if gateway is not None and owner_problem(name, owner, sgc_uid) is None:
                del self._gateways[listen_port]
                would += [
                    f"delete {name}",
                    f"remove chains EGRESS-GATEWAY-MARK-{listen_port} and "
                    f"EGRESS-GATEWAY-SNAT-{listen_port}",
                ]
                source = secondary_ip or gateway.secondary_ip
                if source not in {g.secondary_ip for g in self._gateways.values()}:
                    would += [
                        f"remove {source}/32 from host0",
                        f"remove route {source}/32 dev host-gateway",
                        f"remove chain EGRESS-{source.replace('.', '-')}",
                    ]
            self._record("remove", name, sgc_uid, would)
            return would

    async def sync_peers(
        self, listen_port: int, peers: Sequence[PeerSpec], *, owner: str = ""
    ) -> PeerChanges:
        async with self._lock:
            name = interface_name(listen_port)
            gateway = self._gateways.get(listen_port)
            if gateway is None:
                raise InterfaceNotFoundError(f"{name} is not in namespace (dry run)")
            if owner:
                problem = owner_problem(name, gateway.sgc_uid, owner)
                if problem is not None:
                    raise GatewayOwnedElsewhereError(problem)
            changes = self._sync(gateway, peers)
            line = peer_changes_line(name, changes)
            self._record(
                "sync_peers",
                name,
                gateway.sgc_uid,
                [line] if line is not None else [],
                **_peer_fields(changes),
            )
            return changes

    async def remove_orphans(self, desired: Sequence[DesiredGateway]) -> list[str]:
        async with self._lock:
            plan = plan_orphans(self._inventory(), desired)
            would = _orphan_lines(plan, self._settings)
            for link in plan.links:
                self._gateways = {
                    port: g for port, g in self._gateways.items() if interface_name(port) != link
                }
            for port in plan.gateway_chain_ports:
                self._gateways.pop(port, None)
            if would:  # the agent runs this every minute: only record when it would act
                self._record("remove_orphans", "", "", would)
            return would

    async def hand_over(self) -> list[Nudge]:
        """Nothing: a dry run has no flows to hand over."""
        return []

    async def resync_peers(self) -> list[str]:
        """Nothing: only this object changes the peers it records, so they cannot drift."""
        return []

    async def close(self) -> None:
        return None

    def peers(self, listen_port: int) -> list[PeerSpec]:
        """The peers wg-<port> would hold (for tests and the dev stack's introspection)."""
        gateway = self._gateways.get(listen_port)
        if gateway is None:
            raise InterfaceNotFoundError(f"{interface_name(listen_port)} (dry run)")
        return sorted(specs_of(gateway.peers), key=lambda peer: peer.allowed_ip)

    def interfaces(self) -> Mapping[str, str]:
        """wg-<port> -> owner UID, as the node would hold them."""
        return {interface_name(port): g.sgc_uid for port, g in sorted(self._gateways.items())}


def _peer_fields(changes: PeerChanges | None) -> dict[str, Any]:
    if changes is None:
        return {}
    return {
        "peers": {"added": changes.added, "removed": changes.removed, "updated": changes.updated}
    }


def _orphan_lines(plan: OrphanPlan, settings: NodeSettings) -> list[str]:
    lines = [f"delete {link}" for link in plan.links]
    lines += [
        f"remove chains EGRESS-GATEWAY-MARK-{port} and EGRESS-GATEWAY-SNAT-{port}"
        for port in plan.gateway_chain_ports
    ]
    lines += [f"remove {ip}/32 from host0 and its host route" for ip in plan.secondary_ips]
    lines += [f"remove chain EGRESS-{ip.replace('.', '-')}" for ip in plan.host_ip_chains]
    lines += [f"remove {ip}/32 from {settings.host_interface}" for ip in plan.frontend_ips]
    if plan.snat_base_chain:
        lines.append("remove chain EGRESS-GATEWAY-SNAT")
    return lines
