"""The loop both single-writer workflows run (LoadBalancerWorkflow, GatewayPoolWorkflow).

Requests arrive by signal, each carrying the reply token of the caller's activity, and wait in a
queue. The loop waits for work, lets requests that arrive together gather (a debounce), hands the
whole batch to the workflow's apply, then completes every answered caller's activity with one
local activity (activities/temporal/single_writers.py). An idle single writer, or one whose
history grows long, continues as new once no handler is running. Runs inside the workflow
(deterministic: no I/O, no clock but the workflow's).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Final, Generic, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from contracts.workflow_io import CompleteRequestsInput, RequestFailed
from workflows import activity_stubs
from workflows.failures import failure_causes
from workflows.single_writer_batch import Answer, Change, request_replies

Wanted = TypeVar("Wanted")
Reply = TypeVar("Reply", bound=Answer)

# An idle single writer continues as new this often, so its history stays short and it picks up
# new workflow code (Worker Versioning upgrades on continue-as-new).
IDLE_CONTINUE_AS_NEW: Final = timedelta(hours=12)

_REPLY_RETRY: Final = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=10,
)


class RequestQueue(Generic[Wanted, Reply]):
    """Requests waiting for the next batch, and the answers the last batch gave."""

    def __init__(self, failure_type: str) -> None:
        self.failure_type = failure_type  # the caller's activity fails with this error type
        self._queued: list[Change[Wanted]] = []
        self._replies: list[tuple[str, Reply | RequestFailed]] = []
        self._tickets = 0
        self.batches = 0  # batches taken, numbering their replies

    def __bool__(self) -> bool:
        return bool(self._queued)

    def submit(self, owner_uid: str, wanted: Wanted | None, *, verify: bool, reply: str) -> None:
        """Queue a change: register `wanted` for the owner, or unregister it (None)."""
        self._tickets += 1
        self._queued.append(Change(owner_uid, wanted, verify, reply))

    async def settle(self, *, quiet: timedelta, longest: timedelta) -> None:
        """Wait until no request arrived for `quiet`, or `longest` after the call (a debounce),
        so that requests arriving together share one apply while a lone one waits only `quiet`."""
        if quiet <= timedelta(0):
            # No timer at all: even a zero-length server timer fires late (timer time shift).
            return
        deadline = workflow.now() + longest
        while True:
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0) or not await self._arrives_within(min(quiet, remaining)):
                return

    async def _arrives_within(self, timeout: timedelta) -> bool:
        seen = self._tickets
        try:
            await workflow.wait_condition(lambda: self._tickets > seen, timeout=timeout)
        except TimeoutError:
            return False
        return True

    def take(self) -> list[Change[Wanted]]:
        self.batches += 1
        batch, self._queued = self._queued, []
        return batch

    def answer(self, change: Change[Wanted], answer: Reply | RequestFailed) -> None:
        self._replies.append((change.reply, answer))

    def fail(self, batch: list[Change[Wanted]], message: str) -> None:
        """Answer every request of the batch with the same failure (an all-or-nothing write)."""
        failure = RequestFailed(message, self.failure_type)
        for change in batch:
            self.answer(change, failure)

    def replies(self) -> list[tuple[str, Reply | RequestFailed]]:
        """Answers since the last call: (reply token, answer or failure)."""
        replies, self._replies = self._replies, []
        return replies


async def run_single_writer(
    queue: RequestQueue[Wanted, Reply],
    *,
    quiet_seconds: float,
    window_seconds: float,
    apply_batch: Callable[[list[Change[Wanted]]], Awaitable[None]],
    carried_input: Callable[[], object],
    other_work: Callable[[], bool] = lambda: False,
) -> NoReturn:
    """The single writer's run loop; `apply_batch` answers every change of its batch, and
    `carried_input` is the next run's input when it continues as new. `other_work` is work that
    is not a queued request (the pool's "members changed")."""

    def has_work() -> bool:
        return bool(queue) or other_work()

    while True:
        try:
            await workflow.wait_condition(has_work, timeout=IDLE_CONTINUE_AS_NEW)
        except TimeoutError:
            idle = True
        else:
            idle = False
            await queue.settle(
                quiet=timedelta(seconds=quiet_seconds), longest=timedelta(seconds=window_seconds)
            )
            await apply_batch(queue.take())
            await _send_replies(queue)  # also after a failed apply: it answered every request
        if idle or workflow.info().is_continue_as_new_suggested():
            await workflow.wait_condition(lambda: workflow.all_handlers_finished() or has_work())
            if not has_work():
                workflow.continue_as_new(carried_input())


async def _send_replies(queue: RequestQueue[Wanted, Reply]) -> None:
    """Complete the activities of the callers the last batch answered. A caller whose completion
    is lost times out and submits again (its request is idempotent), so a failure here is
    logged, not raised."""
    replies = request_replies(queue.replies())
    if not replies:
        return
    try:
        await workflow.execute_local_activity(
            activity_stubs.complete_single_writer_requests,
            CompleteRequestsInput(replies=replies),
            activity_id=f"replies/{queue.batches}",
            summary=f"answer {len(replies)} requests",
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_REPLY_RETRY,
        )
    except ActivityError as err:
        workflow.logger.warning(
            "%d replies not delivered: %s", len(replies), failure_causes(err)[-1]
        )
