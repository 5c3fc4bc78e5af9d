"""Container log files: one file per run of a container (`logs/<container>/<n>.log` in the pod's
state dir) holding its stdout and stderr as written, capped by copy-and-truncate into
`<n>.log.1` (only the newest cap's worth of older output is kept), and the selection the kubelet
endpoint serves (`tailLines`, `limitBytes`)."""

from __future__ import annotations

import shutil
from pathlib import Path


def tail_lines(data: bytes, lines: int | None) -> bytes:
    """The last `lines` lines of `data` (a trailing partial line counts as one)."""
    if lines is None or lines < 0:
        return data
    if lines == 0:
        return b""
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    cut = end
    for _ in range(lines):
        cut = data.rfind(b"\n", 0, cut)
        if cut == -1:
            return data
    return data[cut + 1 :]


def run_files(current: Path) -> list[Path]:
    """The files of one run, oldest first."""
    rotated = current.with_name(current.name + ".1")
    return [p for p in (rotated, current) if p.exists()]


def read_run(current: Path) -> tuple[bytes, int]:
    """The run's output so far and how much of it is in `current` (where a follow goes on)."""
    rotated = current.with_name(current.name + ".1")
    older = rotated.read_bytes() if rotated.exists() else b""
    newer = current.read_bytes() if current.exists() else b""
    return older + newer, len(newer)


def cap(current: Path, max_bytes: int) -> bool:
    """Copy-and-truncate `current` when it exceeds `max_bytes` (the writer keeps appending to
    the same file); returns whether it rotated."""
    try:
        if current.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    shutil.copyfile(current, current.with_name(current.name + ".1"))
    with current.open("r+b") as f:
        f.truncate(0)
    return True
