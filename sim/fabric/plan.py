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

# AKS's default pod range. Its first /20 is for client namespaces (pod stand-ins routed by the
# router itself); each node gets the next free /24 after it, as a node's pod CIDR.
POD_CIDR = "10.244.0.0/16"
CLIENT_CIDR = "10.244.0.0/20"
NODE_POD_PREFIX_LEN = 24  # AKS's node CIDR mask size

# Node roles: gateway nodes (an agent, no outbound SNAT) and regular nodes (ordinary pods).
GATEWAY = "gateway"
REGULAR = "regular"
ROLES = (GATEWAY, REGULAR)

# Policy routing for the load balancer: node i's packets carry fwmark MARK_BASE + i and are routed
# by table MARK_BASE + i, whose default route points at node i.
MARK_BASE = 0xFA00
# Routes the fabric owns in the router's main table carry this protocol number, so a sync can
# tell them from the connected routes the kernel adds.
ROUTE_PROTOCOL = 188

_NAME_CHARS = re.compile(r"[^a-z0-9-]")
# AKS node names: VMSS instances `aks-<pool>-<8 digits>-vmss<6 base-36 digits>`, pool VMs
# `aks-<pool>-<index>`.
_AKS_VMSS_NODE = re.compile(r"aks-([a-z0-9]+)-\d{8}-vmss([0-9a-z]{6})")
_AKS_VM_NODE = re.compile(r"aks-([a-z0-9]+)-(\d+)")


@dataclass(frozen=True)
class NodeSpec:
    """A node as ARM knows it: its name (computer name), primary address and role."""

    name: str
    primary_ip: str
    prefix_len: int  # of the node's subnet
    role: str = GATEWAY


@dataclass(frozen=True)
class NodePlan:
    name: str
    netns: str  # also the name of the router's link towards the node
    primary_ip: str
    prefix_len: int
    gateway_ip: str  # the subnet's first host, held by the router (Azure's default gateway)
    mark: int  # fwmark and routing table that send load-balanced flows to this node
    role: str  # GATEWAY or REGULAR
    pod_cidr: str  # routed by the router to the node's primary IP

    @property
    def router_link(self) -> str:
        return self.netns

    @property
    def is_gateway(self) -> bool:
        return self.role == GATEWAY

    @property
    def pod_gateway_ip(self) -> str:
        """The first host of the node's pod CIDR: its pods' gateway (the CNI bridge's address)."""
        return str(next(ipaddress.IPv4Network(self.pod_cidr).hosts()))


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
    client_cidr: str = CLIENT_CIDR
    # The cluster's outbound public IP: regular nodes' and all pods' traffic to the internet
    # leaves with it. None: no SNAT (e.g. a fabric of gateway nodes only).
    outbound_ip: str | None = None

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
    def client_gateway_ip(self) -> str:
        return str(next(ipaddress.IPv4Network(self.client_cidr).hosts()))

    @property
    def router_addresses(self) -> tuple[str, ...]:
        """Addresses the router holds on lo: each node subnet's gateway and the clients'."""
        found = dict.fromkeys(n.gateway_ip for n in self.nodes)
        found[self.client_gateway_ip] = None
        return tuple(found)

    @property
    def gateway_nodes(self) -> tuple[NodePlan, ...]:
        return tuple(n for n in self.nodes if n.is_gateway)

    @property
    def regular_nodes(self) -> tuple[NodePlan, ...]:
        return tuple(n for n in self.nodes if not n.is_gateway)

    @property
    def outbound_sources(self) -> tuple[str, ...]:
        """What the router SNATs to the outbound IP on its way to the internet: the regular
        nodes' primary IPs and every node's pod CIDR. Gateway nodes' own and secondary IPs and
        client namespaces are not SNATed here (secondary IPs with a public IP are translated by
        sim/fabric/edge.py)."""
        if self.outbound_ip is None:
            return ()
        return (
            *(f"{n.primary_ip}/32" for n in self.regular_nodes),
            *(n.pod_cidr for n in self.nodes),
        )

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
        if address not in ipaddress.IPv4Network(self.client_cidr) or ip == self.client_gateway_ip:
            raise ValueError(
                f"client address {ip} is not a host of the clients' range {self.client_cidr}"
            )
        return ClientPlan(name=name, netns=netns, ip=ip, gateway_ip=self.client_gateway_ip)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace the plan names, router first (clients are added later)."""
        return (self.router_netns, self.internet_netns, *(n.netns for n in self.nodes))


def suffix_budget(prefix: str) -> int:
    return IFNAME_MAX - len(prefix) - 1


def node_suffixes(prefix: str, names: Sequence[str]) -> dict[str, str]:
    """Short, readable, unique namespace suffixes for node names.

    AKS node names become `<pool>-<instance>` (the pool shortened to fit); other names keep the
    tail that fits. Names whose suffixes still collide fall back to their position `n<i>`; should
    such a fallback equal another name's suffix, every name falls back to its position.
    """
    budget = suffix_budget(prefix)
    if budget < 4:
        raise ValueError(f"fabric prefix {prefix!r} leaves no room for node names")
    wanted = {name: _short(name, budget) for name in names}
    counts: dict[str, int] = {}
    for suffix in wanted.values():
        counts[suffix] = counts.get(suffix, 0) + 1
    out: dict[str, str] = {}
    for index, name in enumerate(names):
        suffix = wanted[name]
        unique = suffix and counts[suffix] == 1 and suffix not in _RESERVED
        out[name] = suffix if unique else f"n{index}"
    if len(set(out.values())) < len(out):
        return {name: f"n{index}" for index, name in enumerate(names)}
    return out


def _short(name: str, budget: int) -> str:
    cleaned = _NAME_CHARS.sub("-", name.lower())
    vmss = _AKS_VMSS_NODE.fullmatch(cleaned)
    vm = _AKS_VM_NODE.fullmatch(cleaned)
    if vmss is not None:
        pool, instance = vmss[1], str(int(vmss[2], 36))
    elif vm is not None:
        pool, instance = vm[1], vm[2]
    else:
        return cleaned[-budget:].strip("-")
    room = budget - len(instance) - 1
    return f"{pool[:room]}-{instance}" if room > 0 else ""


def node_pod_cidrs(pod_cidr: str, client_cidr: str, count: int) -> list[str]:
    """The first `count` /24s of the pod range that the clients' range leaves free."""
    pods = ipaddress.IPv4Network(pod_cidr)
    clients = ipaddress.IPv4Network(client_cidr)
    if not clients.subnet_of(pods):
        raise ValueError(f"the clients' range {client_cidr} is not inside the pod range {pod_cidr}")
    if pods.prefixlen > NODE_POD_PREFIX_LEN:
        raise ValueError(f"the pod range {pod_cidr} is smaller than one node's /24")
    free = (c for c in pods.subnets(new_prefix=NODE_POD_PREFIX_LEN) if not c.overlaps(clients))
    found = [str(cidr) for cidr, _ in zip(free, range(count), strict=False)]
    if len(found) < count:
        raise ValueError(f"the pod range {pod_cidr} has no room for {count} node pod CIDRs")
    return found


def plan_fabric(
    prefix: str,
    nodes: Iterable[NodeSpec],
    *,
    echo_port: int = ECHO_PORT,
    pod_cidr: str = POD_CIDR,
    client_cidr: str = CLIENT_CIDR,
    outbound_ip: str | None = None,
) -> FabricPlan:
    """The plan for `nodes`, ordered by name: the i-th node gets mark MARK_BASE + i and the i-th
    free /24 of the pod range, so the same nodes always get the same names and addresses."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", prefix):
        raise ValueError(f"fabric prefix {prefix!r}: use lower-case letters, digits and dashes")
    ordered = sorted(nodes, key=lambda n: n.name)
    names = [n.name for n in ordered]
    if len(set(names)) != len(names):
        raise ValueError("node names must be unique")
    if len({n.primary_ip for n in ordered}) != len(ordered):
        raise ValueError("node primary IPs must be unique")
    for spec in ordered:
        if spec.role not in ROLES:
            raise ValueError(f"node {spec.name}: role {spec.role!r} is not one of {ROLES}")
    if outbound_ip is not None:
        ipaddress.IPv4Address(outbound_ip)
    suffixes = node_suffixes(prefix, names)
    cidrs = node_pod_cidrs(pod_cidr, client_cidr, len(ordered))
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
                role=spec.role,
                pod_cidr=cidrs[index],
            )
        )
    return FabricPlan(
        prefix=prefix,
        nodes=tuple(planned),
        echo_port=echo_port,
        pod_cidr=pod_cidr,
        client_cidr=client_cidr,
        outbound_ip=outbound_ip,
    )


def secondary_route_changes(
    current: dict[str, str], desired: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    """What to set and what to delete so the router's routes (address -> next hop) become
    `desired`: (routes to add or replace, addresses whose route goes)."""
    to_set = {ip: hop for ip, hop in desired.items() if current.get(ip) != hop}
    to_delete = sorted(ip for ip in current if ip not in desired)
    return to_set, to_delete
