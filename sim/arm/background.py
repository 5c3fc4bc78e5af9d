"""Run an ArmEmulator on its own event loop in a thread, for callers that block (sync SDK clients,
pytest sync tests) while the emulator must keep answering."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sim.arm.server import ArmEmulator

T = TypeVar("T")


class BackgroundArm:
    def __init__(
        self, state_dir: Path, *, latency: Mapping[str, float] | None = None, page_size: int = 100
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="arm-emulator", daemon=True
        )
        self._thread.start()
        self.emulator = self.call(_make(state_dir, latency, page_size))

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the emulator's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    def start(self) -> ArmEmulator:
        self.call(self.emulator.start())
        return self.emulator

    def stop(self) -> None:
        self.call(self.emulator.stop())
        self.call(_cancel_leftovers())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


async def _make(
    state_dir: Path, latency: Mapping[str, float] | None, page_size: int
) -> ArmEmulator:
    return ArmEmulator(state_dir, latency=latency, page_size=page_size)


async def _cancel_leftovers() -> None:
    """Cancel connection handlers still parked on keep-alive so the loop closes cleanly."""
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
