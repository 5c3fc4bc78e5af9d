"""Pure decisions about gateway nodes for GatewayConfigWorkflow: what each node's agent is asked
to hold, which gateways a change leaves behind, how node failures read in the status, and how long
a Degraded configuration waits before it tries again."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from contracts.activity_io import GatewayKey, SgcRef
from contracts.azure_state import NodeAddress
from contracts.node_io import NodeGateway, SecretRef

# A Degraded configuration retries on the drift timer, waiting 1, 2, 4, then 8 drift intervals
# after consecutive failures: a refusal that needs a human (quota, a wrong prefix) is not
# re-provisioned and compensated every five minutes, yet is picked up within the hour once fixed.
MAX_BACKOFF_FACTOR: Final = 8


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


def node_problem(node: str, reason: str) -> str:
    return f"{node}: {reason}"


def merge_problems(
    previous: Iterable[str], checked: Iterable[str], found: Iterable[str], nodes: Iterable[str]
) -> tuple[str, ...]:
    """Node problems after a pass that checked only some nodes: the checked nodes' new problems,
    the others' earlier ones, and none for nodes no longer in the pool."""
    checked_set, current = set(checked), set(nodes)
    kept = [
        p for p in previous if (name := p.split(":", 1)[0]) not in checked_set and name in current
    ]
    return tuple(sorted({*kept, *found}))


def retry_backoff_factor(failed_passes: int) -> int:
    """How many drift intervals a Degraded configuration waits after `failed_passes`
    consecutive failures."""
    if failed_passes <= 1:
        return 1
    return min(MAX_BACKOFF_FACTOR, 1 << (failed_passes - 1))
