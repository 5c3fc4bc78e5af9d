"""Checks of what a workflow asks a node to do, before anything on the node changes.

Pure: an activity input and this agent's node name in, messages out ([] = acceptable). Every
message names the field it is about, so one failed activity tells the operator all that is wrong.
Peers are judged one by one: a malformed peer is rejected on its own and never holds up the rest
(one bad PodEndpoint must not cut off every other pod of the configuration).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from agent.peer_plan import PeerSpec
from agent.wireguard_keys import parse_public_key, to_base64
from contracts import kube_names
from contracts.node_io import (
    ApplyGatewayInput,
    GatewayPeer,
    RejectedPeer,
    RemoveGatewayInput,
    SecretRef,
    SyncPeersInput,
)


@dataclass(frozen=True)
class AcceptedPeer:
    spec: PeerSpec
    pod_endpoint: str
    public_key: str  # canonical base64, for GatewayStatus


@dataclass(frozen=True)
class CheckedPeers:
    accepted: tuple[AcceptedPeer, ...] = ()
    rejected: tuple[RejectedPeer, ...] = ()
    # Every row that parsed, as sent: the next check of the same interface skips parsing them.
    parsed: Mapping[GatewayPeer, PeerSpec] = field(default_factory=dict)

    @property
    def specs(self) -> tuple[PeerSpec, ...]:
        return tuple(peer.spec for peer in self.accepted)

    @property
    def status_entries(self) -> tuple[tuple[str, str], ...]:
        """(pod endpoint, public key) per accepted peer, as GatewayStatus lists them."""
        return tuple((peer.pod_endpoint, peer.public_key) for peer in self.accepted)


def _unicast(field: str, value: str) -> ipaddress.IPv4Address | str:
    """The address, or what is wrong with it. By integer ranges rather than the is_* properties,
    which walk networks: a thousand peers are checked on every peer pass."""
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        return f"{field}: {value!r} is not an IPv4 address"
    number = int(address)
    unspecified = number == 0
    loopback = number >> 24 == 127  # 127.0.0.0/8
    multicast = number >> 28 == 0xE  # 224.0.0.0/4
    if unspecified or loopback or multicast or number == 0xFFFFFFFF:
        return f"{field}: {value} is not a unicast address"
    return address


def _ipv4_problem(field: str, value: str) -> str | None:
    checked = _unicast(field, value)
    return checked if isinstance(checked, str) else None


def _node_problem(node_name: str, this_node: str) -> list[str]:
    if node_name != this_node:
        return [f"node_name: {node_name!r} is not this node ({this_node!r})"]
    return []


def _uid_problem(field: str, uid: str) -> list[str]:
    if not uid.strip():
        return [f"{field}: must not be empty"]
    if "/" in uid or uid != uid.strip():
        # The probe path is /gw/<uid>: such a UID could never be probed healthy.
        return [f"{field}: {uid!r} is not a UID"]
    return []


def _port_problem(field: str, port: int) -> list[str]:
    low, high = kube_names.WIREGUARD_PORT_MIN, kube_names.WIREGUARD_PORT_MAX
    if isinstance(port, bool) or not isinstance(port, int) or not low <= port < high:
        return [f"{field}: {port!r} is outside [{low}, {high})"]
    return []


def _secret_problems(field: str, ref: SecretRef) -> list[str]:
    return [
        f"{field}.{part}: must not be empty"
        for part, value in (("namespace", ref.namespace), ("name", ref.name))
        if not value.strip()
    ]


def _public_key_problem(field: str, text: str) -> list[str]:
    try:
        parse_public_key(text, field=field)
    except ValueError as error:
        return [str(error)]
    return []


def check_apply_input(request: ApplyGatewayInput, this_node: str) -> list[str]:
    """Problems with an apply request (its peers are judged by check_peers instead)."""
    gateway = request.gateway
    problems = _node_problem(request.node_name, this_node)
    problems += _uid_problem("gateway.sgc_uid", gateway.sgc_uid)
    problems += [
        f"gateway.{name}: must not be empty"
        for name, value in (
            ("sgc_namespace", gateway.sgc_namespace),
            ("sgc_name", gateway.sgc_name),
        )
        if not value.strip()
    ]
    problems += _port_problem("gateway.listen_port", gateway.listen_port)
    for name, value in (
        ("frontend_ip", gateway.frontend_ip),
        ("primary_ip", gateway.primary_ip),
        ("secondary_ip", gateway.secondary_ip),
    ):
        problem = _ipv4_problem(f"gateway.{name}", value)
        if problem is not None:
            problems.append(problem)
    problems += _secret_problems("gateway.private_key_secret", gateway.private_key_secret)
    problems += _public_key_problem("gateway.public_key", gateway.public_key)
    return problems


def check_remove_input(request: RemoveGatewayInput, this_node: str) -> list[str]:
    problems = _node_problem(request.node_name, this_node)
    problems += _uid_problem("sgc_uid", request.sgc_uid)
    problems += _port_problem("listen_port", request.listen_port)
    if request.secondary_ip:  # "" = unknown, allowed
        problem = _ipv4_problem("secondary_ip", request.secondary_ip)
        if problem is not None:
            problems.append(problem)
    return problems


def check_sync_input(request: SyncPeersInput, this_node: str) -> list[str]:
    """Problems with a peer sync request (its peers are judged by check_peers instead)."""
    problems = _node_problem(request.node_name, this_node)
    problems += _uid_problem("sgc_uid", request.sgc_uid)
    problems += _port_problem("listen_port", request.listen_port)
    table = request.table
    if table is not None and not table.consistent:
        problems.append(
            f"table: columns of {len(table.public_keys)} public keys, {len(table.pod_ips)} pod"
            f" IPs and {len(table.pod_endpoints)} pod endpoints"
        )
    return problems


def check_peers(
    peers: Sequence[GatewayPeer], known: Mapping[GatewayPeer, PeerSpec] | None = None
) -> CheckedPeers:
    """Accepted peers (exact repeats collapsed) and rejected ones with the reason.

    A key listed with two pod IPs, or a pod IP listed for two keys, rejects every entry of the
    conflict: WireGuard would silently hand the IP to whichever came last, and there is no
    telling which PodEndpoint is the stale one. `known`: rows that parsed before (`parsed` of an
    earlier check), taken as they are; a pass mostly repeats the last one's thousand rows.
    """
    known = known or {}
    parsed: list[tuple[int, GatewayPeer, PeerSpec]] = []
    rejected: list[RejectedPeer] = []
    for index, peer in enumerate(peers):
        spec = known.get(peer)
        if spec is not None:
            parsed.append((index, peer, spec))
            continue
        where = f"peers[{index}]"
        problems = []
        raw_key = b""
        try:
            raw_key = parse_public_key(peer.public_key, field=f"{where}.public_key")
        except ValueError as error:
            problems.append(str(error))
        pod_ip = _unicast(f"{where}.pod_ip", peer.pod_ip)
        if isinstance(pod_ip, str):
            problems.append(pod_ip)
        if problems or isinstance(pod_ip, str):
            rejected.append(RejectedPeer(peer.public_key, peer.pod_endpoint, "; ".join(problems)))
            continue
        parsed.append((index, peer, PeerSpec(raw_key, pod_ip)))

    ips_of_key: dict[bytes, set[ipaddress.IPv4Address]] = defaultdict(set)
    keys_of_ip: dict[ipaddress.IPv4Address, set[bytes]] = defaultdict(set)
    for _index, _peer, spec in parsed:
        ips_of_key[spec.public_key].add(spec.allowed_ip)
        keys_of_ip[spec.allowed_ip].add(spec.public_key)

    accepted: dict[PeerSpec, AcceptedPeer] = {}
    for index, peer, spec in parsed:
        where = f"peers[{index}]"
        if len(ips_of_key[spec.public_key]) > 1:
            others = sorted(str(ip) for ip in ips_of_key[spec.public_key] - {spec.allowed_ip})
            reason = f"{where}.public_key: also listed with pod IP {', '.join(others)}"
        elif len(keys_of_ip[spec.allowed_ip]) > 1:
            reason = f"{where}.pod_ip: {spec.allowed_ip} is also listed for another public key"
        else:
            accepted.setdefault(
                spec, AcceptedPeer(spec, peer.pod_endpoint, to_base64(spec.public_key))
            )
            continue
        rejected.append(RejectedPeer(peer.public_key, peer.pod_endpoint, reason))
    return CheckedPeers(
        accepted=tuple(accepted.values()),
        rejected=tuple(rejected),
        parsed={peer: spec for _index, peer, spec in parsed},
    )
