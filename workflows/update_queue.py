"""The queue a single-writer workflow keeps between its update handlers and its run loop.

Handlers enqueue a change and wait for its answer; the run loop takes everything queued as one
batch and posts an answer per ticket. Runs inside the workflow (deterministic: no I/O, no clock).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.single_writer_batch import Change

Wanted = TypeVar("Wanted")
Answer = TypeVar("Answer")


class UpdateQueue(Generic[Wanted, Answer]):
    def __init__(self, failure_type: str) -> None:
        self._failure_type = failure_type
        self._queued: list[Change[Wanted]] = []
        self._answers: dict[int, Answer | str] = {}
        self._tickets = 0

    def __bool__(self) -> bool:
        return bool(self._queued)

    async def request(self, owner_uid: str, wanted: Wanted | None, *, verify: bool) -> Answer:
        """Queue a change and wait for the run loop's answer; a str answer is a failure."""
        self._tickets += 1
        ticket = self._tickets
        self._queued.append(Change(ticket, owner_uid, wanted, verify))
        await workflow.wait_condition(lambda: ticket in self._answers)
        answer = self._answers.pop(ticket)
        if isinstance(answer, str):
            # Fails this update only; the workflow and the other owners carry on.
            raise ApplicationError(answer, type=self._failure_type, non_retryable=True)
        return answer

    def take(self) -> list[Change[Wanted]]:
        batch, self._queued = self._queued, []
        return batch

    def answer(self, change: Change[Wanted], answer: Answer | str) -> None:
        self._answers[change.ticket] = answer
