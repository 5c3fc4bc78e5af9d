"""How workflows call activities: one typed call, with timeouts and retries from one options
object per kind of activity.

Retries come from these policies, never from loops in activities. Each policy is bounded, so a
dependency that never recovers surfaces as a failure the workflow reports and compensates.
Calls wait for a cancelled activity to finish (WAIT_CANCELLATION_COMPLETED): a step and its undo
must never overlap, which TRY_CANCEL would allow while the cancelled step still writes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Final, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

Arg = TypeVar("Arg")
Result = TypeVar("Result")


@dataclass(frozen=True)
class ActivityOptions:
    start_to_close: timedelta
    retry: RetryPolicy
    heartbeat: timedelta | None = None
    schedule_to_start: timedelta | None = None  # set for node activities: a missing agent
    cancellation: workflow.ActivityCancellationType = (
        workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
    )


# ARM calls: long-running operations heartbeat about once a second while they poll, so a lost
# worker is noticed within the heartbeat timeout and the retry resumes the poll elsewhere;
# 429/5xx/409/412 retry (with Retry-After as next_retry_delay).
AZURE: Final = ActivityOptions(
    start_to_close=timedelta(minutes=10),
    heartbeat=timedelta(seconds=15),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=10,
    ),
)

# Kubernetes API calls are short; 409 conflicts on status writes retry after a re-read.
KUBE: Final = ActivityOptions(
    start_to_close=timedelta(seconds=30),
    retry=RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=8,
    ),
)

# Waiting for a single-writer workflow's answer: the activity signals its request and completes
# asynchronously when the single writer answers (activities/temporal/single_writers.py), so it
# has no heartbeat (nothing runs while it waits) and a start-to-close long enough for the single
# writer's own Azure retries. Its attempts cover a failed signal-with-start (Temporal frontend
# unavailable) and an answer lost on the way (the attempt times out and submits again).
SINGLE_WRITER: Final = ActivityOptions(
    start_to_close=timedelta(minutes=30),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=10,
    ),
)

# A gateway node's agent applying, syncing or removing a gateway. A node that does not answer is
# reported, not waited for (ControllerSettings.node_answer_timeout_seconds, see node_options):
# no agent picks the call up within the schedule-to-start timeout, or the agent stops heartbeating
# in the middle of it (agent/activity_heartbeat.py; killed, or its node lost). Neither is retried
# here: a retry would wait for the same silent node once more while the configuration's status
# waits for the pass; the workflow retries the node instead (its agent's start signal, the drift
# pass). Errors the agent raises itself (a key Secret not there yet) are retried. Nothing in Azure
# is undone after a node step, so a cancelled workflow does not wait for a node's answer.
NODE: Final = ActivityOptions(
    start_to_close=timedelta(minutes=2),
    heartbeat=timedelta(seconds=10),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=3,
        # How the server names a heartbeat timeout for a retry policy (schedule-to-start
        # timeouts are never retried).
        non_retryable_error_types=["TemporalTimeout:Heartbeat"],
    ),
    cancellation=workflow.ActivityCancellationType.TRY_CANCEL,
)

# The shortest heartbeat timeout a node call gets, whatever the answer timeout: the agent's first
# beat comes 2 s into a call and the SDK sends beats at most every 80% of the timeout.
MIN_NODE_HEARTBEAT: Final = timedelta(seconds=5)


def node_options(answer_seconds: float) -> ActivityOptions:
    """NODE with a node's answer timeout as both its schedule-to-start and heartbeat timeout."""
    answer = timedelta(seconds=answer_seconds)
    return replace(NODE, schedule_to_start=answer, heartbeat=max(answer, MIN_NODE_HEARTBEAT))


async def execute(
    activity: Callable[[Arg], Awaitable[Result]],
    arg: Arg,
    options: ActivityOptions,
    *,
    activity_id: str,
    summary: str,
    task_queue: str | None = None,
) -> Result:
    """Run `activity` (a stub of workflows/activity_stubs.py) with `arg`.

    `activity_id` must be deterministic and name what the call is for (e.g.
    `rule/ensure/<uid>/g3/p7`): without it, two calls of the same activity swapped in a new
    version would replay "successfully" with each other's results.
    """
    return await workflow.execute_activity(
        activity,
        arg,
        task_queue=task_queue,
        activity_id=activity_id,
        summary=summary,
        start_to_close_timeout=options.start_to_close,
        schedule_to_start_timeout=options.schedule_to_start,
        heartbeat_timeout=options.heartbeat,
        retry_policy=options.retry,
        cancellation_type=options.cancellation,
    )


async def execute_local(
    activity: Callable[[Arg], Awaitable[Result]],
    arg: Arg,
    options: ActivityOptions,
    *,
    activity_id: str,
    summary: str,
) -> Result:
    """Run `activity` as a local activity: in the worker that runs the workflow task, with no
    task of its own on a queue and no workflow task to hand its result back (the workflow goes on
    in the same task). For short calls on a hot path, e.g. reading the controller's watch cache;
    the history holds its result as a marker. Its failure reaches the workflow as the activity's
    own error (an ApplicationError), not wrapped in an ActivityError."""
    return await workflow.execute_local_activity(
        activity,
        arg,
        activity_id=activity_id,
        summary=summary,
        start_to_close_timeout=options.start_to_close,
        retry_policy=options.retry,
        cancellation_type=options.cancellation,
    )
