"""The instance metadata address, 169.254.169.254:80, inside the fabric's node namespaces.

Clients on a VM look for IMDS (and managed identity tokens) there and nowhere else: azure-identity
and MSAL hard-code it, and Go's azidentity cannot be pointed elsewhere. The router namespace holds
the address on its loopback (every node's default route leads to the router, so nodes and their
pods reach it as they reach Azure's host), and a relay accepts those connections and forwards
each to the IMDS emulator (sim/imds.py, in the caller's namespace) of the VM it came from,
chosen by the source address: a node's primary IP and its pod CIDR both belong to that node, as
on Azure, where a pod's IMDS answers are its node's.

    relay = ImdsRelay(plan.router_netns, routes_for_nodes(plan.nodes, targets))
    await relay.start()   # then `curl -H Metadata:true http://169.254.169.254/...` in a node
    await relay.stop()

The listening socket is created inside the router namespace (by a thread that enters it for
that moment) and served by the caller's event loop; the connections to the emulators are made
from the caller's namespace, so emulators on 127.0.0.1 are fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pyroute2 import NetlinkError, netns

from sim.fabric import namespaces
from sim.fabric.plan import NodePlan

log = logging.getLogger(__name__)

IMDS_ADDRESS = "169.254.169.254"
IMDS_PORT = 80
_COPY_CHUNK = 64 * 1024
_CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Target:
    """Where one VM's IMDS emulator listens (in the relay owner's namespace)."""

    host: str
    port: int


def routes_for_nodes(nodes: Iterable[NodePlan], targets: Mapping[str, Target]) -> dict[str, Target]:
    """Source networks -> IMDS, for the nodes that have one in `targets` (keyed by node name):
    each node's primary IP and its pod CIDR."""
    routes: dict[str, Target] = {}
    for node in nodes:
        target = targets.get(node.name)
        if target is not None:
            routes[f"{node.primary_ip}/32"] = target
            routes[node.pod_cidr] = target
    return routes


def target_for(source_ip: str, routes: Mapping[str, Target]) -> Target | None:
    """The IMDS for a connection from `source_ip`: the most specific network holding it."""
    try:
        address = ipaddress.IPv4Address(source_ip)
    except ValueError:
        return None
    best: tuple[int, Target] | None = None
    for cidr, target in routes.items():
        network = ipaddress.IPv4Network(cidr, strict=False)
        if address in network and (best is None or network.prefixlen > best[0]):
            best = (network.prefixlen, target)
    return None if best is None else best[1]


def _listen_in(netns_name: str, address: str, port: int) -> socket.socket:
    """A listening TCP socket that belongs to `netns_name` (entered by this thread only)."""
    netns.pushns(netns_name)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(64)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock
    finally:
        netns.popns()


def _hold_address(netns_name: str, address: str, *, present: bool) -> None:
    with namespaces.open_handle(netns_name) as ipr:
        if present:
            namespaces.add_address(ipr, "lo", address, 32)
            return
        with contextlib.suppress(NetlinkError, FileNotFoundError):
            ipr.addr("del", index=namespaces.index(ipr, "lo"), address=address, prefixlen=32)


class ImdsRelay:
    """Serves IMDS_ADDRESS:IMDS_PORT in `router_netns`, relaying by source address."""

    def __init__(
        self,
        router_netns: str,
        routes: Mapping[str, Target],
        *,
        address: str = IMDS_ADDRESS,
        port: int = IMDS_PORT,
    ) -> None:
        self.router_netns = router_netns
        self.routes = dict(routes)
        self.address = address
        self.port = port
        self.refused: list[str] = []  # sources that have no IMDS here (connection closed)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await asyncio.to_thread(_hold_address, self.router_netns, self.address, present=True)
        sock = await asyncio.to_thread(_listen_in, self.router_netns, self.address, self.port)
        self._server = await asyncio.start_server(self._accept, sock=sock)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(OSError):
            await asyncio.to_thread(_hold_address, self.router_netns, self.address, present=False)

    async def __aenter__(self) -> ImdsRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._relay(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer: Any = writer.get_extra_info("peername")
        source = str(peer[0]) if peer else ""
        target = target_for(source, self.routes)
        if target is None:
            # Like a VM without IMDS: nothing answers.
            self.refused.append(source)
            await _close(writer)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port), _CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            log.warning("IMDS relay: %s:%s unreachable for %s: %s", target.host, target.port,
                        source, exc)  # fmt: skip
            await _close(writer)
            return
        try:
            await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
        finally:
            await _close(up_writer)
            await _close(writer)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_COPY_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()
