"""Heartbeats while a node activity runs, so that an agent that dies in the middle of one is
noticed within the heartbeat timeout (workflows/activity_calls.py NODE) instead of the whole
start-to-close timeout: the configuration's peer pass waits for every node's answer, and a lost
answer held back the peers of every other gateway for two minutes.

The node's work runs on the dataplane's thread, so the event loop is free to beat while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

from temporalio import activity

# Well inside the workflow's heartbeat timeout (10 s); the SDK throttles what it sends anyway.
BEAT_SECONDS: Final = 2.0


@contextlib.asynccontextmanager
async def heartbeating(every: float = BEAT_SECONDS) -> AsyncIterator[None]:
    """Heartbeat the current activity every `every` seconds while the body runs."""

    async def beat() -> None:
        # The first beat only after `every`: most node calls are done sooner and cost no
        # heartbeat request at all (an idle configuration's calls stay as few as they were).
        while True:
            await asyncio.sleep(every)
            activity.heartbeat()

    beats = asyncio.create_task(beat(), name="activity heartbeat")
    try:
        yield
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats
