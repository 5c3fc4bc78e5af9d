"""What the processes tell their operators: logs, listen addresses and the health endpoints
(metrics: egressgw/metrics_server.py; traces: egressgw/tracing.py).

Logs go to stderr, one line per record. The Azure SDK's HTTP logging is held at WARNING: at INFO
it prints request and response headers for every ARM call, which is noise at best.
`/healthz` answers while the process runs; `/readyz` once the worker polls and the watchers run,
which is what a Kubernetes readiness probe should gate on.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from aiohttp import web

from agent.http_server_log import server_log
from egressgw.listen_address import ListenAddress

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that are chatty at INFO and say nothing an operator acts on.
_QUIET_LOGGERS = ("azure", "azure.core.pipeline.policies.http_logging_policy", "aiohttp.access")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr, force=True)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class ListenError(ValueError):
    """An address from the flags that cannot be listened on (taken, not ours): a flag to fix,
    reported like any other unusable flag value."""


class PlainHttpServer:
    """A few GET routes over plain HTTP on one address, without access logs."""

    def __init__(self, address: ListenAddress) -> None:
        self._address = address
        self._runner: web.AppRunner | None = None
        self.port = address.port

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        self.routes(app)
        # A malformed request is one warning line (agent/http_server_log.py).
        self._runner = web.AppRunner(app, access_log=None, logger=server_log(__name__))
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._address.host, self._address.port)
        try:
            await site.start()
        except OSError as err:
            await self.stop()
            raise ListenError(
                f"cannot listen on {self._address.host}:{self._address.port} "
                f"({err.strerror or err}); choose another address or 'off'"
            ) from None
        server = site._server  # aiohttp has no public accessor for the bound port
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


class HealthServer(PlainHttpServer):
    """`/healthz` and `/readyz`; `ready` is asked on every probe."""

    def __init__(self, address: ListenAddress, ready: Callable[[], str | None]) -> None:
        super().__init__(address)
        self._ready = ready

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _request: web.Request) -> web.Response:
        problem = self._ready()
        if problem is None:
            return web.Response(text="ready\n")
        return web.Response(status=503, text=f"not ready: {problem}\n")
