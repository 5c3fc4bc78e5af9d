"""Writes a volume's files the way the kubelet's AtomicWriter does: the payload goes to a fresh
`..<timestamp>` directory, the `..data` symlink is swapped to it in one rename, and each top-level
entry is a symlink through `..data`. A container that has the volume bind-mounted sees either the
old or the new set, never half of one; a refreshed token or changed ConfigMap shows up in place.
"""

from __future__ import annotations

import datetime
import os
import shutil
from pathlib import Path
from typing import Final

from sim.node_runtime.pod_volumes import FileEntry

DATA: Final = "..data"


def _current(directory: Path) -> dict[str, tuple[bytes, int]]:
    data = directory / DATA
    out: dict[str, tuple[bytes, int]] = {}
    if not data.is_dir():
        return out
    for root, _, files in os.walk(data, followlinks=False):
        for name in files:
            path = Path(root) / name
            out[str(path.relative_to(data))] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return out


def write_volume(directory: Path, files: list[FileEntry]) -> bool:
    """Make `directory` hold exactly `files`; returns whether anything changed."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {f.path: (f.data, f.mode) for f in files}
    if (directory / DATA).is_dir() and _current(directory) == wanted:
        return False
    stamp = datetime.datetime.now(datetime.UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    payload = directory / stamp
    payload.mkdir()
    for entry in files:
        target = payload / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(entry.data)
        target.chmod(entry.mode)
    old = str((directory / DATA).readlink()) if (directory / DATA).is_symlink() else None
    tmp = directory / "..data_tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(stamp)
    tmp.replace(directory / DATA)
    tops = {entry.path.split("/")[0] for entry in files}
    for name in tops:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA}/{name}")
    for child in directory.iterdir():
        if child.name.startswith(".."):
            continue
        if child.name not in tops and child.is_symlink():
            child.unlink()
    if old is not None and old != stamp:
        shutil.rmtree(directory / old, ignore_errors=True)
    return True
