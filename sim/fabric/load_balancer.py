"""The emulated Azure Standard internal load balancer with floating IP (the rules and probes
egressgw creates: docs/upstream-compatibility.md §2.3).

How it forwards: in the router namespace an nftables prerouting rule per load balancing rule
matches `frontend_ip:port`, hashes the flow's source address and port into one of BUCKETS buckets
and sets the packet mark of the node that bucket belongs to; `ip rule fwmark M lookup M` and
table M's `default via <node primary>` then deliver the packet to that node with its destination
unchanged (floating IP: the gateway holds the frontend IP on eth0).

Choices, where Azure leaves room:
- Buckets go to healthy backends by rendezvous hashing, so when a backend goes down only its own
  buckets move and flows on the other backends stay where they are.
- The hash is stateless (no conntrack): Azure tracks no state for UDP, and its UDP flows move to a
  healthy backend once their backend's probe fails. Existing flows to a backend that went down
  therefore move at the next poll, like new ones.
- When no backend of a rule is healthy (or none has been probed yet), every backend receives
  flows: the load balancer keeps sending rather than dropping everything.
- Only floating-IP rules are emulated (the product creates no others); other rules are ignored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sim.fabric.probes import ProbeSpec, ProbeTarget

BUCKETS = 64
NFT_TABLE = "fabric_lb"


@dataclass(frozen=True)
class LbRule:
    """One load balancing rule as the fabric needs it, read from the ARM load balancer."""

    name: str
    frontend_ip: str
    protocol: str  # "udp", "tcp" or "all" (lower case)
    port: int
    probe: ProbeSpec | None  # None: every backend counts as healthy
    backends: tuple[str, ...]  # primary IPs of the backend pool's members
    floating_ip: bool = True

    def probe_targets(self) -> tuple[ProbeTarget, ...]:
        if self.probe is None:
            return ()
        return tuple(ProbeTarget(ip, self.probe) for ip in self.backends)


def eligible_backends(rule: LbRule, health: Mapping[ProbeTarget, bool]) -> tuple[str, ...]:
    """The backends that may receive flows: the healthy ones, or all when none is healthy."""
    if rule.probe is None:
        return rule.backends
    healthy = tuple(ip for ip in rule.backends if health.get(ProbeTarget(ip, rule.probe), False))
    return healthy or rule.backends


def _score(bucket: int, backend: str) -> int:
    digest = hashlib.sha256(f"{bucket}|{backend}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def assign_buckets(backends: Sequence[str], buckets: int = BUCKETS) -> tuple[str, ...]:
    """Each hash bucket's backend (rendezvous hashing: a bucket keeps its backend as long as that
    backend stays eligible); empty when there are no backends."""
    if not backends:
        return ()
    return tuple(max(backends, key=lambda b: _score(bucket, b)) for bucket in range(buckets))


def _match(rule: LbRule) -> str:
    proto = "{ tcp, udp }" if rule.protocol == "all" else rule.protocol
    return f"ip daddr {rule.frontend_ip} meta l4proto {proto} th dport {rule.port}"


def render_ruleset(
    rules: Sequence[LbRule],
    marks: Mapping[str, int],
    health: Mapping[ProbeTarget, bool],
    buckets: int = BUCKETS,
) -> str:
    """The whole nftables table for `nft -f -`, replacing the previous one in one transaction.

    `marks` maps a node's primary IP to its fwmark; backends the fabric has no node for are left
    out (packets cannot be delivered to them)."""
    lines = [
        f"table ip {NFT_TABLE} {{}}",
        f"delete table ip {NFT_TABLE}",
        f"table ip {NFT_TABLE} {{",
        "  chain prerouting {",
        "    type filter hook prerouting priority mangle; policy accept;",
    ]
    for rule in sorted(rules, key=lambda r: (r.frontend_ip, r.protocol, r.port, r.name)):
        if not rule.floating_ip:
            continue
        known = tuple(ip for ip in eligible_backends(rule, health) if ip in marks)
        assignment = assign_buckets(sorted(known), buckets)
        if not assignment:
            continue
        table = ", ".join(f"{i} : {marks[ip]:#x}" for i, ip in enumerate(assignment))
        lines.append(
            f"    {_match(rule)} meta mark set jhash ip saddr . th sport mod {buckets} "
            f"seed 0x0 map {{ {table} }} comment {_quoted(rule.name)}"
        )
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def _quoted(text: str) -> str:
    return '"' + "".join(c for c in text if c.isalnum() or c in "-_./:")[:120] + '"'
