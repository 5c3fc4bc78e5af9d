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

# A gateway node's agent applying, syncing or removing a gateway; the schedule-to-start timeout
# (ControllerSettings.node_start_timeout_seconds) is set per call, so that a node without a
# running agent is reported instead of waited for, and the agent heartbeats while it works
# (agent/activity_heartbeat.py), so that one that dies in the middle is noticed in seconds, not
# after the start-to-close timeout (a peer pass waits for every node). Nothing in Azure is undone
# after a node step, so a cancelled workflow does not wait for a node's answer.
NODE: Final = ActivityOptions(
    start_to_close=timedelta(minutes=2),
    heartbeat=timedelta(seconds=10),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=3,
    ),
    cancellation=workflow.ActivityCancellationType.TRY_CANCEL,
)


def with_schedule_to_start(options: ActivityOptions, seconds: float) -> ActivityOptions:
    return replace(options, schedule_to_start=timedelta(seconds=seconds))


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
