"""Every process of the dev stack comes back when it exits, as a kubelet restarts a pod's
containers (restartPolicy Always): the first restart at once, then after a back-off that doubles
from RESTART_BACKOFF_INITIAL up to RESTART_BACKOFF_MAX, and starts over once a process ran for
twice the maximum (sim/node_runtime/restart.py has the kubelet's rules). Each exit is logged with
its code, each start recorded in `processes.json` (egressgw/dev/process_records.py). A part held
by `egressgw dev hold` (egressgw/dev/holds.py) is not started again until it is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from egressgw.dev.process_records import ProcessRecords
from sim.node_runtime.restart import backoff_delay, next_backoff_steps

# Shorter than a kubelet's 10 s and 5 min: the dev stack's parts are local and start in seconds,
# and someone trying a crash wants to see it come back.
RESTART_BACKOFF_INITIAL: Final = 1.0
RESTART_BACKOFF_MAX: Final = 16.0
CHECK_INTERVAL: Final = 0.25


class _HasPid(Protocol):
    @property
    def pid(self) -> int | None: ...


def pid_of(process: _HasPid) -> Callable[[], int | None]:
    """A reader of `process.pid` as it is when called (a restart changes it)."""
    return lambda: process.pid


@dataclass(frozen=True)
class Part:
    """One supervised process: how to read its PID and exit code and how to start it again."""

    name: str
    pid: Callable[[], int | None]
    exited: Callable[[], int | None]
    start: Callable[[], object]  # what it returns is ignored
    log: Path | None = None


@dataclass
class _Watch:
    part: Part
    started_at: float
    steps: int = 0
    restarts: int = 0
    due: float | None = None  # set while waiting to restart it
    pid: int | None = None
    held: bool = False  # exited while held: started once released


def exit_text(code: int) -> str:
    """How a Popen return code reads: `code 1`, or `signal SIGKILL` for a negative one."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"code {code}"


@dataclass
class Restarter:
    records: ProcessRecords
    progress: Callable[[str], None]
    # Called after a restart (the stack rewrites endpoints.json with the new PIDs).
    on_restart: Callable[[], None] = lambda: None
    # The names of the parts held down now (read on every check).
    held: Callable[[], frozenset[str]] = frozenset
    initial: float = RESTART_BACKOFF_INITIAL
    maximum: float = RESTART_BACKOFF_MAX
    _watches: dict[str, _Watch] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def watch(self, part: Part) -> None:
        """Supervise a process that has just started (and record it)."""
        pid = part.pid()
        self._watches[part.name] = _Watch(part, time.monotonic(), pid=pid)
        if pid is not None:
            self.records.record(part.name, pid)

    def restarts(self) -> dict[str, int]:
        return {name: w.restarts for name, w in self._watches.items() if w.restarts}

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dev stack restarts")

    async def stop(self) -> None:
        """Restart nothing from now on (before the stack stops its processes)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            restarted = False
            watches = list(self._watches.values())
            # held.json is read only while a part is down, not on every check of running parts.
            down = any(w.held or w.due is not None or w.part.exited() is not None for w in watches)
            held = self.held() if down else frozenset()
            for watch in watches:
                restarted = self._check(watch, time.monotonic(), held) or restarted
            if restarted:
                with contextlib.suppress(OSError):  # a full disk must not end the restarts
                    self.on_restart()

    def _check(self, watch: _Watch, now: float, held: frozenset[str] = frozenset()) -> bool:
        part = watch.part
        if part.name in held:
            code = part.exited()
            if code is not None and not watch.held:
                watch.held = True
                self.progress(
                    f"{part.name} (pid {watch.pid}) exited with {exit_text(code)}; held: not "
                    f"started again until `egressgw dev release {part.name}`"
                )
            return False
        if watch.held:  # released: started at once, whatever the back-off was
            watch.held, watch.due, watch.steps = False, now, 0
        if watch.due is None:
            code = part.exited()
            if code is None:
                return False
            watch.steps = next_backoff_steps(watch.steps, now - watch.started_at, self.maximum)
            delay = backoff_delay(watch.steps, self.initial, self.maximum)
            watch.due = now + delay
            where = f"; log {part.log}" if part.log is not None else ""
            self.progress(
                f"{part.name} (pid {watch.pid}) exited with {exit_text(code)}; starting it again "
                + (f"in {delay:g} s" if delay else "now")
                + where
            )
        if now < watch.due:
            return False
        try:
            part.start()
        except (OSError, RuntimeError, ValueError) as err:
            # Counted as a failed run: the next attempt backs off further.
            watch.steps += 1
            watch.due = now + backoff_delay(watch.steps, self.initial, self.maximum)
            self.progress(f"{part.name} could not be started again: {err}")
            return False
        watch.due = None
        watch.started_at = now
        watch.restarts += 1
        watch.pid = part.pid()
        if watch.pid is not None:
            self.records.record(part.name, watch.pid)
        self.progress(f"{part.name} started again (pid {watch.pid}, restart {watch.restarts})")
        return True
