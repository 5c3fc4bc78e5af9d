"""The load balancer's health probe: `GET /gw/<sgc uid>` answers 200 while that configuration's
gateway is active on this node, 503 otherwise (docs/upstream-compatibility.md §3).

The internal load balancer sends a configuration's traffic only to nodes whose probe answers 200,
so stopping drains first: every probe answers 503 for `drain_seconds`, long enough for the load
balancer to take the node out of rotation, and only then does the server close.

It binds in the process's own network namespace, or in a named one (`listening_socket(...,
netns=...)`): the dev stack and tests give each agent a namespace that plays its node's host
namespace while the process itself stays in the root namespace.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Set
from typing import Final

from aiohttp import web
from pyroute2 import netns as pyroute2_netns

from agent.http_server_log import server_log
from contracts import kube_names

log = logging.getLogger(__name__)

# Connections that are closed once they have not completed a request within this time, whether
# idle between requests or still sending headers (aiohttp has one timer for both; upstream's
# ReadHeaderTimeout is 32 s, the stricter of its two).
CONNECTION_TIMEOUT_SECONDS: Final = 32.0
# Header limits: 128 fields of at most 8190 bytes bound a request's headers near upstream's
# 1 MiB MaxHeaderBytes.
MAX_HEADER_FIELDS: Final = 128
MAX_HEADER_FIELD_BYTES: Final = 8190
MAX_REQUEST_LINE_BYTES: Final = 8190
# After draining, requests in flight get this long before connections are closed.
SHUTDOWN_GRACE_SECONDS: Final = 5.0


# Pending connections the kernel queues while the server is busy (aiohttp's default).
LISTEN_BACKLOG: Final = 128


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def listening_socket(host: str, port: int, *, netns: str = "") -> socket.socket:
    """A listening TCP socket on host:port, in network namespace `netns` ("" = this process's).

    A socket stays in the namespace it was created in, so a short-lived thread enters the
    namespace (setns(2) changes only the calling thread), creates the socket and exits; the
    rest of the process never leaves its own namespace.
    """
    if not netns:
        return _bind(host, port)
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def bind_inside() -> None:
        try:
            pyroute2_netns.setns(netns, flags=0)  # flags=0: never create the namespace
            made.append(_bind(host, port))
        except (OSError, ValueError) as exc:  # handed to the caller's thread below
            failed.append(exc)

    thread = threading.Thread(target=bind_inside, name=f"bind in {netns}")
    thread.start()
    thread.join()
    if failed:
        raise OSError(f"cannot listen on {host}:{port} in network namespace {netns}: {failed[0]}")
    return made[0]


def probe_status(path_tail: str, active: Set[str], draining: bool) -> int:
    """The HTTP status for `/gw/<path_tail>`."""
    if not path_tail or "/" in path_tail:
        return 400  # not exactly /gw/<uid>
    if draining or path_tail not in active:
        return 503
    return 200


class ProbeServer:
    def __init__(
        self,
        host: str = "0.0.0.0",
        port: int = kube_names.PROBE_PORT,
        *,
        drain_seconds: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._drain_seconds = drain_seconds
        self._active: set[str] = set()
        self._draining = False
        self._runner: web.AppRunner | None = None

    async def start(self, sock: socket.socket | None = None) -> None:
        """Serve on `sock` when given (see listening_socket; the server closes it on stop),
        else on host:port in this process's namespace."""
        if self._runner is not None:
            raise RuntimeError("probe server already started")
        app = web.Application()
        app.router.add_get(kube_names.PROBE_PATH_PREFIX + "{tail:.*}", self._probe)
        runner = web.AppRunner(
            app,
            access_log=None,  # the load balancer probes every few seconds
            logger=server_log(__name__),  # a malformed request is one warning line
            shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
            keepalive_timeout=CONNECTION_TIMEOUT_SECONDS,
            max_headers=MAX_HEADER_FIELDS,
            max_field_size=MAX_HEADER_FIELD_BYTES,
            max_line_size=MAX_REQUEST_LINE_BYTES,
        )
        await runner.setup()
        try:
            if sock is not None:
                await web.SockSite(runner, sock).start()
            else:
                await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._draining = False
        self._runner = runner
        log.info("probe server listening on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        """Drain (all probes 503 for drain_seconds), then close. No-op when not started."""
        runner = self._runner
        if runner is None:
            return
        self._draining = True
        log.info("probe server draining for %.1f s", self._drain_seconds)
        try:
            await asyncio.sleep(self._drain_seconds)
        finally:
            # Closed even when the drain is cancelled: a lingering listener would keep
            # answering for a node that is going away.
            self._runner = None
            await runner.cleanup()
            log.info("probe server stopped")

    def activate(self, uid: str) -> None:
        self._active.add(uid)

    def deactivate(self, uid: str) -> None:
        self._active.discard(uid)

    def active(self) -> frozenset[str]:
        return frozenset(self._active)

    @property
    def port(self) -> int:
        """The bound port once started (port=0 binds a free one), else the configured one."""
        if self._runner is not None:
            for address in self._runner.addresses:
                if isinstance(address, tuple) and len(address) >= 2:
                    return int(address[1])
        return self._port

    async def _probe(self, request: web.Request) -> web.Response:
        status = probe_status(request.match_info["tail"], self._active, self._draining)
        return web.Response(status=status)
