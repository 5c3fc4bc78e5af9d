"""Replies of a gateway's WireGuard socket leave from the load balancer frontend IP.

The pod's WireGuard peer is the frontend IP (floating IP: packets arrive addressed to it). A reply
from any other address makes the pod's WireGuard roam to that address, the node's own, and from
then on bypass the load balancer: when that node fails, the pod's traffic does not move. Kernel
WireGuard answers from the address a packet arrived on; wireguard-go may not (it forgets the
address when the node's routes change). So, per configuration, a stateless nftables rule in the
host namespace rewrites the source of UDP packets from the rule port that leave the host
interface with another address: `udp sport <port> ip saddr != <frontend> ip saddr set
<frontend>` in table `egressgw_reply_<port>`. Stateless, because a conntrack SNAT would clash
with the incoming flow's entry and pick another source port.

The same table counts the pods' new flows to the frontend port: a rule that uses conntrack is
what makes the kernel track flows in the namespace at all, and the hand-over
(agent/session_handover.py) reads those flows. A node with kube-proxy tracks them anyway.

Runs on the calling thread's namespace as the host namespace, like agent/gateway_plumbing.py.
"""

from __future__ import annotations

import re
import subprocess
from typing import Final

NFT: Final = "nft"
TABLE_PREFIX: Final = "egressgw_reply_"
_TABLE_LINE = re.compile(rf"^table ip {TABLE_PREFIX}(\d+)$", re.MULTILINE)


class ReplySourceError(RuntimeError):
    """nft refused or failed."""


def table_name(port: int) -> str:
    return f"{TABLE_PREFIX}{port}"


def marker(port: int, frontend_ip: str, interface: str) -> str:
    """The rule's comment: what the rule does, so a re-read can tell it is current."""
    return f"wg-{port} replies leave {interface} from {frontend_ip}"


def ruleset(port: int, frontend_ip: str, interface: str) -> str:
    """An nft script that makes the port's table exactly one rule, atomically."""
    table = table_name(port)
    return (
        f"add table ip {table}\n"
        f"flush table ip {table}\n"
        f"table ip {table} {{\n"
        "  chain prerouting {\n"
        "    type filter hook prerouting priority raw + 1; policy accept;\n"
        f"    ip daddr {frontend_ip} udp dport {port} ct state new counter "
        'comment "pods\' flows, for the hand-over"\n'
        "  }\n"
        "  chain postrouting {\n"
        "    type filter hook postrouting priority srcnat; policy accept;\n"
        f'    oifname "{interface}" udp sport {port} ip saddr != {frontend_ip} '
        f'ip saddr set {frontend_ip} comment "{marker(port, frontend_ip, interface)}"\n'
        "  }\n"
        "}\n"
    )


def parse_ports(listing: str) -> frozenset[int]:
    """Ports that have a table, from `nft list tables`."""
    return frozenset(int(port) for port in _TABLE_LINE.findall(listing))


def _nft(script: str | None, *args: str, missing_ok: bool = False) -> str | None:
    """Run nft; None when `missing_ok` and nft says the table does not exist."""
    command = [NFT, "-f", "-"] if script is not None else [NFT, *args]
    done = subprocess.run(
        command, input=script, capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        if missing_ok and "No such file or directory" in done.stderr:
            return None
        raise ReplySourceError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return done.stdout


def reply_source_ports() -> frozenset[int]:
    return parse_ports(_nft(None, "list", "tables") or "")


def ensure_reply_source(port: int, frontend_ip: str, interface: str) -> list[str]:
    # One read: the table's rule carries what it does in its comment.
    current = _nft(None, "list", "table", "ip", table_name(port), missing_ok=True)
    if current is not None and f'comment "{marker(port, frontend_ip, interface)}"' in current:
        return []
    _nft(ruleset(port, frontend_ip, interface))
    return [f"set reply source of port {port} to {frontend_ip} ({table_name(port)})"]


def remove_reply_source(port: int) -> list[str]:
    if port not in reply_source_ports():
        return []
    _nft(f"delete table ip {table_name(port)}\n")
    return [f"removed {table_name(port)}"]
