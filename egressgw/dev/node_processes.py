"""One long-running process per node (agents, CNI managers): started at once, each with its
own log, and stopped together by PID."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


class NodeProcesses:
    def __init__(self, stop_timeout: float) -> None:
        self._stop_timeout = stop_timeout
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self,
        node_name: str,
        command: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        with log_path.open("ab") as log:
            self.processes[node_name] = subprocess.Popen(
                list(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                # Ctrl-C reaches the supervisor only, which stops the processes in order.
                start_new_session=True,
            )

    def pid(self, node_name: str) -> int | None:
        process = self.processes.get(node_name)
        return process.pid if process is not None else None

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
