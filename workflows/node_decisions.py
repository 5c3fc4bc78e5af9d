"""Pure decisions about gateway nodes for GatewayConfigWorkflow: what each node's agent is asked
to hold, which gateways a change leaves behind, how node failures read in the status, how long
a Degraded configuration waits before it tries again, and when the nodes that did not answer are
tried again on their own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from contracts.activity_io import GatewayKey, SgcRef
from contracts.azure_state import NodeAddress
from contracts.node_io import NodeGateway, SecretRef
from contracts.workflow_io import NodeProblem

# A Degraded configuration retries on the drift timer, waiting 1, 2, 4, then 8 drift intervals
# after consecutive failures: a refusal that needs a human (quota, a wrong prefix) is not
# re-provisioned and compensated every five minutes, yet is picked up within the hour once fixed.
MAX_BACKOFF_FACTOR: Final = 8

# Nodes whose agent did not answer are tried again on their own (no Azure work), first after this
# long or twice the answer timeout, whichever is longer, then after twice as long each time, up to
# the drift interval. A try holds the configuration's other work back for at most one answer
# timeout, so this keeps that to a third of the time at most, and less as the waits double.
NODE_RETRY_FIRST_SECONDS: Final = 15

# Why a node did not do its part when no agent picked up its activity (schedule-to-start timeout).
NO_AGENT: Final = "no agent picked up the work (is egressgw agent running on the node?)"
# Why, when its agent took the work and then stopped heartbeating (killed, or its node lost).
NOT_ANSWERING: Final = "its agent stopped answering in the middle of the work (was it killed?)"


def node_gateways(
    sgc: SgcRef, key: GatewayKey, frontend_ip: str, port: int, nodes: Sequence[NodeAddress]
) -> tuple[NodeGateway, ...]:
    """One gateway per pool node, sorted by node name."""
    secret = SecretRef(key.secret_namespace, key.secret_name)
    return tuple(
        NodeGateway(
            sgc_uid=sgc.uid,
            sgc_namespace=sgc.namespace,
            sgc_name=sgc.name,
            listen_port=port,
            frontend_ip=frontend_ip,
            primary_ip=node.primary_ip,
            secondary_ip=node.secondary_ip,
            private_key_secret=secret,
            public_key=key.public_key,
            node_name=node.node_name,
        )
        for node in sorted(nodes, key=lambda n: n.node_name)
    )


def stale_gateways(
    before: Sequence[NodeGateway], after: Sequence[NodeGateway]
) -> tuple[NodeGateway, ...]:
    """Gateways applied before that the new state no longer has as they were: a node that left
    the pool, a new rule port (another interface) or another secondary IP."""
    kept = {(g.node_name, g.listen_port, g.secondary_ip) for g in after}
    return tuple(g for g in before if (g.node_name, g.listen_port, g.secondary_ip) not in kept)


def gateway_for(gateways: Sequence[NodeGateway], node_name: str) -> NodeGateway | None:
    return next((g for g in gateways if g.node_name == node_name), None)


def merge_problems(
    previous: Iterable[NodeProblem],
    checked: Iterable[str],
    found: Iterable[NodeProblem],
    nodes: Iterable[str],
) -> tuple[NodeProblem, ...]:
    """Node problems after a pass that checked only some nodes: the checked nodes' new problems,
    the others' earlier ones, and none for nodes no longer in the pool."""
    checked_set, current = set(checked), set(nodes)
    kept = [p for p in previous if p.node_name not in checked_set and p.node_name in current]
    return sorted_problems([*kept, *found])


def sorted_problems(problems: Iterable[NodeProblem]) -> tuple[NodeProblem, ...]:
    return tuple(sorted(set(problems), key=lambda p: (p.node_name, p.reason)))


def problem_nodes(problems: Iterable[NodeProblem]) -> set[str]:
    return {p.node_name for p in problems}


def absent_agent_nodes(
    problems: Iterable[NodeProblem], restarted: Iterable[str], *, silent_too: bool = True
) -> set[str]:
    """Nodes whose agent was missing at the last try, or stopped answering (`silent_too`), and
    has not said since that it started.

    A peer pass leaves them out: each call to them would wait the whole answer timeout and hold
    back the peers of every other gateway. Their agent's start signal brings them back (and the
    node retry timer and the drift pass still try them)."""
    reasons = {NO_AGENT, NOT_ANSWERING} if silent_too else {NO_AGENT}
    return {p.node_name for p in problems if p.reason in reasons} - set(restarted)


def silent_nodes(problems: Iterable[NodeProblem]) -> set[str]:
    """Nodes whose agent stopped answering in the middle of a call."""
    return {p.node_name for p in problems if p.reason == NOT_ANSWERING}


def retry_backoff_factor(failed_passes: int) -> int:
    """How many drift intervals a Degraded configuration waits after `failed_passes`
    consecutive failures."""
    if failed_passes <= 1:
        return 1
    return min(MAX_BACKOFF_FACTOR, 1 << (failed_passes - 1))


def unanswering_nodes(problems: Iterable[NodeProblem]) -> set[str]:
    """Nodes named for not answering: no agent picked up their work, or it stopped answering."""
    return absent_agent_nodes(problems, ())


def node_retry_seconds(retries: int, answer_timeout_seconds: int, drift_seconds: int) -> int:
    """How long after the last try the unanswering nodes are tried again, after `retries`
    tries of them on their own: NODE_RETRY_FIRST_SECONDS (or twice the answer timeout), doubling
    up to the drift interval."""
    first = max(NODE_RETRY_FIRST_SECONDS, 2 * answer_timeout_seconds)
    return min(max(first, drift_seconds), first << min(max(retries, 0), 16))


def node_retries_after(before: Iterable[str], now: Iterable[str], retries: int) -> int:
    """The tries that count for the back-off, now that `now` are the unanswering nodes (were
    `before`): none once every node serves, or when a node is newly named (its first retry is
    not put off by another node's long silence)."""
    current = set(now)
    if not current or current - set(before):
        return 0
    return retries
