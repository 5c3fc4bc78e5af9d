"""Long-running processes by name (one agent or CNI manager per node, the controller): each
started with its own log, started again the same way when it exits (egressgw/dev/restarts.py),
and stopped together by PID."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from egressgw.dev.restarts import Part


@dataclass(frozen=True)
class _Launch:
    command: tuple[str, ...]
    log_path: Path
    env: dict[str, str] | None


class NodeProcesses:
    def __init__(self, stop_timeout: float) -> None:
        self._stop_timeout = stop_timeout
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._launches: dict[str, _Launch] = {}

    def start(
        self,
        node_name: str,
        command: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._launches[node_name] = _Launch(
            tuple(command), log_path, dict(env) if env is not None else None
        )
        self.restart(node_name)

    def restart(self, node_name: str) -> None:
        """Start the process again as it was first started (after it exited)."""
        launch = self._launches[node_name]
        with launch.log_path.open("ab") as log:
            self.processes[node_name] = subprocess.Popen(
                list(launch.command),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=launch.env,
                # Ctrl-C reaches the supervisor only, which stops the processes in order.
                start_new_session=True,
            )

    def pid(self, node_name: str) -> int | None:
        process = self.processes.get(node_name)
        return process.pid if process is not None else None

    def exited(self, node_name: str) -> int | None:
        """The exit code once the process has exited; None while it runs or after stop()."""
        process = self.processes.get(node_name)
        return process.poll() if process is not None else None

    def part(self, name: str, node_name: str) -> Part:
        """`node_name`'s process for the restarter, called `name` in logs and records."""
        return Part(
            name,
            partial(self.pid, node_name),
            partial(self.exited, node_name),
            partial(self.restart, node_name),
            self._launches[node_name].log_path,
        )

    async def stop(self) -> None:
        """SIGTERM to every process still running, then wait (SIGKILL after the timeout)."""
        processes, self.processes = self.processes, {}
        running = [p for p in processes.values() if p.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        await asyncio.gather(*(asyncio.to_thread(self._wait_or_kill, p) for p in running))

    def _wait_or_kill(self, process: subprocess.Popen[bytes]) -> None:
        try:
            process.wait(self._stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
