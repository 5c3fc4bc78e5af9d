"""What a gateway node holds right now (observed state), for orphan planning and status.

Only things that are ours by name or label are listed: wg-* links, /32 addresses on host0,
/32 routes on host-gateway, our nat chains, addresses labelled `<interface>:egress`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from agent import reply_source, snat_rules
from agent.frontend_address import frontend_addresses
from agent.gateway_veth import host0_addresses, host_routes
from agent.netns_handles import NetnsHandles
from agent.node_settings import NodeSettings
from contracts import kube_names


@dataclass(frozen=True)
class NodeInventory:
    gateway_netns_exists: bool = False
    # wg-* links in the gateway namespace -> their alias (the owning configuration's UID; "" if
    # none)
    wireguard_links: Mapping[str, str] = field(default_factory=dict)
    host0_addresses: frozenset[str] = frozenset()  # secondary IPs on host0
    gateway_chain_ports: frozenset[int] = frozenset()  # ports with a MARK or SNAT chain
    host_routes: frozenset[str] = frozenset()  # /32 destinations routed dev host-gateway
    host_ip_chains: frozenset[str] = frozenset()  # secondary IPs with an EGRESS-<ip> chain
    snat_base_chain: bool = False  # EGRESS-GATEWAY-SNAT exists in the host namespace
    frontend_addresses: frozenset[str] = frozenset()  # /32 labelled <interface>:egress
    reply_source_ports: frozenset[int] = frozenset()  # ports with an egressgw_reply_<port> table


def _wireguard_links(settings: NodeSettings, handles: NetnsHandles) -> dict[str, str]:
    links: dict[str, str] = {}
    for link in handles.get(settings.gateway_netns).link("dump"):
        name = str(link.get("IFLA_IFNAME"))
        if name.startswith(kube_names.GATEWAY_WIREGUARD_INTERFACE_PREFIX):
            links[name] = str(link.get("IFLA_IFALIAS") or "")
    return links


def read_inventory(
    settings: NodeSettings, handles: NetnsHandles, *, iptables: str = snat_rules.IPTABLES
) -> NodeInventory:
    host_table = snat_rules.NatRules("", iptables).read()
    host_side = NodeInventory(
        host_routes=host_routes(handles),
        host_ip_chains=snat_rules.host_snat_ips(host_table),
        snat_base_chain=snat_rules.SNAT_BASE_CHAIN in host_table.chains,
        frontend_addresses=frontend_addresses(settings, handles),
        reply_source_ports=reply_source.reply_source_ports(),
    )
    if not handles.exists(settings.gateway_netns):
        return host_side
    gateway_table = snat_rules.NatRules(settings.gateway_netns, iptables).read()
    return replace(
        host_side,
        gateway_netns_exists=True,
        wireguard_links=_wireguard_links(settings, handles),
        host0_addresses=host0_addresses(settings, handles),
        gateway_chain_ports=snat_rules.gateway_snat_ports(gateway_table),
    )
