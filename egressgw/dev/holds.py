"""`egressgw dev hold PART` / `dev release PART`: keep one part of a running dev stack down (an
agent, a node runtime, the controller, ...) and let it come back, to try what happens while it
is away. The stack restarts every part that exits (egressgw/dev/restarts.py); a held part is
stopped and not started again until it is released.

The holds are `held.json` in the state dir, a list of part names, which the restarter reads on
every check; the names are those of `processes.json` (`controller`, `agent/<node>`,
`node-runtime/<node>`, `temporal`, ...).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import TextIO

from egressgw.dev.layout import DevStackError, StatePaths, write_json_atomic
from egressgw.dev.process_records import ProcessRecord, ProcessRecords, start_identity


def held_parts(path: Path) -> frozenset[str]:
    """The part names held; none when the file is missing or unreadable."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return frozenset()
    if not isinstance(document, list):
        return frozenset()
    return frozenset(name for name in document if isinstance(name, str))


def _known_parts(paths: StatePaths) -> dict[str, ProcessRecord]:
    """Part name -> the process last recorded for it."""
    records = ProcessRecords(paths.process_records).records()
    if not records:
        raise DevStackError(f"no dev stack has run from {paths.root}")
    return {record.name: record for record in records}


def _check_part(known: dict[str, ProcessRecord], part: str) -> None:
    if part not in known:
        raise ValueError(f"no part {part!r} in this stack; its parts: {', '.join(sorted(known))}")


def hold(state_dir: Path, part: str, out: TextIO, *, kill: bool = False) -> int:
    """Hold `part` and stop it: SIGTERM to its recorded process if it runs, or SIGKILL with
    `kill` (a crash: nothing of it shuts down in order)."""
    paths = StatePaths(state_dir)
    known = _known_parts(paths)
    _check_part(known, part)
    write_json_atomic(paths.held, sorted(held_parts(paths.held) | {part}))
    record = known[part]
    again = f"`egressgw dev release {part}` starts it"
    # The recorded start time, not the PID alone: a PID may have been given to another process.
    if start_identity(record.pid) != record.started:
        print(f"{part}: held (it was not running); {again}", file=out)
        return 0
    os.kill(record.pid, signal.SIGKILL if kill else signal.SIGTERM)
    print(f"{part}: held, {'killed' if kill else 'stopped'} (pid {record.pid}); {again}", file=out)
    return 0


def release(state_dir: Path, part: str, out: TextIO) -> int:
    """Release `part`: the stack starts it again within a moment."""
    paths = StatePaths(state_dir)
    held = held_parts(paths.held)
    if part not in held:
        _check_part(_known_parts(paths), part)
        print(f"{part}: not held", file=out)
        return 0
    write_json_atomic(paths.held, sorted(held - {part}))
    print(f"{part}: released; the stack starts it again", file=out)
    return 0
