"""Azure's default outbound access for the cluster: what leaves the VNet for the internet from a
regular node or a pod is SNATed to the cluster's outbound public IP (on AKS, the frontend of the
`kubernetes` load balancer's outbound rule; here, the router's link to the internet namespace).

Gateway nodes' own and secondary IPs are left alone here: their egress is what egressgw provides,
and a secondary IP leaves with its own address (private mode) or with the public IP of its
ipConfiguration (public mode, sim/fabric/edge.py). Replies come back through the router's
connection tracking, which undoes the translation.
"""

from __future__ import annotations

from collections.abc import Sequence

NFT_TABLE = "fabric_outbound"


def render_outbound_nat(internet_link: str, sources: Sequence[str], outbound_ip: str | None) -> str:
    """The whole nftables table for `nft -f -`, replacing the previous one in one transaction;
    an empty table when there is no outbound IP or nothing to translate."""
    lines = [
        f"table ip {NFT_TABLE} {{}}",
        f"delete table ip {NFT_TABLE}",
        f"table ip {NFT_TABLE} {{",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
    ]
    if outbound_ip is not None and sources:
        elements = ", ".join(sources)
        lines.append(
            f'    oifname "{internet_link}" ip saddr {{ {elements} }} snat ip to {outbound_ip}'
        )
    lines += ["  }", "}", ""]
    return "\n".join(lines)
