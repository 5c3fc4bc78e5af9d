"""The parts of a running dev stack the suite kills, found by PID in its endpoints.json. The
dev stack starts each again (egressgw/dev/restarts.py) and names the new PID there."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("controller", "agent", "temporal", "api-server", "node-runtime")
PICK_TIMEOUT = 60.0


@dataclass(frozen=True)
class Part:
    kind: str  # one of KINDS
    name: str  # "controller", a node name, "temporal", "kube-apiserver"
    pid: int


def parts_of(endpoints: dict[str, Any], kind: str) -> list[Part]:
    """The live candidates of a kind in an endpoints document."""
    found: list[tuple[str, int | None]]
    if kind == "controller":
        found = [("controller", endpoints.get("controller_pid"))]
    elif kind == "temporal":
        found = [("temporal", endpoints.get("temporal_pid"))]
    elif kind == "api-server":
        found = [("kube-apiserver", (endpoints.get("kube_pids") or {}).get("kube-apiserver"))]
    elif kind == "agent":
        found = sorted((endpoints.get("agent_pids") or {}).items())
    elif kind == "node-runtime":
        found = sorted((endpoints.get("node_runtime_pids") or {}).items())
    else:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    return [Part(kind, name, pid) for name, pid in found if pid]


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie waits for its parent, but is dead


@dataclass
class StackParts:
    """Picks and kills parts of one dev stack."""

    state_dir: Path
    rng: random.Random

    def endpoints(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.state_dir / "endpoints.json").read_text())
        return document

    def candidates(self, kind: str) -> list[Part]:
        return [p for p in parts_of(self.endpoints(), kind) if alive(p.pid)]

    def pick(self, kind: str, serving: str = "") -> Part:
        """A live part of the kind; of the nodes whose names start with `serving` when the
        kind runs per node (agents, node runtimes) and any does."""
        deadline = time.monotonic() + PICK_TIMEOUT
        # A part killed by the run before may still be waiting for its restart.
        while not (candidates := self.candidates(kind)) and time.monotonic() < deadline:
            time.sleep(0.5)
        serving_ones = [p for p in candidates if p.name.startswith(serving)]
        candidates = serving_ones or candidates
        if not candidates:
            raise RuntimeError(f"no live {kind} in {self.state_dir / 'endpoints.json'}")
        return self.rng.choice(candidates)

    def kill(self, part: Part) -> None:
        """SIGKILL, and wait until it is gone (its restart is the dev stack's)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(part.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(part.pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def environment_of(pid: int) -> dict[str, str]:
    """A process's environment, from /proc."""
    env: dict[str, str] = {}
    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            env[key] = value
    return env
