"""Everything a configuration needs on a gateway node besides its WireGuard interface, in the
order docs/node-agent.md describes ("What one configuration looks like on a node"), its removal,
and orphan removal.

All calls are synchronous and act on the calling thread's namespace as the host namespace
(see agent/gateway_namespace.py).
"""

from __future__ import annotations

from collections.abc import Callable

from agent import reply_source, snat_rules
from agent.frontend_address import ensure_frontend_address, remove_frontend_address
from agent.gateway_namespace import ensure_gateway_namespace
from agent.gateway_veth import ensure_gateway_routes, ensure_veth, remove_gateway_routes
from agent.netns_handles import NetnsHandles
from agent.node_settings import GatewaySetup, NodeSettings
from agent.orphan_plan import OrphanPlan


def apply_plumbing(
    setup: GatewaySetup,
    settings: NodeSettings,
    handles: NetnsHandles,
    *,
    iptables: str = snat_rules.IPTABLES,
) -> list[str]:
    """Ensure one configuration's namespace, frontend IP, veth, routes and SNAT; [] if all was
    already in place."""
    host_rules = snat_rules.NatRules("", iptables)
    gateway_rules = snat_rules.NatRules(settings.gateway_netns, iptables)
    changes = ensure_gateway_namespace(settings, handles)
    changes += ensure_frontend_address(setup.frontend_ip, settings, handles)
    # The MASQUERADE exemption goes in before the secondary IP is routed, so no packet of the
    # gateway ever leaves with the node's address.
    changes += snat_rules.ensure_host_snat(setup.secondary_ip, host_rules)
    changes += ensure_veth(settings, handles)
    changes += ensure_gateway_routes(setup, settings, handles)
    changes += snat_rules.ensure_gateway_snat(setup.listen_port, setup.secondary_ip, gateway_rules)
    changes += reply_source.ensure_reply_source(
        setup.listen_port, setup.frontend_ip, settings.host_interface
    )
    return changes


def remove_plumbing(
    port: int,
    secondary_ip: str,
    settings: NodeSettings,
    handles: NetnsHandles,
    *,
    iptables: str = snat_rules.IPTABLES,
) -> list[str]:
    """Remove one configuration's SNAT chains, secondary IP and host route. `secondary_ip` ""
    means unknown: it is read from the port's SNAT rule. The frontend IP, veth and default
    route are shared by configurations; orphan removal takes them when the last one goes."""
    changes = reply_source.remove_reply_source(port)
    if handles.exists(settings.gateway_netns):
        gateway_rules = snat_rules.NatRules(settings.gateway_netns, iptables)
        table = gateway_rules.read()
        secondary_ip = secondary_ip or snat_rules.snat_source(table, port) or ""
        still_used = {
            snat_rules.snat_source(table, other)
            for other in snat_rules.gateway_snat_ports(table)
            if other != port
        }
        changes += snat_rules.remove_gateway_snat(port, gateway_rules)
        if secondary_ip in still_used:  # another port still sends from it
            return changes
    if secondary_ip:
        changes += remove_gateway_routes(secondary_ip, settings, handles)
        changes += snat_rules.remove_host_snat(secondary_ip, snat_rules.NatRules("", iptables))
    return changes


def remove_orphans(
    plan: OrphanPlan,
    settings: NodeSettings,
    handles: NetnsHandles,
    *,
    delete_link: Callable[[str], bool],
    iptables: str = snat_rules.IPTABLES,
) -> list[str]:
    """Carry out an orphan plan. WireGuard links go through `delete_link` (the WireGuard layer's
    delete_interface, which also ends a wireguard-go process); the rest is removed here."""
    changes: list[str] = []
    for link in plan.links:
        if delete_link(link):
            changes.append(f"deleted {link}")
    if plan.gateway_chain_ports and handles.exists(settings.gateway_netns):
        gateway_rules = snat_rules.NatRules(settings.gateway_netns, iptables)
        chains = [
            chain(port)
            for port in plan.gateway_chain_ports
            for chain in (snat_rules.mark_chain, snat_rules.snat_chain)
        ]
        changes += gateway_rules.apply(snat_rules.plan_remove(gateway_rules.read(), chains))
    for secondary_ip in plan.secondary_ips:
        changes += remove_gateway_routes(secondary_ip, settings, handles)
    host_chains = [snat_rules.host_ip_chain(ip) for ip in plan.host_ip_chains]
    if plan.snat_base_chain:
        host_chains.append(snat_rules.SNAT_BASE_CHAIN)
    if host_chains:
        host_rules = snat_rules.NatRules("", iptables)
        changes += host_rules.apply(snat_rules.plan_remove(host_rules.read(), host_chains))
    for frontend_ip in plan.frontend_ips:
        changes += remove_frontend_address(frontend_ip, settings, handles)
    for port in plan.reply_source_ports:
        changes += reply_source.remove_reply_source(port)
    return changes
