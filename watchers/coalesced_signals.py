"""Signals that carry no payload, coalesced per target: what the PodEndpoint watcher sends.

A signal that only says "look again" needs sending once for any number of changes that happen
before the receiver looks. `CoalescedSignals.mark(target)` returns at once; one lane per target
sends its signal, and marks made while a signal is on its way, or within `spacing` after it, make
exactly one more. A burst of 100 PodEndpoints a second then costs a configuration's workflow about
1/spacing signals a second instead of 100 (each is a history event and a workflow task), while a
lone change is sent at once. The watch loop no longer waits for Temporal either: serial signals
kept it at about 25 events a second on a busy machine (bench/peer_propagation.py).

A send that fails is retried with backoff, the target staying marked, so no change is lost while
Temporal is away (anything else a send raises is logged with its traceback and retried alike);
the lanes end with `close`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from temporalio.service import RPCError

log = logging.getLogger(__name__)

# The least time between two signals to one target; changes within it share the next signal.
DEFAULT_SPACING_SECONDS: Final = 0.1
# Signals on their way at once, over all targets.
DEFAULT_CONCURRENCY: Final = 16
MAX_BACKOFF_SECONDS: Final = 10.0


def retry_delay(failures: int) -> float:
    return float(min(MAX_BACKOFF_SECONDS, 0.2 * 2 ** (failures - 1)))


class CoalescedSignals:
    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        *,
        spacing: float = DEFAULT_SPACING_SECONDS,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        """`send(target)` signals `target`, raising when it could not (and should be retried)."""
        self._send = send
        self._spacing = spacing
        self._limit = asyncio.Semaphore(concurrency)
        self._marked: set[str] = set()
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self.sent = 0  # signals delivered, for logs and tests

    def mark(self, target: str) -> None:
        """`target` is to be signalled: at once when nothing is on its way to it, else once
        more after that."""
        self._marked.add(target)
        if target not in self._lanes:
            self._lanes[target] = asyncio.create_task(self._lane(target), name=f"signal {target}")

    @property
    def pending(self) -> int:
        """Targets marked or with a signal on its way."""
        return len(self._lanes)

    async def close(self) -> None:
        """Stop every lane; what is still marked is dropped (the receivers re-list anyway)."""
        lanes, self._lanes = list(self._lanes.values()), {}
        for lane in lanes:
            lane.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
        self._marked.clear()

    async def _lane(self, target: str) -> None:
        failures = 0
        try:
            while target in self._marked:
                self._marked.discard(target)
                try:
                    async with self._limit:
                        await self._send(target)
                except Exception as exc:  # retried: the target stays marked
                    failures += 1
                    self._marked.add(target)
                    if isinstance(exc, RPCError):
                        log.warning(
                            "signal to %s not sent yet (attempt %d): Temporal %s: %s",
                            target,
                            failures,
                            exc.status.name,
                            exc.message,
                        )
                    else:
                        log.exception("signal to %s failed (attempt %d)", target, failures)
                    await asyncio.sleep(retry_delay(failures))
                    continue
                failures = 0
                self.sent += 1
                await asyncio.sleep(self._spacing)
        finally:
            # No await between the last check of `_marked` and here: a mark made after that
            # check sees no lane and starts a new one.
            if self._lanes.get(target) is asyncio.current_task():
                del self._lanes[target]
