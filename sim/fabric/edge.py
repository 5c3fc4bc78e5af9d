"""Azure's edge for instance-level public IPs: a NIC ipConfiguration that has a public IP (a
standalone public IP resource, or on a VMSS instance the one its `publicIPAddressConfiguration`
made, e.g. from a public IP prefix) leaves the VNet for the internet with that public IP as its
source, 1:1. That is how a public-mode configuration's secondary IP becomes an address of its
`egressIpPrefix` on the way out; ipConfigurations without a public IP (private mode) leave as
they are.

Here: a nat chain on the router's link to the internet namespace maps each such private IP to its
public IP. It runs just before the cluster's outbound SNAT (sim/fabric/outbound.py), since on
Azure an instance-level public IP takes precedence over the load balancer's outbound rule. Replies
come back through the router's connection tracking. Nothing is translated inbound: Standard SKU
public IPs are closed to unsolicited inbound traffic unless a network security group opens them,
and the fabric has none.
"""

from __future__ import annotations

from collections.abc import Mapping

NFT_TABLE = "fabric_edge"


def render_edge_nat(internet_link: str, translations: Mapping[str, str]) -> str:
    """The whole nftables table for `nft -f -` (private IP -> public IP), replacing the previous
    one in one transaction; a table without rules when nothing is translated."""
    lines = [
        f"table ip {NFT_TABLE} {{}}",
        f"delete table ip {NFT_TABLE}",
        f"table ip {NFT_TABLE} {{",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat - 1; policy accept;",
    ]
    if translations:
        pairs = sorted(translations.items())
        elements = ", ".join(f"{private} : {public}" for private, public in pairs)
        lines.append(f'    oifname "{internet_link}" snat ip to ip saddr map {{ {elements} }}')
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def changed_sources(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Private IPs whose translation was added, changed or removed: their tracked flows must go,
    or their next packets would keep the old translation."""
    return sorted(ip for ip in before.keys() | after.keys() if before.get(ip) != after.get(ip))
