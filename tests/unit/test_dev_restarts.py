"""The dev stack's restarter: a process that exits is started again, with a back-off while it
keeps exiting, each exit logged and each start recorded (egressgw/dev/restarts.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from egressgw.dev.node_processes import NodeProcesses
from egressgw.dev.process_records import ProcessRecords, start_identity
from egressgw.dev.restarts import Restarter

SLEEP = (sys.executable, "-c", "import time; time.sleep(120)")
FAIL = (sys.executable, "-c", "raise SystemExit(3)")


@pytest.fixture
async def processes() -> AsyncIterator[NodeProcesses]:
    group = NodeProcesses(stop_timeout=5)
    yield group
    await group.stop()  # only what this test started, by PID


async def until(condition: object, what: str) -> None:
    assert callable(condition)
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


async def test_a_killed_process_is_started_again_and_recorded(
    tmp_path: Path, processes: NodeProcesses
) -> None:
    processes.start("one", SLEEP, tmp_path / "one.log")
    lines: list[str] = []
    restarts = 0

    def restarted() -> None:
        nonlocal restarts
        restarts += 1

    records = ProcessRecords(tmp_path / "processes.json")
    restarter = Restarter(records, lines.append, on_restart=restarted)
    restarter.watch(processes.part("part/one", "one"))
    restarter.start()
    first = processes.pid("one")
    assert first is not None
    try:
        os.kill(first, signal.SIGKILL)
        await until(lambda: processes.pid("one") != first, "a new process")
    finally:
        await restarter.stop()

    second = processes.pid("one")
    assert second is not None and start_identity(second) is not None
    assert lines[0] == (
        f"part/one (pid {first}) exited with signal SIGKILL; starting it again now; "
        f"log {tmp_path / 'one.log'}"
    )
    assert lines[1] == f"part/one started again (pid {second}, restart 1)"
    assert json.loads(records.path.read_text())["part/one"]["pid"] == second
    assert restarter.restarts() == {"part/one": 1}
    assert restarts == 1


async def test_a_process_that_keeps_exiting_backs_off_up_to_the_maximum(
    tmp_path: Path, processes: NodeProcesses
) -> None:
    processes.start("bad", FAIL, tmp_path / "bad.log")
    lines: list[str] = []
    restarter = Restarter(
        ProcessRecords(tmp_path / "processes.json"), lines.append, initial=0.25, maximum=1.0
    )
    restarter.watch(processes.part("bad", "bad"))
    restarter.start()
    try:
        await until(lambda: restarter.restarts().get("bad", 0) >= 5, "five restarts")
    finally:
        await restarter.stop()

    exits = [line for line in lines if "exited" in line]
    assert all("exited with code 3" in line for line in exits)
    waits = [line.split("starting it again ")[1].split(";")[0] for line in exits[:5]]
    assert waits == ["now", "in 0.25 s", "in 0.5 s", "in 1 s", "in 1 s"]


async def test_nothing_is_restarted_once_stopped(tmp_path: Path, processes: NodeProcesses) -> None:
    processes.start("one", SLEEP, tmp_path / "one.log")
    restarter = Restarter(ProcessRecords(tmp_path / "processes.json"), lambda _line: None)
    restarter.watch(processes.part("one", "one"))
    restarter.start()
    await restarter.stop()
    first = processes.pid("one")
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await asyncio.sleep(0.6)  # longer than the restarter's check interval

    assert processes.pid("one") == first
    assert restarter.restarts() == {}
