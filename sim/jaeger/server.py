"""Jaeger v2 as a local process: OTLP receivers (gRPC and HTTP), traces kept in memory, the query
API on HTTP. Built from the module pinned in tools/jaeger by scripts/jaeger-binary (the first
call on a fresh machine builds it; later calls return at once).

Jaeger's own web UI cannot be had here (its assets are built from the separate jaeger-ui project,
are not part of the Go module and are not on the npm registry: tools/jaeger/README.md), so the
query extension serves the project's trace page from UI_DIR in its place (ui.assets_path): a
search by service and configuration and a waterfall of one trace, over the same query API.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

LOCALHOST: Final = "127.0.0.1"
SCRIPT: Final = Path(__file__).resolve().parents[2] / "scripts" / "jaeger-binary"
# A jaeger binary to use instead of the script's cache (e.g. a CI cache restore).
BINARY_ENV: Final = "EGRESSGW_JAEGER_BIN"
MAX_TRACES: Final = 100_000
# The trace page served on the query port (index.html, static/).
UI_DIR: Final = Path(__file__).resolve().parent / "ui"
STOP_TIMEOUT: Final = 10.0


class JaegerError(RuntimeError):
    """Jaeger is not built and could not be, or did not start."""


def jaeger_binary(*, build: bool = True) -> Path:
    """The jaeger executable; built first when missing unless `build` is False (then a missing
    binary is an error naming the script that builds it). Progress goes to our stderr."""
    override = os.environ.get(BINARY_ENV)
    if override:
        if not os.access(override, os.X_OK):
            raise JaegerError(f"{BINARY_ENV}={override} is not an executable")
        return Path(override)
    command = [str(SCRIPT)] if build else [str(SCRIPT), "--check"]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise JaegerError(
            "jaeger is not built; run scripts/jaeger-binary"
            if not build
            else f"scripts/jaeger-binary failed (exit {done.returncode})"
        )
    binary = Path(lines[-1]) / "jaeger"
    if not os.access(binary, os.X_OK):
        raise JaegerError(f"{binary} is missing after scripts/jaeger-binary")
    return binary


@dataclass(frozen=True)
class JaegerPorts:
    otlp_grpc: int
    otlp_http: int
    query_http: int
    query_grpc: int

    @classmethod
    def from_base(cls, base: int) -> JaegerPorts:
        return cls(base, base + 1, base + 2, base + 3)


def jaeger_config(ports: JaegerPorts, max_traces: int = MAX_TRACES) -> str:
    """A collector configuration that receives OTLP, keeps traces in memory and serves the
    query API and the trace page, listening on 127.0.0.1 only, with Jaeger's own telemetry off
    (its metrics would take a fixed port)."""
    document = {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
        },
        "extensions": {
            "jaeger_storage": {"backends": {"memstore": {"memory": {"max_traces": max_traces}}}},
            "jaeger_query": {
                "enable_tracing": False,
                "storage": {"traces": "memstore"},
                "http": {"endpoint": f"{LOCALHOST}:{ports.query_http}"},
                "grpc": {"endpoint": f"{LOCALHOST}:{ports.query_grpc}"},
                "ui": {"assets_path": str(UI_DIR)},
            },
        },
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"{LOCALHOST}:{ports.otlp_grpc}"},
                    "http": {"endpoint": f"{LOCALHOST}:{ports.otlp_http}"},
                }
            }
        },
        "processors": {"batch": {"timeout": "200ms"}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memstore"}},
    }
    return yaml.safe_dump(document, sort_keys=False)


class Jaeger:
    def __init__(self, state_dir: Path, ports: JaegerPorts, binary: Path) -> None:
        self.state_dir = state_dir
        self.ports = ports
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.state_dir / "jaeger.yaml"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "jaeger.log"

    @property
    def query_url(self) -> str:
        """The query API and Jaeger's page: /api/services, /api/traces?service=..."""
        return f"http://{LOCALHOST}:{self.ports.query_http}"

    @property
    def otlp_http_endpoint(self) -> str:
        return f"http://{LOCALHOST}:{self.ports.otlp_http}"

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"http://{LOCALHOST}:{self.ports.otlp_grpc}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def otel_environment(self, *, grpc: bool = False) -> dict[str, str]:
        """The standard variables that point a process's traces here, sent within half a
        second of their end."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_grpc_endpoint
            if grpc
            else self.otlp_http_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc" if grpc else "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "500",
        }

    def _serving(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.query_url}/api/services", timeout=2) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the process and return at once (`start` also waits until it serves)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(jaeger_config(self.ports))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.binary), "--config", f"file:{self.config_path}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in a terminal reaches the supervisor only
            )
        return self.process

    async def start(self, timeout: float = 30.0) -> None:
        await asyncio.to_thread(self.launch)
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self._serving):
            if self.process.poll() is not None:
                raise JaegerError(
                    f"jaeger exited with {self.process.returncode}; log {self.log_path}:\n"
                    + self.log_path.read_text(errors="replace")[-3000:]
                )
            if time.monotonic() > deadline:
                await self.stop()
                raise JaegerError(f"jaeger did not serve within {timeout:.0f}s ({self.log_path})")
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.to_thread(process.wait)
