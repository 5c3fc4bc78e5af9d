"""What a pod's network namespace gets besides wg0, decided from the configuration's profile and
what is already there (pure; pod_netns applies it). docs/pod-side.md explains the choices.

- staticEgressGateway: the default route goes to wg0; the load balancer frontend (wg0's own
  endpoint), the node's cluster CIDRs, the configuration's excludeCidrs and the exception CIDRs
  go via the original gateway on the main interface.
- azureNetworking: the main interface's routes stay; only the configuration's excludeCidrs go to
  wg0; the frontend and the exception CIDRs still go via the original gateway.
- Both: a copy of the original default route in table 8738 and `fwmark 0x2222 lookup 8738`, and
  an nftables table that marks connections entering by the main interface so their replies
  leave by it too (ingress keeps working), and loose reverse-path filtering.

Every route this adds carries protocol ROUTE_PROTOCOL, so DEL finds exactly ours; routes the
main plugin made are never changed, except the default route staticEgressGateway replaces (and
DEL puts back).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts import kube_names

WG_IFNAME = kube_names.POD_WIREGUARD_INTERFACE
MARK = kube_names.POD_INGRESS_MARK
TABLE = kube_names.POD_INGRESS_TABLE
# Routing protocol number of every route the plugin adds (unassigned in iproute2's rt_protos).
ROUTE_PROTOCOL = 34
NFT_TABLE = "kube_egress_cni"
DEFAULT = "0.0.0.0/0"

STATIC_EGRESS_GATEWAY = "staticEgressGateway"
AZURE_NETWORKING = "azureNetworking"


@dataclass(frozen=True)
class Route:
    dst: str  # a normalized IPv4 CIDR; DEFAULT for the default route
    dev: str
    via: str = ""  # "" on a point-to-point device
    src: str = ""
    table: int = 0  # 0: main
    metric: int = 0
    protocol: str = str(ROUTE_PROTOCOL)

    def ip_args(self) -> str:
        """The arguments after `ip route add|replace|del`."""
        parts = ["default" if self.dst == DEFAULT else self.dst]
        if self.via:
            parts += ["via", self.via]
        parts += ["dev", self.dev]
        if self.src:
            parts += ["src", self.src]
        if self.table:
            parts += ["table", str(self.table)]
        if self.metric:
            parts += ["metric", str(self.metric)]
        parts += ["proto", self.protocol]
        return " ".join(parts)


@dataclass(frozen=True)
class PodNetwork:
    """Inputs of the plan."""

    mode: str  # STATIC_EGRESS_GATEWAY or AZURE_NETWORKING
    ifname: str  # the main interface (CNI_IFNAME)
    gateway: str  # its original IPv4 default gateway
    default_metric: int  # the original default route's metric
    pod_ip: str
    endpoint_ip: str  # wg0's peer: the load balancer frontend
    cluster_cidrs: tuple[str, ...]
    exclude_cidrs: tuple[str, ...]  # the configuration's
    exception_cidrs: tuple[str, ...]  # the manager's: never through the gateway


@dataclass(frozen=True)
class RoutePlan:
    main: tuple[Route, ...]  # added to the main table (the default one replaces)
    ingress: Route  # the default route of table TABLE
    skipped: tuple[str, ...]  # destinations left to the routes already there


def _network(cidr: str) -> str:
    return str(ipaddress.ip_network(cidr, strict=False))


def plan_routes(network: PodNetwork, existing_main: Iterable[str]) -> RoutePlan:
    """Routes for `network`; `existing_main` are the main table's destinations now (normalized
    CIDRs), whose routes are left as they are (the default route excepted)."""
    present = {_network(d) for d in existing_main} - {DEFAULT}
    endpoint = _network(f"{network.endpoint_ip}/32")
    exceptions = [_network(c) for c in network.exception_cidrs]
    bypass = [endpoint, *exceptions]
    tunnel: list[str] = []
    if network.mode == STATIC_EGRESS_GATEWAY:
        bypass += [_network(c) for c in (*network.cluster_cidrs, *network.exclude_cidrs)]
    else:
        tunnel = [_network(c) for c in network.exclude_cidrs]
    main: list[Route] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for dst in bypass:
        if dst in seen or dst == DEFAULT:
            continue
        seen.add(dst)
        if dst in present:
            skipped.append(dst)
            continue
        main.append(Route(dst=dst, dev=network.ifname, via=network.gateway))
    for dst in tunnel:
        if dst in seen or dst == DEFAULT:
            continue  # an exception or the endpoint itself never goes through the tunnel
        seen.add(dst)
        if dst in present:
            skipped.append(dst)
            continue
        main.append(Route(dst=dst, dev=WG_IFNAME, src=network.pod_ip))
    if network.mode == STATIC_EGRESS_GATEWAY:
        main.append(
            Route(dst=DEFAULT, dev=WG_IFNAME, src=network.pod_ip, metric=network.default_metric)
        )
    ingress = Route(dst=DEFAULT, dev=network.ifname, via=network.gateway, table=TABLE)
    return RoutePlan(main=tuple(main), ingress=ingress, skipped=tuple(skipped))


def add_commands(plan: RoutePlan) -> list[str]:
    """`ip -batch` lines that apply the plan: bypass routes first, the default route last, so the
    frontend stays reachable through every step."""
    lines = [
        f"route {'replace' if route.dst == DEFAULT else 'add'} {route.ip_args()}"
        for route in plan.main
    ]
    lines.append(f"route replace {plan.ingress.ip_args()}")
    lines.append(f"rule add fwmark {MARK:#x} lookup {TABLE}")
    return lines


def ingress_ruleset(ifname: str) -> str:
    """nft script: (re)create our table. Connections entering by `ifname` are marked, replies
    get the mark back on the way out and so use table TABLE (upstream's iptables rules: mangle
    PREROUTING -i eth0 MARK, CONNMARK --save-mark; OUTPUT connmark -> --restore-mark)."""
    return (
        f"table ip {NFT_TABLE} {{}}\n"
        f"delete table ip {NFT_TABLE}\n"
        f"table ip {NFT_TABLE} {{\n"
        "  chain prerouting {\n"
        "    type filter hook prerouting priority mangle; policy accept;\n"
        f'    iifname "{ifname}" meta mark set {MARK:#x}\n'
        "    ct mark set meta mark\n"
        "  }\n"
        "  chain output {\n"
        "    type route hook output priority mangle; policy accept;\n"
        f"    ct mark {MARK:#x} meta mark set ct mark\n"
        "  }\n"
        "}\n"
    )


def remove_ruleset() -> str:
    """nft script that removes our table whether or not it exists."""
    return f"table ip {NFT_TABLE} {{}}\ndelete table ip {NFT_TABLE}\n"


# --- Reading `ip -4 -j` output -------------------------------------------------------------------


def route_dst(raw: Mapping[str, Any]) -> str:
    dst = str(raw.get("dst", ""))
    if dst == "default":
        return DEFAULT
    return dst if "/" in dst else f"{dst}/32"


def route_table(raw: Mapping[str, Any]) -> int | None:
    """0 for main, the number for a numbered table, None for named others (local, default)."""
    table = raw.get("table")
    if table is None or table == "main":
        return 0
    return int(table) if isinstance(table, str) and table.isdecimal() else None


def is_ours(raw: Mapping[str, Any]) -> bool:
    return str(raw.get("protocol", "")) == str(ROUTE_PROTOCOL)


@dataclass(frozen=True)
class DefaultRoute:
    gateway: str
    dev: str
    metric: int
    protocol: str  # as `ip` prints it; "" for boot (which it leaves out)

    def restore_args(self) -> str:
        parts = ["default", "via", self.gateway, "dev", self.dev]
        if self.metric:
            parts += ["metric", str(self.metric)]
        parts += ["proto", self.protocol or "boot"]
        return " ".join(parts)


def default_route(routes: Sequence[Mapping[str, Any]], ifname: str) -> DefaultRoute | None:
    """The main table's IPv4 default route through `ifname` with a gateway."""
    for raw in routes:
        if (
            route_table(raw) == 0
            and route_dst(raw) == DEFAULT
            and raw.get("dev") == ifname
            and raw.get("gateway")
        ):
            return DefaultRoute(
                gateway=str(raw["gateway"]),
                dev=ifname,
                metric=int(raw.get("metric", 0) or 0),
                protocol=str(raw.get("protocol", "")),
            )
    return None


def ingress_rule_present(rules: Sequence[Mapping[str, Any]]) -> bool:
    return any(_is_ingress_rule(rule) for rule in rules)


def _is_ingress_rule(rule: Mapping[str, Any]) -> bool:
    mark = rule.get("fwmark")
    try:
        mark_value = int(str(mark), 0) if mark is not None else None
    except ValueError:
        return False
    return mark_value == MARK and str(rule.get("table")) == str(TABLE)


def ingress_rule_count(rules: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for rule in rules if _is_ingress_rule(rule))


def check_routes(
    plan: RoutePlan,
    routes: Sequence[Mapping[str, Any]],
    rules: Sequence[Mapping[str, Any]],
) -> list[str]:
    """What differs between the namespace (`ip -4 -j route show table all`, `ip -4 -j rule`)
    and the plan; [] when it matches."""
    problems: list[str] = []
    present = {
        (route_table(raw), route_dst(raw)): raw for raw in routes if route_table(raw) is not None
    }
    for route in (*plan.main, plan.ingress):
        found = present.get((route.table, route.dst))
        where = f"table {route.table}" if route.table else "the main table"
        if found is None:
            problems.append(f"route {route.dst} dev {route.dev} is missing from {where}")
        elif found.get("dev") != route.dev or str(found.get("gateway", "")) != route.via:
            via = f" via {found.get('gateway')}" if found.get("gateway") else ""
            problems.append(
                f"route {route.dst} in {where} goes{via} dev {found.get('dev')}, "
                f"expected {route.ip_args()}"
            )
    if not ingress_rule_present(rules):
        problems.append(f"rule fwmark {MARK:#x} lookup {TABLE} is missing")
    return problems
