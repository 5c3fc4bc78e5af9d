"""How a single-writer workflow collects a batch and answers signalled requests: one local
activity completes every waiting caller's activity of the batch
(activities/temporal/single_writers.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from contracts.activity_io import COMPLETE_SINGLE_WRITER_REQUESTS
    from contracts.workflow_io import CompleteRequestsInput
    from workflows.failures import failure_causes
    from workflows.single_writer_batch import request_replies
    from workflows.update_queue import UpdateQueue

BATCH_DEBOUNCE_PATCH: Final = "batch-debounce"


async def send_replies(queue: UpdateQueue[Any, Any]) -> None:
    """Complete the activities of the callers the last batch answered. A caller whose completion
    is lost times out and submits again (its request is idempotent), so a failure here is
    logged, not raised."""
    replies = request_replies(queue.replies(), queue.failure_type)
    if not replies:
        return
    try:
        await workflow.execute_local_activity(
            COMPLETE_SINGLE_WRITER_REQUESTS,
            CompleteRequestsInput(replies=tuple(replies)),
            activity_id=f"replies/{queue.batches}",
            summary=f"answer {len(replies)} requests",
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=200),
                maximum_interval=timedelta(seconds=5),
                maximum_attempts=10,
            ),
        )
    except ActivityError as err:
        workflow.logger.warning(
            "%d replies not delivered: %s", len(replies), failure_causes(err)[-1]
        )


async def batching_pause(queue: UpdateQueue[Any, Any], quiet: float, window: float) -> None:
    """Collect requests before an apply. Runs recorded before the debounce slept a fixed window
    (then batch_window_seconds, 0.2 s); they replay that way."""
    if workflow.patched(BATCH_DEBOUNCE_PATCH):
        await queue.settle(quiet=timedelta(seconds=quiet), longest=timedelta(seconds=window))
    elif window > 0:
        # A zero window schedules no timer at all: even a zero-length server timer fires up to a
        # second late (the history service's timer time shift).
        await workflow.sleep(timedelta(seconds=window))
