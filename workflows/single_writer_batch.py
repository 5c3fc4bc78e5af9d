"""Batching for the single-writer workflows (LoadBalancerWorkflow, GatewayPoolWorkflow).

Both hold registrations (owner uid -> what that owner wants on the shared resource) and queue the
changes their updates ask for. The run loop takes everything queued after a short window and
decides here whether Azure must be touched at all; one activity then applies the whole desired
state for every owner, and each queued update gets its answer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Generic, TypeVar

from contracts.activity_io import (
    ApplyLoadBalancerResult,
    LoadBalancerRule,
    MemberAddresses,
    PoolIpConfig,
)
from contracts.azure_state import NodeAddress
from contracts.workflow_io import IpConfigResult, RequestReply, RuleResult

# The batching debounce is part of each single writer's input (batch_quiet_seconds and
# batch_window_seconds, contracts.workflow_io).
# An idle single writer continues as new this often, so its history stays short and it picks up
# new workflow code (Worker Versioning upgrades on continue-as-new).
IDLE_CONTINUE_AS_NEW: Final = timedelta(hours=12)

Wanted = TypeVar("Wanted")


@dataclass(frozen=True)
class Change(Generic[Wanted]):
    """One queued update: register (wanted set) or unregister (wanted None) an owner."""

    ticket: int
    owner_uid: str
    wanted: Wanted | None
    verify: bool = False
    reply: str = ""  # reply token of a signalled request ("" for an update)


@dataclass(frozen=True)
class BatchPlan(Generic[Wanted]):
    registrations: Mapping[str, Wanted]  # after the batch, all owners
    apply: bool  # False: nothing in Azure can differ, answer from what the last apply returned


def plan_batch(
    current: Mapping[str, Wanted],
    batch: Sequence[Change[Wanted]],
    answered: Collection[str],
    *,
    resync: bool = False,
) -> BatchPlan[Wanted]:
    """Fold a batch into the registrations and decide whether to call Azure.

    `answered` are the owners the last successful apply returned a result for (empty after
    continue-as-new). Removals always apply: Azure may hold what an earlier, lost registration
    put there, and the planner drops everything of ours that nobody wants.
    """
    registrations = dict(current)
    for change in batch:
        if change.wanted is None:
            registrations.pop(change.owner_uid, None)
        else:
            registrations[change.owner_uid] = change.wanted
    apply = (
        resync
        or registrations != dict(current)
        or any(c.verify or c.wanted is None or c.owner_uid not in answered for c in batch)
    )
    return BatchPlan(registrations=registrations, apply=apply)


def sorted_values(registrations: Mapping[str, Wanted]) -> tuple[Wanted, ...]:
    """A stable order, so that the same registrations give the same activity input."""
    return tuple(registrations[owner] for owner in sorted(registrations))


# --- Load balancer ------------------------------------------------------------------------------


def rule_results(applied: ApplyLoadBalancerResult) -> dict[str, RuleResult]:
    """Each owner's frontend IP and port, with the changes this apply made."""
    return {
        rule.owner_uid: RuleResult(
            frontend_ip=rule.frontend_ip, port=rule.port, repaired=applied.changes
        )
        for rule in applied.rules
    }


def rule_answer(
    owner_uid: str, results: Mapping[str, RuleResult], *, fresh: bool
) -> RuleResult | str:
    """The answer to one ensure_rule: its result, or the error text when the apply lost it.

    A cached answer (fresh=False) reports no repairs: nothing was applied for it.
    """
    result = results.get(owner_uid)
    if result is None:
        return f"the load balancer has no rule for {owner_uid} after the apply"
    return result if fresh else RuleResult(result.frontend_ip, result.port)


def rules_input(registrations: Mapping[str, LoadBalancerRule]) -> tuple[LoadBalancerRule, ...]:
    return sorted_values(registrations)


# --- Gateway pool -------------------------------------------------------------------------------


def ip_configs_input(registrations: Mapping[str, PoolIpConfig]) -> tuple[PoolIpConfig, ...]:
    return sorted_values(registrations)


def pool_answer(
    owner_uid: str, members: Sequence[MemberAddresses], changes: Sequence[str]
) -> IpConfigResult:
    """One owner's per-node addresses, ordered by node name, with the pass's changes."""
    nodes = [address for m in members if (address := m.address_for(owner_uid)) is not None]
    return IpConfigResult(
        nodes=tuple(sorted(nodes, key=_node_key)),
        repaired=tuple(changes),
    )


def _node_key(node: NodeAddress) -> str:
    return node.node_name


def pass_changes(
    model_changes: Sequence[str], members: Sequence[MemberAddresses]
) -> tuple[str, ...]:
    return (*model_changes, *(change for m in members for change in m.changes))


# --- Replies to signalled requests ---------------------------------------------------------------


def request_replies(
    answers: Sequence[tuple[str, RuleResult | IpConfigResult | str | None]], failure_type: str
) -> tuple[RequestReply, ...]:
    """What completes each caller's activity: its result, or its failure (a str answer)."""
    replies: list[RequestReply] = []
    for token, answer in answers:
        if isinstance(answer, str):
            replies.append(RequestReply(token, error=answer, error_type=failure_type))
        elif isinstance(answer, RuleResult):
            replies.append(RequestReply(token, rule=answer))
        elif isinstance(answer, IpConfigResult):
            replies.append(RequestReply(token, ip_config=answer))
        else:
            replies.append(RequestReply(token))
    return tuple(replies)
