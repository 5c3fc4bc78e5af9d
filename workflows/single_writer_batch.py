"""Batching decisions for the single-writer workflows (LoadBalancerWorkflow, GatewayPoolWorkflow).

Both hold registrations (owner uid -> what that owner wants on the shared resource) and queue the
changes their callers submit. The run loop (workflows/single_writer.py) takes everything queued
after a short debounce and decides here whether Azure must be touched at all; one activity then
applies the whole desired state for every owner, and each request gets its answer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from contracts.activity_io import (
    ApplyLoadBalancerResult,
    LoadBalancerRule,
    MemberAddresses,
    PoolIpConfig,
    ResourceChange,
)
from contracts.azure_state import NodeAddress
from contracts.workflow_io import IpConfigResult, RequestFailed, RequestReply, RuleResult

Wanted = TypeVar("Wanted")
# What a request is answered with: a result, or None for a removal.
Answer = RuleResult | IpConfigResult | None


@dataclass(frozen=True)
class Change(Generic[Wanted]):
    """One queued request: register (wanted set) or unregister (wanted None) an owner."""

    owner_uid: str
    wanted: Wanted | None
    verify: bool
    reply: str  # the caller's activity task token, which the answer completes


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
    owner_uid: str, results: Mapping[str, RuleResult], *, fresh: bool, failure_type: str
) -> RuleResult | RequestFailed:
    """The answer to one rule request: its result, or a failure when the apply lost it.

    A cached answer (fresh=False) reports no repairs: nothing was applied for it.
    """
    result = results.get(owner_uid)
    if result is None:
        return RequestFailed(
            f"the load balancer has no rule for {owner_uid} after the apply", failure_type
        )
    return result if fresh else RuleResult(result.frontend_ip, result.port)


def rules_input(registrations: Mapping[str, LoadBalancerRule]) -> tuple[LoadBalancerRule, ...]:
    return sorted_values(registrations)


# --- Gateway pool -------------------------------------------------------------------------------


def ip_configs_input(registrations: Mapping[str, PoolIpConfig]) -> tuple[PoolIpConfig, ...]:
    return sorted_values(registrations)


def pool_answer(
    owner_uid: str, members: Sequence[MemberAddresses], changes: Sequence[ResourceChange]
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
    model_changes: Sequence[ResourceChange], members: Sequence[MemberAddresses]
) -> tuple[ResourceChange, ...]:
    return (*model_changes, *(change for m in members for change in m.changes))


# --- Replies to signalled requests ---------------------------------------------------------------


def request_replies(
    answers: Sequence[tuple[str, Answer | RequestFailed]],
) -> tuple[RequestReply, ...]:
    """What completes each caller's activity: its result, or its failure."""
    replies: list[RequestReply] = []
    for token, answer in answers:
        if isinstance(answer, RequestFailed):
            replies.append(RequestReply(token, failure=answer))
        elif isinstance(answer, RuleResult):
            replies.append(RequestReply(token, rule=answer))
        elif isinstance(answer, IpConfigResult):
            replies.append(RequestReply(token, ip_config=answer))
        else:
            replies.append(RequestReply(token))
    return tuple(replies)
