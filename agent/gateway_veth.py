"""The veth between the host and the gateway namespace, and the addresses and routes each
configuration needs on it, named as upstream names them (docs/upstream-compatibility.md §3).

`host-gateway` stays in the host namespace, its peer `host0` lives in the gateway namespace. A
configuration's secondary IP sits on host0 as /32 and the host routes it to host-gateway; inside
the gateway namespace the node's primary IP is reached on-link over host0 and is the default
gateway. The primary IP is per node, so the default route is shared by every configuration and
never removed with one.
"""

from __future__ import annotations

from socket import AF_INET
from typing import Any

from agent.frontend_address import remove_address_from_host_interface
from agent.gateway_namespace import set_link_up
from agent.netns_handles import NetnsHandles
from agent.node_settings import GatewaySetup, NodeSettings
from contracts import kube_names

HOST_VETH = kube_names.HOST_VETH
NETNS_VETH = kube_names.NETNS_VETH

_MAIN_TABLE = 254
_SCOPE_UNIVERSE = 0
_SCOPE_LINK = 253


def _index(handle: Any, name: str) -> int | None:
    found: list[int] = handle.link_lookup(ifname=name)
    return found[0] if found else None


def ensure_veth(settings: NodeSettings, handles: NetnsHandles) -> list[str]:
    """host-gateway (host) <-> host0 (gateway namespace), both up. Repairs a pair whose host0
    was left in the host namespace (upstream creates it there and moves it) and a lone end."""
    host = handles.get()
    gateway = handles.get(settings.gateway_netns)
    ns = settings.gateway_netns
    changes: list[str] = []
    host_index = _index(host, HOST_VETH)
    gateway_index = _index(gateway, NETNS_VETH)
    if host_index is not None and gateway_index is None:
        stray = _index(host, NETNS_VETH)
        if stray is not None:
            host.link("set", index=stray, net_ns_fd=ns)
            changes.append(f"moved {NETNS_VETH} into {ns}")
        else:  # its peer is somewhere else: start over
            host.link("del", index=host_index)
            changes.append(f"deleted {HOST_VETH} whose peer was not in {ns}")
            host_index = None
    elif host_index is None and gateway_index is not None:
        gateway.link("del", index=gateway_index)  # a veth end whose peer is gone elsewhere
        changes.append(f"deleted {NETNS_VETH} in {ns} whose peer was missing")
    if host_index is None:
        host.link(
            "add",
            ifname=HOST_VETH,
            kind="veth",
            peer={"ifname": NETNS_VETH, "net_ns_fd": ns},
        )
        changes.append(f"created veth {HOST_VETH} <-> {NETNS_VETH} in {ns}")
    changes += set_link_up(host, HOST_VETH, "host namespace")
    changes += set_link_up(gateway, NETNS_VETH, ns)
    return changes


def host0_addresses(settings: NodeSettings, handles: NetnsHandles) -> frozenset[str]:
    """IPv4 /32 addresses on host0: the secondary IPs of the configurations built here."""
    gateway = handles.get(settings.gateway_netns)
    index = _index(gateway, NETNS_VETH)
    if index is None:
        return frozenset()
    return frozenset(
        str(msg.get("IFA_LOCAL"))
        for msg in gateway.addr("dump", index=index, family=AF_INET)
        if msg["prefixlen"] == 32
    )


def _routes(handle: Any, dst: str | None) -> list[Any]:
    """Main-table IPv4 routes to exactly `dst` (/32), or default routes when dst is None."""
    return [
        route
        for route in handle.route("dump", family=AF_INET, table=_MAIN_TABLE)
        if (
            route["dst_len"] == 0
            if dst is None
            else route["dst_len"] == 32 and route.get("RTA_DST") == dst
        )
    ]


def host_routes(handles: NetnsHandles) -> frozenset[str]:
    """Destinations of /32 routes on host-gateway in the host namespace."""
    host = handles.get()
    index = _index(host, HOST_VETH)
    if index is None:
        return frozenset()
    return frozenset(
        str(route.get("RTA_DST"))
        for route in host.route("dump", family=AF_INET, table=_MAIN_TABLE)
        if route["dst_len"] == 32 and route.get("RTA_OIF") == index
    )


def _ensure_route(
    handle: Any,
    *,
    dst: str | None,
    oif: int,
    scope: int,
    gateway: str | None,
    describe: str,
) -> list[str]:
    wanted = [
        route
        for route in _routes(handle, dst)
        if route.get("RTA_OIF") == oif
        and route["scope"] == scope
        and route.get("RTA_GATEWAY") == gateway
    ]
    if wanted:
        return []
    handle.route(
        "replace",
        dst=f"{dst}/32" if dst else "0.0.0.0/0",
        oif=oif,
        scope=scope,
        **({"gateway": gateway} if gateway else {}),
    )
    return [f"set route {describe}"]


def ensure_gateway_routes(
    setup: GatewaySetup, settings: NodeSettings, handles: NetnsHandles
) -> list[str]:
    """Per configuration: secondary IP off the host interface, onto host0, routed both ways."""
    ns = settings.gateway_netns
    host = handles.get()
    gateway = handles.get(ns)
    host_index = _index(host, HOST_VETH)
    gateway_index = _index(gateway, NETNS_VETH)
    if host_index is None or gateway_index is None:
        raise FileNotFoundError(f"veth {HOST_VETH} <-> {NETNS_VETH} is missing; ensure_veth first")
    secondary, primary = setup.secondary_ip, setup.primary_ip
    changes = remove_address_from_host_interface(secondary, settings, handles)
    if secondary not in host0_addresses(settings, handles):
        gateway.addr("add", index=gateway_index, address=secondary, prefixlen=32)
        changes.append(f"added {secondary}/32 to {NETNS_VETH} in {ns}")
    changes += _ensure_route(
        host,
        dst=secondary,
        oif=host_index,
        scope=_SCOPE_UNIVERSE,
        gateway=None,
        describe=f"{secondary}/32 dev {HOST_VETH}",
    )
    changes += _ensure_route(
        gateway,
        dst=primary,
        oif=gateway_index,
        scope=_SCOPE_LINK,
        gateway=None,
        describe=f"{primary}/32 dev {NETNS_VETH} scope link in {ns}",
    )
    changes += _ensure_route(
        gateway,
        dst=None,
        oif=gateway_index,
        scope=_SCOPE_UNIVERSE,
        gateway=primary,
        describe=f"default via {primary} dev {NETNS_VETH} in {ns}",
    )
    return changes


def remove_gateway_routes(
    secondary_ip: str, settings: NodeSettings, handles: NetnsHandles
) -> list[str]:
    """Take one configuration's secondary IP off host0 and drop the host's route to it."""
    changes: list[str] = []
    ns = settings.gateway_netns
    if handles.exists(ns):
        gateway = handles.get(ns)
        index = _index(gateway, NETNS_VETH)
        if index is not None and secondary_ip in host0_addresses(settings, handles):
            gateway.addr("del", index=index, address=secondary_ip, prefixlen=32)
            changes.append(f"removed {secondary_ip}/32 from {NETNS_VETH} in {ns}")
    host = handles.get()
    host_index = _index(host, HOST_VETH)
    for route in _routes(host, secondary_ip):
        if route.get("RTA_OIF") == host_index:  # a route elsewhere is not ours
            host.route("del", dst=f"{secondary_ip}/32", oif=host_index, table=_MAIN_TABLE)
            changes.append(f"removed route {secondary_ip}/32 dev {HOST_VETH}")
    return changes
