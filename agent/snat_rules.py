"""SNAT rules in the nat table, with upstream's chain names (docs/node-agent.md).

Host namespace: POSTROUTING jumps first to EGRESS-GATEWAY-SNAT, which jumps to one chain per
secondary IP, EGRESS-<a-b-c-d>, accepting packets from that IP, so the node's own MASQUERADE
rules (kube-proxy, CNI) never rewrite a gateway's source. Gateway namespace: per listen port,
EGRESS-GATEWAY-MARK-<port> marks connections entering from wg-<port> and
EGRESS-GATEWAY-SNAT-<port> rewrites their source to the secondary IP on the way out of host0.
Chain names and comments are upstream's, byte for byte: users know them from troubleshooting.

State is read with `iptables-save -t nat` and changed with one `iptables-restore --noflush` per
namespace per change. Deciding what to write is pure (`plan_ensure`, `plan_remove`); only rules
in our chains and jumps into our chains are ever written or deleted.
"""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from contracts import kube_names

IPTABLES = "iptables"  # the family's tools are <IPTABLES>-save / <IPTABLES>-restore

SNAT_BASE_CHAIN = "EGRESS-GATEWAY-SNAT"
NO_MASQUERADE_COMMENT = "kube-egress-gateway no MASQUERADE"

_HOST_IP_CHAIN = re.compile(r"EGRESS-(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})")
_MARK_CHAIN = re.compile(r"EGRESS-GATEWAY-MARK-(\d+)")
_SNAT_CHAIN = re.compile(r"EGRESS-GATEWAY-SNAT-(\d+)")

Rule = tuple[str, ...]  # one rule's arguments after "-A <chain>", as the shell would split them


class IptablesError(RuntimeError):
    pass


# --- Names -----------------------------------------------------------------------------------


def host_ip_chain(secondary_ip: str) -> str:
    return "EGRESS-" + secondary_ip.replace(".", "-")


def mark_chain(port: int) -> str:
    return f"EGRESS-GATEWAY-MARK-{port}"


def snat_chain(port: int) -> str:
    return f"EGRESS-GATEWAY-SNAT-{port}"


def ip_of_host_chain(chain: str) -> str | None:
    match = _HOST_IP_CHAIN.fullmatch(chain)
    if match is None or any(int(part) > 255 for part in match.groups()):
        return None
    return ".".join(match.groups())


def port_of_gateway_chain(chain: str) -> int | None:
    match = _MARK_CHAIN.fullmatch(chain) or _SNAT_CHAIN.fullmatch(chain)
    return int(match.group(1)) if match else None


# --- Parsing iptables-save -----------------------------------------------------------------


@dataclass(frozen=True)
class NatTable:
    """The nat table as iptables-save shows it: every chain and its rules, in order."""

    chains: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)

    def rules(self, chain: str) -> tuple[Rule, ...]:
        return self.chains.get(chain, ())


def parse_nat_save(text: str) -> NatTable:
    chains: dict[str, list[Rule]] = {}
    in_nat = False
    for line in text.splitlines():
        if line.startswith("*"):
            in_nat = line == "*nat"
        elif not in_nat or line.startswith("#"):
            continue
        elif line.startswith(":"):
            chains.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A "):
            _, chain, *rule = shlex.split(line)
            chains.setdefault(chain, []).append(tuple(rule))
    return NatTable({name: tuple(rules) for name, rules in chains.items()})


def jump_target(rule: Rule) -> str | None:
    for flag, value in itertools.pairwise(rule):
        if flag in ("-j", "--jump", "-g", "--goto"):
            return value
    return None


# --- What our chains hold --------------------------------------------------------------------


@dataclass(frozen=True)
class ChainSpec:
    """One chain of ours and the single jump into it.

    `rules` None: the chain's contents are managed elsewhere (EGRESS-GATEWAY-SNAT holds the
    per-IP jumps), so only its existence and its jump are ensured.
    """

    name: str
    rules: tuple[Rule, ...] | None
    parent: str
    jump: Rule


def _comment_jump(comment: str, chain: str) -> Rule:
    return ("-m", "comment", "--comment", comment, "-j", chain)


def host_base_spec() -> ChainSpec:
    return ChainSpec(
        SNAT_BASE_CHAIN, None, "POSTROUTING", _comment_jump(NO_MASQUERADE_COMMENT, SNAT_BASE_CHAIN)
    )


def host_ip_spec(secondary_ip: str) -> ChainSpec:
    chain = host_ip_chain(secondary_ip)
    return ChainSpec(
        chain,
        (("-s", f"{secondary_ip}/32", "-j", "ACCEPT"),),
        SNAT_BASE_CHAIN,
        _comment_jump(f"kube-egress-gateway no sNAT packet from ip {secondary_ip}", chain),
    )


def gateway_specs(port: int, secondary_ip: str) -> tuple[ChainSpec, ChainSpec]:
    # Written as iptables-save prints them (hex marks, --set-xmark), so a re-read compares equal;
    # `--set-mark <port>` is the same rule.
    link = f"{kube_names.GATEWAY_WIREGUARD_INTERFACE_PREFIX}{port}"
    mark = hex(port)
    return (
        ChainSpec(
            mark_chain(port),
            (("-i", link, "-j", "CONNMARK", "--set-xmark", f"{mark}/0xffffffff"),),
            "PREROUTING",
            _comment_jump(
                f"kube-egress-gateway mark packets from gateway link {link}", mark_chain(port)
            ),
        ),
        ChainSpec(
            snat_chain(port),
            (
                (
                    "-o",
                    kube_names.NETNS_VETH,
                    "-m",
                    "connmark",
                    "--mark",
                    mark,
                    "-j",
                    "SNAT",
                    "--to-source",
                    secondary_ip,
                ),
            ),
            "POSTROUTING",
            _comment_jump(
                f"kube-egress-gateway sNAT packets from gateway link {link}", snat_chain(port)
            ),
        ),
    )


# --- Planning restore text (pure) ------------------------------------------------------------


def _render(rule: Rule) -> str:
    return " ".join(f'"{arg}"' if not arg or any(c.isspace() for c in arg) else arg for arg in rule)


def _restore_text(lines: Sequence[str]) -> str:
    return "".join(f"{line}\n" for line in ("*nat", *lines, "COMMIT")) if lines else ""


@dataclass(frozen=True)
class RestorePlan:
    text: str  # input for iptables-restore --noflush; "" when nothing needs to change
    changes: tuple[str, ...]


def plan_ensure(table: NatTable, specs: Sequence[ChainSpec]) -> RestorePlan:
    """Create or repair the chains (exact contents) and their jumps (exactly one each, inserted
    at the top of the parent, as upstream prepends them)."""
    declares: list[str] = []
    appends: list[str] = []
    jumps: list[str] = []
    changes: list[str] = []
    created: set[str] = set()
    for spec in specs:
        if spec.name not in table.chains:
            declares.append(f":{spec.name} - [0:0]")
            created.add(spec.name)
            changes.append(f"created chain {spec.name}")
        elif spec.rules is not None and table.rules(spec.name) != spec.rules:
            declares.append(f":{spec.name} - [0:0]")  # with --noflush this flushes the chain
            changes.append(f"rewrote chain {spec.name}")
        else:
            continue
        appends += [f"-A {spec.name} {_render(rule)}" for rule in spec.rules or ()]
    for spec in specs:
        present = 0 if spec.parent in created else table.rules(spec.parent).count(spec.jump)
        if present == 0:
            jumps.append(f"-I {spec.parent} 1 {_render(spec.jump)}")
            changes.append(f"added jump {spec.parent} -> {spec.name}")
        for _ in range(present - 1):
            jumps.append(f"-D {spec.parent} {_render(spec.jump)}")
            changes.append(f"removed duplicate jump {spec.parent} -> {spec.name}")
    return RestorePlan(_restore_text(declares + appends + jumps), tuple(changes))


def plan_remove(table: NatTable, chains: Iterable[str]) -> RestorePlan:
    """Delete chains of ours that exist, with every rule elsewhere that jumps into them (the
    kernel refuses to delete a chain still referenced)."""
    doomed = [name for name in dict.fromkeys(chains) if name in table.chains]
    deletes = [
        f"-D {parent} {_render(rule)}"
        for parent, rules in table.chains.items()
        if parent not in doomed
        for rule in rules
        if jump_target(rule) in doomed
    ]
    flushes = [f":{name} - [0:0]" for name in doomed]
    removals = [f"-X {name}" for name in doomed]
    return RestorePlan(
        _restore_text(deletes + flushes + removals),
        tuple(f"removed chain {name}" for name in doomed),
    )


# --- I/O -------------------------------------------------------------------------------------


class NatRules:
    """iptables-save / iptables-restore for one namespace ("" = the calling thread's own)."""

    def __init__(self, netns: str = "", iptables: str = IPTABLES) -> None:
        self.netns = netns
        self._iptables = iptables

    def _command(self, tool: str, *args: str) -> list[str]:
        enter = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [*enter, f"{self._iptables}-{tool}", *args]

    def _run(self, command: list[str], stdin: str = "") -> str:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            where = self.netns or "host namespace"
            raise IptablesError(
                f"{' '.join(command)} failed in {where} ({done.returncode}): "
                f"{done.stderr.strip()}\n--- input ---\n{stdin}"
            )
        return done.stdout

    def read(self) -> NatTable:
        return parse_nat_save(self._run(self._command("save", "-t", "nat")))

    def apply(self, plan: RestorePlan) -> list[str]:
        if plan.text:
            self._run(self._command("restore", "--noflush"), plan.text)
        return list(plan.changes)


# --- Operations --------------------------------------------------------------------------------


def ensure_host_snat(secondary_ip: str, rules: NatRules) -> list[str]:
    return rules.apply(plan_ensure(rules.read(), [host_base_spec(), host_ip_spec(secondary_ip)]))


def remove_host_snat(secondary_ip: str, rules: NatRules) -> list[str]:
    return rules.apply(plan_remove(rules.read(), [host_ip_chain(secondary_ip)]))


def host_snat_ips(table: NatTable) -> frozenset[str]:
    return frozenset(ip for ip in map(ip_of_host_chain, table.chains) if ip is not None)


def ensure_gateway_snat(port: int, secondary_ip: str, rules: NatRules) -> list[str]:
    return rules.apply(plan_ensure(rules.read(), gateway_specs(port, secondary_ip)))


def remove_gateway_snat(port: int, rules: NatRules) -> list[str]:
    return rules.apply(plan_remove(rules.read(), [mark_chain(port), snat_chain(port)]))


def gateway_snat_ports(table: NatTable) -> frozenset[int]:
    return frozenset(port for port in map(port_of_gateway_chain, table.chains) if port is not None)


def snat_source(table: NatTable, port: int) -> str | None:
    """The secondary IP a port's SNAT chain rewrites to, e.g. to remove a configuration whose
    secondary IP the caller no longer knows."""
    for rule in table.rules(snat_chain(port)):
        if "--to-source" in rule[:-1]:
            return rule[rule.index("--to-source") + 1]
    return None
