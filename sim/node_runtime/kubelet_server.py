"""The node's kubelet endpoint: HTTPS with the node's serving certificate, client certificates
required and verified against the cluster CA (kube-apiserver presents its kubelet client
certificate). It serves what `kubectl logs` needs through the API server:

    GET /containerLogs/{namespace}/{pod}/{container}?follow=&tailLines=&previous=&limitBytes=
    GET /healthz

`timestamps` and `sinceSeconds` are accepted and ignored: log files hold the output as written.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web

from sim.node_runtime.container_logs import read_run, tail_lines

FOLLOW_POLL: Final = 0.2


@dataclass(frozen=True)
class LogTarget:
    file: Path  # the run's current log file
    running: Callable[[], bool]  # whether the run still writes to it


class LogLookupError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


LogLookup = Callable[[str, str, str, bool], LogTarget]


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f"not an integer: {value!r}\n") from None


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


class KubeletServer:
    def __init__(
        self,
        lookup: LogLookup,
        *,
        host: str,
        port: int,
        cert: Path,
        key: Path,
        client_ca: Path,
    ) -> None:
        self.lookup = lookup
        self.host = host
        self.port = port
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(client_ca))
        ctx.load_cert_chain(str(cert), str(key))
        ctx.verify_mode = ssl.CERT_REQUIRED
        self._ssl = ctx
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self._ssl)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        try:
            target = self.lookup(
                request.match_info["namespace"],
                request.match_info["pod"],
                request.match_info["container"],
                _flag(q.get("previous")),
            )
        except LogLookupError as err:
            return web.Response(status=err.status, text=f"{err}\n")
        everything, offset = read_run(target.file)
        data = tail_lines(everything, _int(q.get("tailLines")))
        limit = _int(q.get("limitBytes"))
        if limit is not None:
            data = data[:limit]
        if not _flag(q.get("follow")):
            return web.Response(body=data, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(data)
        sent = len(data) if limit is not None else None
        while True:
            running = target.running()
            size = target.file.stat().st_size if target.file.exists() else 0
            if size < offset:  # capped (copy-and-truncate): continue from the new start
                offset = 0
            if size > offset:
                with target.file.open("rb") as f:
                    f.seek(offset)
                    chunk = f.read(size - offset)
                offset = size
                if limit is not None and sent is not None:
                    chunk = chunk[: max(0, limit - sent)]
                    sent += len(chunk)
                if chunk:
                    await response.write(chunk)
                if limit is not None and sent is not None and sent >= limit:
                    break
                continue
            if not running:
                break
            await asyncio.sleep(FOLLOW_POLL)
        await response.write_eof()
        return response
