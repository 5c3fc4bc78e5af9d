"""Names and addresses of the emulated network, decided before anything is created.

Everything here is pure: the same prefix and nodes always give the same plan, so `destroy()` can
find what a half-finished `build()` left behind, and the dev stack can tell each agent which
namespace is its node's without asking the fabric.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IFNAME_MAX = 15  # Linux IFNAMSIZ - 1; node and client namespaces double as router link names
NODE_INTERFACE = "eth0"  # the agent's host interface, where it puts the frontend IP
ROUTER_SUFFIX = "vnet"
INTERNET_SUFFIX = "inet"
_RESERVED = frozenset({ROUTER_SUFFIX, INTERNET_SUFFIX})

# The "internet": a benchmark range (RFC 2544) that stays inside our namespaces.
INTERNET_LINK_NET = "198.18.0.0/24"
INTERNET_ROUTER_IP = "198.18.0.1"
INTERNET_ECHO_IP = "198.18.0.2"
INTERNET_CIDR = "198.18.0.0/15"
ECHO_PORT = 7777

POD_CIDR = "10.244.0.0/16"  # AKS's default pod range, for client namespaces

# Policy routing for the load balancer: node i's packets carry fwmark MARK_BASE + i and are routed
# by table MARK_BASE + i, whose default route points at node i.
MARK_BASE = 0xFA00
# Routes the fabric owns in the router's main table carry this protocol number, so a sync can
# tell them from the connected routes the kernel adds.
ROUTE_PROTOCOL = 188

_NAME_CHARS = re.compile(r"[^a-z0-9-]")


@dataclass(frozen=True)
class NodeSpec:
    """A gateway node as ARM knows it: its name (computer name) and primary address."""

    name: str
    primary_ip: str
    prefix_len: int  # of the node's subnet


@dataclass(frozen=True)
class NodePlan:
    name: str
    netns: str  # also the name of the router's link towards the node
    primary_ip: str
    prefix_len: int
    gateway_ip: str  # the subnet's first host, held by the router (Azure's default gateway)
    mark: int  # fwmark and routing table that send load-balanced flows to this node

    @property
    def router_link(self) -> str:
        return self.netns


@dataclass(frozen=True)
class ClientPlan:
    name: str
    netns: str  # also the name of the router's link towards the client
    ip: str
    gateway_ip: str

    @property
    def router_link(self) -> str:
        return self.netns


@dataclass(frozen=True)
class FabricPlan:
    prefix: str
    nodes: tuple[NodePlan, ...]
    echo_port: int = ECHO_PORT
    pod_cidr: str = POD_CIDR

    @property
    def router_netns(self) -> str:
        return f"{self.prefix}-{ROUTER_SUFFIX}"

    @property
    def internet_netns(self) -> str:
        return f"{self.prefix}-{INTERNET_SUFFIX}"

    @property
    def internet_link(self) -> str:
        """The router's link towards the internet namespace (same name as that namespace)."""
        return self.internet_netns

    @property
    def echo_ip(self) -> str:
        return INTERNET_ECHO_IP

    @property
    def pod_gateway_ip(self) -> str:
        return str(next(ipaddress.IPv4Network(self.pod_cidr).hosts()))

    @property
    def router_addresses(self) -> tuple[str, ...]:
        """Addresses the router holds on lo: each node subnet's gateway and the pod gateway."""
        found = dict.fromkeys(n.gateway_ip for n in self.nodes)
        found[self.pod_gateway_ip] = None
        return tuple(found)

    def node(self, name: str) -> NodePlan:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r} in the fabric plan")

    def node_by_ip(self, primary_ip: str) -> NodePlan | None:
        return next((n for n in self.nodes if n.primary_ip == primary_ip), None)

    def client(self, name: str, ip: str) -> ClientPlan:
        netns = f"{self.prefix}-{name}"
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name) or len(netns) > IFNAME_MAX:
            raise ValueError(
                f"client name {name!r} must be lower-case letters, digits and dashes, and "
                f"{netns!r} at most {IFNAME_MAX} characters"
            )
        if netns in self.namespaces:
            raise ValueError(f"client name {name!r} clashes with the fabric's {netns!r}")
        address = ipaddress.IPv4Address(ip)
        if address not in ipaddress.IPv4Network(self.pod_cidr) or ip == self.pod_gateway_ip:
            raise ValueError(f"client address {ip} is not a host of the pod range {self.pod_cidr}")
        return ClientPlan(name=name, netns=netns, ip=ip, gateway_ip=self.pod_gateway_ip)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace the plan names, router first (clients are added later)."""
        return (self.router_netns, self.internet_netns, *(n.netns for n in self.nodes))


def suffix_budget(prefix: str) -> int:
    return IFNAME_MAX - len(prefix) - 1


def node_suffixes(prefix: str, names: Sequence[str]) -> dict[str, str]:
    """Short, readable, unique namespace suffixes for node names.

    The tail of a node name tells nodes apart (AKS names end in the instance ID or index), so the
    suffix is the tail that fits; names whose tails collide fall back to their position.
    """
    budget = suffix_budget(prefix)
    if budget < 4:
        raise ValueError(f"fabric prefix {prefix!r} leaves no room for node names")
    tails = {name: _tail(name, budget) for name in names}
    counts: dict[str, int] = {}
    for tail in tails.values():
        counts[tail] = counts.get(tail, 0) + 1
    out: dict[str, str] = {}
    for index, name in enumerate(names):
        tail = tails[name]
        unique = tail and counts[tail] == 1 and tail not in _RESERVED
        out[name] = tail if unique else f"n{index}"
    return out


def _tail(name: str, budget: int) -> str:
    cleaned = _NAME_CHARS.sub("-", name.lower())
    return cleaned[-budget:].strip("-")


def plan_fabric(
    prefix: str,
    nodes: Iterable[NodeSpec],
    *,
    echo_port: int = ECHO_PORT,
    pod_cidr: str = POD_CIDR,
) -> FabricPlan:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", prefix):
        raise ValueError(f"fabric prefix {prefix!r}: use lower-case letters, digits and dashes")
    ordered = sorted(nodes, key=lambda n: n.name)
    names = [n.name for n in ordered]
    if len(set(names)) != len(names):
        raise ValueError("node names must be unique")
    if len({n.primary_ip for n in ordered}) != len(ordered):
        raise ValueError("node primary IPs must be unique")
    suffixes = node_suffixes(prefix, names)
    planned = []
    for index, spec in enumerate(ordered):
        subnet = ipaddress.IPv4Network(f"{spec.primary_ip}/{spec.prefix_len}", strict=False)
        gateway = str(next(subnet.hosts()))
        if spec.primary_ip == gateway:
            raise ValueError(f"node {spec.name}: {spec.primary_ip} is its subnet's gateway")
        planned.append(
            NodePlan(
                name=spec.name,
                netns=f"{prefix}-{suffixes[spec.name]}",
                primary_ip=spec.primary_ip,
                prefix_len=spec.prefix_len,
                gateway_ip=gateway,
                mark=MARK_BASE + index,
            )
        )
    return FabricPlan(prefix=prefix, nodes=tuple(planned), echo_port=echo_port, pod_cidr=pod_cidr)


def secondary_route_changes(
    current: dict[str, str], desired: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    """What to set and what to delete so the router's routes (address -> next hop) become
    `desired`: (routes to add or replace, addresses whose route goes)."""
    to_set = {ip: hop for ip, hop in desired.items() if current.get(ip) != hop}
    to_delete = sorted(ip for ip in current if ip not in desired)
    return to_set, to_delete
