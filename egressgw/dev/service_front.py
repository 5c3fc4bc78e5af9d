"""The dev stack's own services as the node network reaches them: the API server at the
`kubernetes` Service's ClusterIP (10.96.0.1:443, what a kubelet puts into pods'
KUBERNETES_SERVICE_HOST/PORT and what the API server's certificate names), and Temporal and the
ARM emulator at one "services" address (SERVICES_IP, on their own ports).

All three listen on the machine's loopback, which no node or pod namespace reaches; the router
of the node network (where every node's and pod's default route leads) holds these addresses on
its `lo`, and a TCP relay in this process, listening inside the router's namespace, passes each
connection to the loopback port. TLS goes through untouched: the API server's certificate names
10.96.0.1 and the ARM emulator's names SERVICES_IP. This plays the part of kube-proxy (for the
`kubernetes` Service) and of the load balancers a real cluster reaches its Temporal and Azure by.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from egressgw.dev.layout import LOCALHOST

KUBERNETES_SERVICE_IP: Final = "10.96.0.1"
KUBERNETES_SERVICE_PORT: Final = 443
# TEST-NET-1: in no range of the cluster (VNet, pods, services), so nothing else claims it.
SERVICES_IP: Final = "192.0.2.10"
CLONE_NEWNET: Final = 0x40000000
_CHUNK: Final = 65536


@dataclass(frozen=True)
class Relay:
    """`listen_ip:listen_port` in the router's namespace → LOCALHOST:target_port here."""

    name: str
    listen_ip: str
    listen_port: int
    target_port: int


def relays(kube_api: int, temporal: int, arm: int) -> list[Relay]:
    return [
        Relay("kube-apiserver", KUBERNETES_SERVICE_IP, KUBERNETES_SERVICE_PORT, kube_api),
        Relay("temporal", SERVICES_IP, temporal, temporal),
        Relay("arm", SERVICES_IP, arm, arm),
    ]


def listen_in_netns(netns: str, address: str, port: int) -> socket.socket:
    """A listening TCP socket inside the named namespace: made by a short-lived thread that
    joins the namespace (setns acts on the calling thread only); the socket stays there."""
    made: list[socket.socket] = []
    failed: list[OSError] = []

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/var/run/netns/{netns}", "rb") as handle:
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns}: {os.strerror(err)}")
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((address, port))
            server.listen(128)
            server.setblocking(False)
            made.append(server)
        except OSError as err:  # reported to the caller below
            failed.append(err)

    thread = threading.Thread(target=run, name=f"listen-{netns}")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


class ServiceFront:
    """The relays, running on the caller's event loop until stop()."""

    def __init__(self, router_netns: str, wanted: Sequence[Relay]) -> None:
        self.router_netns = router_netns
        self.wanted = tuple(wanted)
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()

    def _add_addresses(self) -> None:
        from sim.fabric import namespaces

        with namespaces.open_handle(self.router_netns) as ipr:
            for address in sorted({relay.listen_ip for relay in self.wanted}):
                namespaces.add_address(ipr, "lo", address, 32)

    async def start(self) -> None:
        # pyroute2's synchronous handle runs an event loop of its own: not on this thread.
        await asyncio.to_thread(self._add_addresses)
        for relay in self.wanted:
            sock = listen_in_netns(self.router_netns, relay.listen_ip, relay.listen_port)
            server = await asyncio.start_server(self._handler(relay.target_port), sock=sock)
            self._servers.append(server)

    def _handler(
        self, target_port: int
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._connections.add(task)
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    LOCALHOST, target_port
                )
            except OSError:
                writer.close()
                self._connections.discard(task)
                return
            try:
                await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            finally:
                for w in (writer, upstream_writer):
                    w.close()
                self._connections.discard(task)

        return handle

    async def stop(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        for server in servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
