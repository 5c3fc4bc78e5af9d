"""Which pods a gateway should hand over to itself (pure decisions).

When the load balancer moves a pod's flow from a failed gateway to this one, the pod's WireGuard
keeps sending on its session with the old gateway, which this one cannot decrypt; WireGuard
would start a new handshake only after 15 s without answers. A flow to this gateway's frontend
whose pod has no recent session here is that situation, so the gateway points the peer at the
flow's source and starts the handshake itself ("nudge"). A pod served by a healthy gateway sends
nothing here, so it never shows up as a flow and is never nudged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

# WireGuard rekeys every 120 s and drops a session after 180 s: a handshake older than this is
# no session at all.
SESSION_FRESH_SECONDS: Final = 180.0
# A nudge's handshake takes a round trip; one more nudge per peer per this many seconds.
NUDGE_COOLDOWN_SECONDS: Final = 5.0
# The keepalive that starts the handshake is switched off again after this long at most.
KEEPALIVE_MAX_SECONDS: Final = 5.0

PeerKey = tuple[int, bytes]  # (listen port, peer public key)


@dataclass(frozen=True)
class UdpFlow:
    """One UDP conntrack entry as first seen: source -> destination."""

    source_ip: str
    source_port: int
    dest_ip: str
    dest_port: int


@dataclass(frozen=True)
class PeerSession:
    """One peer of a WireGuard interface, as far as its session goes."""

    public_key: bytes
    allowed_ips: frozenset[str]  # CIDRs
    last_handshake: float = 0.0  # seconds since the epoch; 0 = never
    keepalive: int = 0  # persistent keepalive interval; 0 = off


@dataclass(frozen=True)
class Nudge:
    listen_port: int
    public_key: bytes
    pod_ip: str
    endpoint: str  # "<ip>:<port>" the pod sends from


def has_session(session: PeerSession, now: float, fresh: float = SESSION_FRESH_SECONDS) -> bool:
    return session.last_handshake > 0 and now - session.last_handshake < fresh


def plan_nudges(
    flows: Iterable[UdpFlow],
    frontends: Mapping[int, str],
    sessions: Mapping[int, Sequence[PeerSession]],
    last_nudged: Mapping[PeerKey, float],
    now: float,
    *,
    fresh: float = SESSION_FRESH_SECONDS,
    cooldown: float = NUDGE_COOLDOWN_SECONDS,
) -> list[Nudge]:
    """Peers to nudge: a flow to <frontend>:<port> of one of `frontends` (listen port ->
    frontend IP) from a pod IP that is the /32 allowed IP of a peer on that port, which has no
    session here and was not nudged within `cooldown`. One nudge per peer (the first of its
    flows: any of them reaches the pod)."""
    owners: dict[tuple[int, str], PeerSession] = {}
    for port, peers in sessions.items():
        for peer in peers:
            for network in peer.allowed_ips:
                address, _, length = network.partition("/")
                if length in ("", "32"):
                    owners[(port, address)] = peer
    nudges: dict[PeerKey, Nudge] = {}
    for flow in flows:
        if frontends.get(flow.dest_port) != flow.dest_ip:
            continue
        owner = owners.get((flow.dest_port, flow.source_ip))
        if owner is None or has_session(owner, now, fresh):
            continue
        key = (flow.dest_port, owner.public_key)
        if key in nudges or now - last_nudged.get(key, float("-inf")) < cooldown:
            continue
        nudges[key] = Nudge(
            flow.dest_port, owner.public_key, flow.source_ip, f"{flow.source_ip}:{flow.source_port}"
        )
    return list(nudges.values())


def keepalives_to_stop(
    pending: Mapping[PeerKey, float],
    sessions: Mapping[int, Sequence[PeerSession]],
    now: float,
    *,
    max_seconds: float = KEEPALIVE_MAX_SECONDS,
) -> list[PeerKey]:
    """Nudged peers (key -> when) whose keepalive goes back to 0: the handshake happened after
    the nudge, the peer is gone, or `max_seconds` passed."""
    current = {(port, peer.public_key): peer for port, peers in sessions.items() for peer in peers}
    done: list[PeerKey] = []
    for key, nudged_at in pending.items():
        peer = current.get(key)
        # Handshake times are whole seconds.
        handshake_after = peer is not None and peer.last_handshake >= math.floor(nudged_at)
        if peer is None or handshake_after or now - nudged_at >= max_seconds:
            done.append(key)
    return done
