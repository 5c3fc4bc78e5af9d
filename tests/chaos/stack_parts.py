"""The parts of a running dev stack the suite kills, found by PID in its endpoints.json.

FALLBACK (remove once the dev stack restarts crashed parts, branch issue13-supervisor): the dev
stack does not restart what dies, so the harness restarts what it killed itself, from the killed
process's own command line, environment and working directory (read from /proc before the
kill). `HARNESS_RESTARTS` switches this off.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HARNESS_RESTARTS = True  # FALLBACK until the dev stack's supervisor restarts killed parts

KINDS = ("controller", "agent", "temporal", "api-server", "node-runtime")
RESTART_DELAY = 1.0  # a crashed part's restart is not instant in a cluster either


@dataclass(frozen=True)
class Part:
    kind: str  # one of KINDS
    name: str  # "controller", a node name, "temporal", "kube-apiserver"
    pid: int


@dataclass(frozen=True)
class ProcessImage:
    """What it takes to start a process again as it was started."""

    argv: list[str]
    env: dict[str, str]
    cwd: str

    @classmethod
    def of(cls, pid: int) -> ProcessImage:
        proc = Path(f"/proc/{pid}")
        argv = [a.decode() for a in proc.joinpath("cmdline").read_bytes().split(b"\0") if a]
        env: dict[str, str] = {}
        for item in proc.joinpath("environ").read_bytes().split(b"\0"):
            key, sep, value = item.decode(errors="replace").partition("=")
            if sep:
                env[key] = value
        return cls(argv, env, str(proc.joinpath("cwd").readlink()))


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
    """Kills parts of one dev stack; with HARNESS_RESTARTS also starts them again."""

    state_dir: Path
    rng: random.Random
    restarts: bool = HARNESS_RESTARTS
    # (kind, name) -> PID of the process the harness started in place of a killed one.
    _replaced: dict[tuple[str, str], int] = field(default_factory=dict)
    _started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def endpoints(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.state_dir / "endpoints.json").read_text())
        return document

    def candidates(self, kind: str) -> list[Part]:
        parts = [
            Part(p.kind, p.name, self._replaced.get((p.kind, p.name), p.pid))
            for p in parts_of(self.endpoints(), kind)
        ]
        return [p for p in parts if alive(p.pid)]

    def pick(self, kind: str, serving: str = "") -> Part:
        """A live part of the kind; of the nodes whose names start with `serving` when the
        kind runs per node (agents, node runtimes) and any does."""
        candidates = self.candidates(kind)
        serving_ones = [p for p in candidates if p.name.startswith(serving)]
        candidates = serving_ones or candidates
        if not candidates:
            raise RuntimeError(f"no live {kind} in {self.state_dir / 'endpoints.json'}")
        return self.rng.choice(candidates)

    def kill(self, part: Part) -> ProcessImage:
        """SIGKILL; with `restarts` (the fallback) the same process again after RESTART_DELAY.
        Returns what it takes to start the part again."""
        image = ProcessImage.of(part.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(part.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(part.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.restarts:
            time.sleep(RESTART_DELAY)
            self.start(part, image)
        return image

    def start(self, part: Part, image: ProcessImage) -> None:
        """Start a killed part again (FALLBACK: the dev stack does not yet)."""
        log = self.state_dir / "logs" / f"chaos-restarted-{part.kind}-{part.name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                image.argv,
                env=image.env,
                cwd=image.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._started.append(process)
        self._replaced[(part.kind, part.name)] = process.pid

    def stop_restarted(self, timeout: float = 15.0) -> None:
        """Stop what the harness started (by PID), before `dev down` stops the rest."""
        for process in self._started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._started:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._started.clear()
        self._replaced.clear()
