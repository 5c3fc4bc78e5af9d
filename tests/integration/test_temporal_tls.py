"""The controller's and the agent's Temporal connection over mTLS, as against a self-hosted
cluster with its own CA: a TLS front (this machine, loopback only) that requires a client
certificate from that CA and passes the bytes on to the session's Temporal dev server. With the
CA and the client pair the connection serves requests; without the client certificate the
front refuses the handshake and the process keeps waiting (it is told to stop, nothing more)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from egressgw.dev.temporal_server import TemporalDevServer
from egressgw.service_clients import connect_temporal
from egressgw.temporal_connection import TemporalConnection, TemporalTls
from sim.control_plane.pki import ensure_client_certificate
from sim.tls import CA_CERT_FILE, ensure_server_certificate
from tests.fixtures.waiting import wait_for


@dataclass
class TlsFront:
    port: int
    refused_handshakes: int = 0
    served: int = 0
    writers: set[asyncio.StreamWriter] = field(default_factory=set)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError):
        writer.close()


@contextlib.asynccontextmanager
async def tls_front(pki: Path, upstream: str) -> AsyncIterator[TlsFront]:
    server_cert = ensure_server_certificate(pki, "temporal-frontend", ("127.0.0.1", "localhost"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / CA_CERT_FILE))
    context.load_cert_chain(server_cert.cert_path, server_cert.key_path)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])  # gRPC
    host, port = upstream.rsplit(":", 1)
    front = TlsFront(port=0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        front.writers.add(writer)
        try:
            await writer.start_tls(context)  # the handshake, done here to see it fail
        except (ssl.SSLError, ConnectionError, OSError):
            front.refused_handshakes += 1
            writer.close()
            return
        front.served += 1
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        front.writers.add(up_writer)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    front.port = server.sockets[0].getsockname()[1]
    try:
        yield front
    finally:
        server.close()
        for writer in front.writers:
            writer.close()
        await server.wait_closed()


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    ensure_client_certificate(tmp_path, "worker", "egressgw-controller")
    return tmp_path


async def test_mtls_with_an_own_ca_serves_requests(
    temporal_server: TemporalDevServer, pki: Path
) -> None:
    async with tls_front(pki, temporal_server.address) as front:
        connection = TemporalConnection(
            f"127.0.0.1:{front.port}",
            "default",
            TemporalTls(
                server_ca=(pki / CA_CERT_FILE).read_bytes(),
                client_cert=(pki / "worker.crt").read_bytes(),
                client_key=(pki / "worker.key").read_bytes(),
                server_name="localhost",
            ),
        )

        # A bound for a broken wiring, which would retry forever; not a time assertion.
        client = await asyncio.wait_for(connect_temporal(connection, asyncio.Event()), 120)

        assert client is not None
        assert (await client.service_client.check_health()) is True
        assert front.served >= 1 and front.refused_handshakes == 0


async def test_without_the_client_certificate_the_process_waits_and_stops_when_told(
    temporal_server: TemporalDevServer, pki: Path
) -> None:
    async with tls_front(pki, temporal_server.address) as front:
        connection = TemporalConnection(
            f"127.0.0.1:{front.port}",
            "default",
            TemporalTls(server_ca=(pki / CA_CERT_FILE).read_bytes()),
        )
        stop = asyncio.Event()
        attempt = asyncio.create_task(connect_temporal(connection, stop, max_wait=0.5))

        async def refused() -> bool:
            return front.refused_handshakes >= 1 and not attempt.done()

        await wait_for(refused, timeout=60, what="a refused handshake")
        stop.set()

        assert await attempt is None
