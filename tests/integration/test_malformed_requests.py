"""What reaches the probe, health and metrics ports that is not HTTP, or not valid HTTP (a TLS
client, a scanner, a broken client): a 400 and one warning line each, no traceback, and none of
the request's bytes in the log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from agent.probe_server import ProbeServer
from egressgw.listen_address import ListenAddress
from egressgw.metrics_server import MetricsServer
from egressgw.telemetry import HealthServer

SECRET = "s3cr3t-token-value"
MALFORMED = [
    b"GARBAGE / HTTP/1.1\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello's start
    b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
    f"GET / HTTP/1.1\r\nAuthorization: Bearer {SECRET}\x01\r\n\r\n".encode(),
]


@pytest.fixture(params=["probe", "health", "metrics"])
async def port(request: pytest.FixtureRequest) -> AsyncIterator[int]:
    address = ListenAddress("127.0.0.1", 0)
    if request.param == "probe":
        probe = ProbeServer("127.0.0.1", 0, drain_seconds=0)
        await probe.start()
        yield probe.port
        await probe.stop()
        return
    server = (
        HealthServer(address, lambda: None)
        if request.param == "health"
        else MetricsServer(address, CollectorRegistry())
    )
    await server.start()
    yield server.port
    await server.stop()


async def send(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await reader.read(4096)
    writer.close()
    await writer.wait_closed()
    return answer


@pytest.mark.parametrize("data", MALFORMED, ids=range(len(MALFORMED)))
async def test_a_malformed_request_is_answered_400_and_logged_in_one_line(
    port: int, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    answer = await send(port, data)
    await asyncio.sleep(0.05)  # the log record is written after the answer

    assert answer.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400"))
    records = [r for r in caplog.records if r.name.startswith(("agent", "egressgw", "aiohttp"))]
    assert [r.levelno for r in records if "malformed request" in r.getMessage()] == [
        logging.WARNING
    ]
    assert all(r.exc_info is None for r in records)
    assert all("\n" not in r.getMessage() for r in records)
    assert SECRET not in caplog.text
    assert "127.0.0.1" in caplog.text
