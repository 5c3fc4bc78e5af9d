"""Running one node activity on every gateway node at once, each on its node's task queue
(egressgw-node-<name>), and telling which nodes did their part and which did not, and why.

A node whose agent is missing (the schedule-to-start timeout), stops answering (the heartbeat
timeout) or fails is one NodeFailed among the outcomes; the others' results stand. Cancellation
is never swallowed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, TimeoutType
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

from contracts import resource_names
from contracts.node_io import NodeGateway
from contracts.workflow_io import NodeProblem
from workflows import activity_calls, pass_metrics
from workflows.activity_calls import ActivityOptions
from workflows.failures import failure_causes
from workflows.node_decisions import NO_AGENT, NOT_ANSWERING

Arg = TypeVar("Arg")
Result = TypeVar("Result")


@dataclass(frozen=True)
class NodeCall(Generic[Arg]):
    """One gateway's activity input, its deterministic activity ID and its summary."""

    arg: Arg
    activity_id: str
    summary: str


@dataclass(frozen=True)
class Restarts:
    """How often each node's agent said it started, so far (`count`), and whether a call that
    was waiting on a node when its agent started is made again to the new agent (`call_again`:
    the workflow's patch check)."""

    count: Callable[[str], int]
    call_again: Callable[[], bool]


@dataclass(frozen=True)
class NodeDone(Generic[Result]):
    gateway: NodeGateway
    result: Result


@dataclass(frozen=True)
class NodeFailed:
    gateway: NodeGateway
    reason: str  # in words, for the status

    @property
    def problem(self) -> NodeProblem:
        return NodeProblem(self.gateway.node_name, self.reason)


async def on_every_node(
    activity: Callable[[Arg], Awaitable[Result]],
    gateways: Sequence[NodeGateway],
    call: Callable[[NodeGateway], NodeCall[Arg]],
    options: ActivityOptions,
    restarts: Restarts | None = None,
) -> list[NodeDone[Result] | NodeFailed]:
    """Run `activity` for every gateway, on the gateway's node; one outcome per gateway, in
    order. With `restarts`, a node whose agent starts while its call waits is called again at
    once (_on_node)."""
    calls = [call(g) for g in gateways]
    results = await asyncio.gather(
        *(
            _on_node(activity, g, c, options, restarts)
            for g, c in zip(gateways, calls, strict=True)
        ),
        return_exceptions=True,
    )
    outcomes: list[NodeDone[Result] | NodeFailed] = []
    for gateway, result in zip(gateways, results, strict=True):
        if isinstance(result, asyncio.CancelledError):
            raise result
        if isinstance(result, BaseException):
            if _not_started(result):
                pass_metrics.node_not_started(gateway.node_name)
            outcomes.append(NodeFailed(gateway, _failure_reason(result)))
        else:
            outcomes.append(NodeDone(gateway, result))
    return outcomes


async def _on_node(
    activity: Callable[[Arg], Awaitable[Result]],
    gateway: NodeGateway,
    call: NodeCall[Arg],
    options: ActivityOptions,
    restarts: Restarts | None,
) -> Result:
    """One node's call. When the node's agent says it started while the call waits, the call
    went to the agent before it (killed, or about to be): it is given up (TRY_CANCEL resolves at
    once) and made again to the new agent, instead of waiting the answer timeout first."""
    node = gateway.node_name
    again = 0
    while True:
        pending = asyncio.ensure_future(
            activity_calls.execute(
                activity,
                call.arg,
                options,
                activity_id=call.activity_id + (f"/again{again}" if again else ""),
                summary=call.summary + (" (again: its agent restarted)" if again else ""),
                task_queue=resource_names.node_task_queue(node),
            )
        )
        if restarts is None:
            return await pending
        if not await _restarted_first(pending, restarts, node) or not restarts.call_again():
            return await pending
        pending.cancel()
        with contextlib.suppress(ActivityError, asyncio.CancelledError):
            await pending
        again += 1


async def _restarted_first(pending: asyncio.Future[Any], restarts: Restarts, node: str) -> bool:
    """Wait for `pending` or for `node`'s agent to say it started; True for the latter."""
    seen = restarts.count(node)
    try:
        await workflow.wait_condition(lambda: pending.done() or restarts.count(node) != seen)
    except asyncio.CancelledError:
        pending.cancel()
        raise
    return not pending.done()


def failures(outcomes: Sequence[NodeDone[Result] | NodeFailed]) -> list[NodeFailed]:
    return [o for o in outcomes if isinstance(o, NodeFailed)]


def problems(outcomes: Sequence[NodeDone[Result] | NodeFailed]) -> tuple[NodeProblem, ...]:
    return tuple(f.problem for f in failures(outcomes))


def results(outcomes: Sequence[NodeDone[Result] | NodeFailed]) -> list[Result]:
    return [o.result for o in outcomes if isinstance(o, NodeDone)]


def _not_started(error: BaseException) -> bool:
    """No agent picked the activity up: its schedule-to-start timeout fired."""
    cause = error.__cause__ if isinstance(error, ActivityError) else None
    return isinstance(cause, TemporalTimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START


def _went_silent(error: BaseException) -> bool:
    """The agent took the activity and then stopped heartbeating: its heartbeat timeout fired."""
    cause = error.__cause__ if isinstance(error, ActivityError) else None
    return isinstance(cause, TemporalTimeoutError) and cause.type == TimeoutType.HEARTBEAT


def _failure_reason(error: BaseException) -> str:
    """Why a node's agent did not do its part, in words for the status."""
    if _not_started(error):
        return NO_AGENT
    if _went_silent(error):
        return NOT_ANSWERING
    if isinstance(error, ActivityError):
        return failure_causes(error)[-1]
    return str(error)
