"""Pure decisions about gateway nodes for GatewayConfigWorkflow: what each node's agent is asked
to hold, which gateways a change leaves behind, how node failures read in the status, and how long
a Degraded configuration waits before it tries again."""

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
    drift pass still tries them)."""
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
