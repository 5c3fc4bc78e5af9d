"""The queue a single-writer workflow keeps between its message handlers and its run loop.

Requests arrive two ways. Submit signals (current callers) carry a reply token: the run loop
answers them by completing the caller's activity (replies()). Updates (callers from before the
signals) wait in their handler for the run loop's answer. The run loop takes everything queued as
one batch and posts an answer per ticket. Runs inside the workflow (deterministic: no I/O, no
clock but the workflow's).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Generic, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.single_writer_batch import Change

Wanted = TypeVar("Wanted")
Answer = TypeVar("Answer")


class UpdateQueue(Generic[Wanted, Answer]):
    def __init__(self, failure_type: str) -> None:
        self.failure_type = failure_type
        self._queued: list[Change[Wanted]] = []
        self._answers: dict[int, Answer | str] = {}
        self._replies: list[tuple[str, Answer | str]] = []
        self._tickets = 0
        self.batches = 0  # batches taken, numbering their replies

    def __bool__(self) -> bool:
        return bool(self._queued)

    def submit(self, owner_uid: str, wanted: Wanted | None, *, verify: bool, reply: str) -> None:
        """Queue a signalled change; its answer goes to replies() for the caller's activity."""
        self._tickets += 1
        self._queued.append(Change(self._tickets, owner_uid, wanted, verify, reply))

    async def request(self, owner_uid: str, wanted: Wanted | None, *, verify: bool) -> Answer:
        """Queue a change and wait for the run loop's answer; a str answer is a failure."""
        self._tickets += 1
        ticket = self._tickets
        self._queued.append(Change(ticket, owner_uid, wanted, verify))
        await workflow.wait_condition(lambda: ticket in self._answers)
        answer = self._answers.pop(ticket)
        if isinstance(answer, str):
            # Fails this update only; the workflow and the other owners carry on.
            raise ApplicationError(answer, type=self.failure_type, non_retryable=True)
        return answer

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

    def answer(self, change: Change[Wanted], answer: Answer | str) -> None:
        if change.reply:
            self._replies.append((change.reply, answer))
        else:
            self._answers[change.ticket] = answer

    def replies(self) -> list[tuple[str, Answer | str]]:
        """Answers for signalled requests since the last call: (reply token, answer or error)."""
        replies, self._replies = self._replies, []
        return replies
