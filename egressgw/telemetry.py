"""What the controller process tells its operators: logs and the health endpoints.

Logs go to stderr, one line per record. The Azure SDK's HTTP logging is held at WARNING: at INFO
it prints request and response headers for every ARM call, which is noise at best.
`/healthz` answers while the process runs; `/readyz` once the worker polls and the watchers run,
which is what a Kubernetes readiness probe should gate on.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that are chatty at INFO and say nothing an operator acts on.
_QUIET_LOGGERS = ("azure", "azure.core.pipeline.policies.http_logging_policy", "aiohttp.access")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr, force=True)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class HealthAddress:
    host: str
    port: int


def parse_health_address(text: str) -> HealthAddress | None:
    """`HOST:PORT`, `:PORT` (all interfaces) or `off`."""
    if text.strip().lower() in {"", "off", "none", "0"}:
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdecimal():
        raise ValueError(f"expected HOST:PORT, :PORT or off, got {text!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return HealthAddress(host=host.strip("[]") or "0.0.0.0", port=port)


class HealthServer:
    """`/healthz` and `/readyz` over plain HTTP; `ready` is asked on every probe."""

    def __init__(self, address: HealthAddress, ready: Callable[[], str | None]) -> None:
        self._address = address
        self._ready = ready
        self._runner: web.AppRunner | None = None
        self.port = address.port

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._address.host, self._address.port)
        await site.start()
        server = site._server  # aiohttp has no public accessor for the bound port
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _request: web.Request) -> web.Response:
        problem = self._ready()
        if problem is None:
            return web.Response(text="ready\n")
        return web.Response(status=503, text=f"not ready: {problem}\n")
