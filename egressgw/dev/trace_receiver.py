"""`egressgw dev up --traces`: Jaeger v2 (sim/jaeger) beside the stack, and the standard OTEL_*
variables that send the controller's and the agents' spans to it.

Jaeger takes its usual ports (OTLP 4317 gRPC and 4318 HTTP, query 16686 and 16685) when they are
free and no --port-base was given, else a free block (endpoints.json names them). Its query API
answers at http://127.0.0.1:<query>/api/traces, and the same port serves the project's trace page
(sim/jaeger/ui) where Jaeger's own web UI would be (its assets are not in Jaeger's Go module nor on
the npm registry: tools/jaeger/README.md); `egressgw dev trace NAMESPACE/NAME` prints a
configuration's trace in the terminal.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from egressgw.dev.layout import LOCALHOST, DevStackError, StatePaths

if TYPE_CHECKING:
    from sim.jaeger.server import Jaeger

USUAL_PORTS: Final = (4317, 4318, 16686, 16685)  # OTLP gRPC, OTLP HTTP, query HTTP, query gRPC
TRACES_DIR: Final = "traces"


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((LOCALHOST, port))
        except OSError:
            return False
    return True


class DevTraces:
    def __init__(
        self, paths: StatePaths, progress: Callable[[str], None], *, usual_ports: bool = True
    ) -> None:
        """`usual_ports` False: a free block even when Jaeger's usual ports are free (stacks
        started side by side with --port-base)."""
        self._usual_ports = usual_ports
        self._paths = paths
        self._progress = progress
        self.jaeger: Jaeger | None = None

    async def start(self) -> None:
        from sim.jaeger.server import Jaeger, JaegerError, JaegerPorts, jaeger_binary
        from sim.ports import free_port_block

        self._progress("traces: Jaeger (built from tools/jaeger on first use: minutes)")
        try:
            binary = await asyncio.to_thread(jaeger_binary)
        except JaegerError as err:
            raise DevStackError(str(err)) from err
        if self._usual_ports and all(_free(port) for port in USUAL_PORTS):
            ports = JaegerPorts(*USUAL_PORTS)
        else:
            base = await asyncio.to_thread(free_port_block, 4, random.randrange(30000, 40000))
            ports = JaegerPorts.from_base(base)
        self.jaeger = Jaeger(self._paths.root / TRACES_DIR, ports, binary)
        try:
            await self.jaeger.start()
        except JaegerError as err:
            raise DevStackError(str(err)) from err
        self._progress(
            f"traces: OTLP on {self.jaeger.otlp_http_endpoint} (HTTP) and "
            f"{self.jaeger.otlp_grpc_endpoint} (gRPC), trace page and query API on "
            f"{self.jaeger.query_url}"
        )

    def environment(self) -> dict[str, str]:
        """What the controller and the agents get in their environment."""
        return self.jaeger.otel_environment() if self.jaeger is not None else {}

    def document(self) -> dict[str, Any]:
        jaeger = self.jaeger
        if jaeger is None:
            return {}
        return {
            "jaeger_pid": jaeger.pid,
            "jaeger_log": str(jaeger.log_path.resolve()),
            "jaeger_query_url": jaeger.query_url,
            "otlp_http_endpoint": jaeger.otlp_http_endpoint,
            "otlp_grpc_endpoint": jaeger.otlp_grpc_endpoint,
        }

    async def stop(self) -> None:
        jaeger, self.jaeger = self.jaeger, None
        if jaeger is not None:
            await jaeger.stop()
