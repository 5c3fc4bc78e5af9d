"""Container processes: started through container_launcher.py in a session (and process group) of
their own, stdout+stderr appended to the run's log file; stopped by signalling that group.

Every process is tracked by pid and its start time (/proc/<pid>/stat), so a runtime that restarts
finds the processes it started (and adopts them) and never signals a process that merely reuses
a recorded pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Final

LAUNCHER: Final = Path(__file__).with_name("container_launcher.py")


def start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def is_running(pid: int, ticks: int) -> bool:
    """The recorded process still runs (same pid and start time, not a zombie)."""
    if start_ticks(pid) != ticks:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def signal_group(pid: int, ticks: int, sig: int) -> bool:
    """Signal the process group of a process we started (checked by start time first)."""
    if start_ticks(pid) != ticks:
        return False
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    return True


class ContainerProcess:
    """A process this runtime started (a child) or found running from its previous run
    (adopted; its exit code cannot be known)."""

    def __init__(self, pid: int, ticks: int, child: asyncio.subprocess.Process | None) -> None:
        self.pid = pid
        self.ticks = ticks
        self._child = child

    @property
    def adopted(self) -> bool:
        return self._child is None

    async def wait(self) -> int | None:
        """The exit code (128 + signal for a signalled process); None for an adopted one."""
        if self._child is not None:
            code = await self._child.wait()
            return 128 - code if code < 0 else code
        await _wait_pidfd(self.pid, self.ticks)
        return None

    def signal(self, sig: int) -> bool:
        return signal_group(self.pid, self.ticks, sig)

    def kill(self) -> bool:
        return self.signal(signal.SIGKILL)


async def _wait_pidfd(pid: int, ticks: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if start_ticks(pid) != ticks:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_reader(fd, readable)
        try:
            # A zombie (exited, parent not reaping) also counts as exited.
            while not done.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(done), 2.0)
                if not is_running(pid, ticks):
                    break
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)


async def start(launch_file: Path, log_file: Path) -> ContainerProcess:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            str(LAUNCHER),
            str(launch_file),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,
        )
    finally:
        os.close(fd)
    ticks = start_ticks(child.pid) or 0
    return ContainerProcess(child.pid, ticks, child)


def adopt(pid: int, ticks: int) -> ContainerProcess | None:
    return ContainerProcess(pid, ticks, None) if is_running(pid, ticks) else None
