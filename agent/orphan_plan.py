"""Which leftovers on a gateway node no desired configuration accounts for (upstream cleanUp()).

Pure: observed NodeInventory + desired gateways in, removals out. Only things that are ours by
name are ever planned (wg-* links, our chain names, /32s on host0 and routes on host-gateway,
addresses labelled :egress); everything else on the node is invisible here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agent.node_inventory import NodeInventory
from agent.node_settings import interface_name
from contracts import kube_names


@dataclass(frozen=True)
class DesiredGateway:
    sgc_uid: str
    listen_port: int
    secondary_ip: str
    frontend_ip: str


@dataclass(frozen=True)
class OrphanPlan:
    links: tuple[str, ...] = ()  # wg-<port> interfaces to delete
    gateway_chain_ports: tuple[int, ...] = ()  # EGRESS-GATEWAY-MARK/SNAT-<port> to delete
    secondary_ips: tuple[str, ...] = ()  # off host0, and the host route to them
    host_ip_chains: tuple[str, ...] = ()  # EGRESS-<a-b-c-d> chains, by IP
    frontend_ips: tuple[str, ...] = ()  # :egress addresses on the host interface
    snat_base_chain: bool = False  # EGRESS-GATEWAY-SNAT and its POSTROUTING jump
    reply_source_ports: tuple[int, ...] = ()  # egressgw_reply_<port> nft tables

    @property
    def empty(self) -> bool:
        return self == OrphanPlan()


def plan_orphans(inventory: NodeInventory, desired: Iterable[DesiredGateway]) -> OrphanPlan:
    gateways = list(desired)
    ports = {gateway.listen_port for gateway in gateways}
    links = {interface_name(port) for port in ports}
    secondaries = {gateway.secondary_ip for gateway in gateways}
    frontends = {gateway.frontend_ip for gateway in gateways}
    return OrphanPlan(
        links=tuple(
            sorted(
                name
                for name in inventory.wireguard_links
                if name.startswith(kube_names.GATEWAY_WIREGUARD_INTERFACE_PREFIX)
                and name not in links
            )
        ),
        gateway_chain_ports=tuple(sorted(inventory.gateway_chain_ports - ports)),
        secondary_ips=tuple(
            sorted((inventory.host0_addresses | inventory.host_routes) - secondaries)
        ),
        host_ip_chains=tuple(sorted(inventory.host_ip_chains - secondaries)),
        frontend_ips=tuple(sorted(inventory.frontend_addresses - frontends)),
        snat_base_chain=not gateways and inventory.snat_base_chain,
        reply_source_ports=tuple(sorted(inventory.reply_source_ports - ports)),
    )
