"""What a gateway interface's peers and routes should become: pure diffs, no I/O.

Each pod is one peer (its public key) whose only allowed IP is <pod_ip>/32, plus one route
<pod_ip>/32 on the interface. Devices report peers as they are, which may be odd after manual
changes (several or no allowed IPs): anything but exactly the wanted /32 is an update.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from agent.wireguard_keys import check_public_key


@dataclass(frozen=True)
class PeerSpec:
    public_key: bytes  # 32 raw bytes
    allowed_ip: ipaddress.IPv4Address

    def __post_init__(self) -> None:
        check_public_key(self.public_key, field="public_key")
        if not isinstance(self.allowed_ip, ipaddress.IPv4Address):
            raise ValueError(f"allowed_ip: expected an IPv4 address, got {self.allowed_ip!r}")

    @property
    def allowed_network(self) -> str:
        return f"{self.allowed_ip}/32"


@dataclass(frozen=True)
class PeerChanges:
    added: int = 0
    removed: int = 0
    updated: int = 0


@dataclass(frozen=True)
class PeerPlan:
    add: tuple[PeerSpec, ...] = ()
    remove: tuple[bytes, ...] = ()  # public keys
    update: tuple[PeerSpec, ...] = ()  # existing key, allowed IPs replaced

    @property
    def empty(self) -> bool:
        return not (self.add or self.remove or self.update)

    @property
    def changes(self) -> PeerChanges:
        return PeerChanges(added=len(self.add), removed=len(self.remove), updated=len(self.update))


@dataclass(frozen=True)
class RoutePlan:
    add: tuple[ipaddress.IPv4Address, ...] = ()
    remove: tuple[ipaddress.IPv4Address, ...] = ()


# A device's peers as read back: public key -> its allowed IPs as CIDR strings.
CurrentPeers = Mapping[bytes, frozenset[str]]


def unique_peers(peers: Iterable[PeerSpec]) -> dict[bytes, PeerSpec]:
    """Peers by key; ValueError when one key or one pod IP appears twice with different
    partners, since WireGuard would silently give the IP to whichever peer came last."""
    by_key: dict[bytes, PeerSpec] = {}
    by_ip: dict[ipaddress.IPv4Address, bytes] = {}
    for peer in peers:
        known = by_key.get(peer.public_key)
        if known is not None and known != peer:
            raise ValueError(
                f"peers: one public key is listed with {known.allowed_ip} and {peer.allowed_ip}"
            )
        owner = by_ip.get(peer.allowed_ip)
        if owner is not None and owner != peer.public_key:
            raise ValueError(f"peers: allowed IP {peer.allowed_ip} is listed for two public keys")
        by_key[peer.public_key] = peer
        by_ip[peer.allowed_ip] = peer.public_key
    return by_key


def plan_peers(current: CurrentPeers, wanted: Sequence[PeerSpec]) -> PeerPlan:
    """Make the device hold exactly `wanted`."""
    want = unique_peers(wanted)
    add = tuple(peer for key, peer in want.items() if key not in current)
    update = tuple(
        peer
        for key, peer in want.items()
        if key in current and current[key] != frozenset({peer.allowed_network})
    )
    remove = tuple(key for key in current if key not in want)
    return PeerPlan(add=add, remove=remove, update=update)


def peers_after(current: CurrentPeers, plan: PeerPlan) -> dict[bytes, frozenset[str]]:
    gone = set(plan.remove)
    after = {key: nets for key, nets in current.items() if key not in gone}
    for peer in plan.add + plan.update:
        after[peer.public_key] = frozenset({peer.allowed_network})
    return after


def plan_routes(current: Iterable[ipaddress.IPv4Address], peers: CurrentPeers) -> RoutePlan:
    """One /32 route per peer IP on the interface and no other /32 route there (the interface
    is dedicated to this configuration's pods, so any other /32 on it is stale)."""
    have = set(current)
    want = {spec.allowed_ip for spec in specs_of(peers)}
    return RoutePlan(add=tuple(sorted(want - have)), remove=tuple(sorted(have - want)))


def specs_of(current: CurrentPeers) -> list[PeerSpec]:
    """Peers of a device in PeerSpec form; a peer without exactly one IPv4 /32 is left out
    (it is not one this agent made) and so counts as unwanted in later plans."""
    specs = []
    for key, networks in current.items():
        if len(networks) != 1:
            continue
        (network,) = networks
        address, _, length = network.partition("/")
        if length != "32":
            continue
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            continue
        specs.append(PeerSpec(public_key=key, allowed_ip=ip))
    return specs
