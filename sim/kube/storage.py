"""Durable state: an atomically replaced snapshot plus an append-only journal.

Every committed write appends one JSON line to the journal (cheap, so the emulator stays fast);
`snapshot()` writes the whole state to a temporary file, fsyncs and renames it over the old one,
then truncates the journal. A crash at any point leaves either the old or the new snapshot and at
worst a torn last journal line, which loading ignores.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

SNAPSHOT_FILE = "kube-state.json"
JOURNAL_FILE = "kube-journal.jsonl"

StoredKey = tuple[str, str, str, str]  # group, plural, namespace, name


@dataclass
class LoadedState:
    resource_version: int = 0
    objects: dict[StoredKey, dict[str, Any]] = field(default_factory=dict)


def _key(raw: list[str]) -> StoredKey:
    group, plural, namespace, name = raw
    return (group, plural, namespace, name)


class Storage:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._journal: IO[str] | None = None
        self.journal_lines = 0

    @property
    def snapshot_path(self) -> Path:
        return self.state_dir / SNAPSHOT_FILE

    @property
    def journal_path(self) -> Path:
        return self.state_dir / JOURNAL_FILE

    def load(self) -> LoadedState:
        state = LoadedState()
        if self.snapshot_path.exists():
            raw = json.loads(self.snapshot_path.read_text())
            state.resource_version = int(raw.get("resourceVersion", 0))
            for entry in raw.get("objects", []):
                state.objects[_key(entry["key"])] = entry["object"]
        if self.journal_path.exists():
            with self.journal_path.open() as journal:
                for line in journal:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        break  # a torn tail from a crash: everything before it is intact
                    key = _key(entry["key"])
                    if entry["op"] == "put":
                        state.objects[key] = entry["object"]
                    else:
                        state.objects.pop(key, None)
                    state.resource_version = max(state.resource_version, int(entry["rv"]))
        return state

    def append(self, rv: int, key: StoredKey, obj: dict[str, Any] | None) -> None:
        if self._journal is None:
            self._journal = self.journal_path.open("a")
        entry = {
            "rv": rv,
            "op": "put" if obj is not None else "del",
            "key": list(key),
            "object": obj,
        }
        self._journal.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._journal.flush()
        self.journal_lines += 1

    def snapshot(self, rv: int, objects: Iterable[tuple[StoredKey, dict[str, Any]]]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        body = {
            "resourceVersion": rv,
            "objects": [{"key": list(k), "object": o} for k, o in objects],
        }
        tmp = self.snapshot_path.with_suffix(".json.tmp")
        with tmp.open("w") as out:
            out.write(json.dumps(body, separators=(",", ":")))
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.snapshot_path)
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        self.journal_path.write_text("")
        self.journal_lines = 0

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
