"""The load balancer's health probe, spoken to over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from agent.probe_server import ProbeServer, listening_socket

UID = "0b6f5c1e-3f5a-4c1e-9a55-2d4c7a1f0e01"
OTHER_UID = "7d0e2b44-90a1-4b8e-8f0c-5f1c2a9d3b77"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A new connection per request, as the load balancer probes: closed server = refused.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session


@pytest.fixture
async def server() -> AsyncIterator[ProbeServer]:
    probe = ProbeServer("127.0.0.1", 0, drain_seconds=0.1)
    await probe.start()
    try:
        yield probe
    finally:
        await probe.stop()


async def status_of(http: aiohttp.ClientSession, server: ProbeServer, path: str) -> int:
    async with http.get(f"http://127.0.0.1:{server.port}{path}") as response:
        await response.read()
        return response.status


async def test_binds_a_free_port_when_asked_for_port_zero(server: ProbeServer) -> None:
    assert server.port > 0


async def test_active_configuration_answers_200_others_503(
    server: ProbeServer, http: aiohttp.ClientSession
) -> None:
    server.activate(UID)

    assert await status_of(http, server, f"/gw/{UID}") == 200
    assert await status_of(http, server, f"/gw/{OTHER_UID}") == 503
    assert server.active() == frozenset({UID})


async def test_deactivated_configuration_answers_503(
    server: ProbeServer, http: aiohttp.ClientSession
) -> None:
    server.activate(UID)
    server.activate(OTHER_UID)
    server.deactivate(UID)
    server.deactivate("never-active")  # harmless

    assert await status_of(http, server, f"/gw/{UID}") == 503
    assert await status_of(http, server, f"/gw/{OTHER_UID}") == 200
    assert server.active() == frozenset({OTHER_UID})


@pytest.mark.parametrize("path", ["/gw/", f"/gw/{UID}/extra", f"/gw/{UID}/", "/gw//x"])
async def test_a_path_that_is_not_exactly_gw_uid_is_a_bad_request(
    server: ProbeServer, http: aiohttp.ClientSession, path: str
) -> None:
    server.activate(UID)

    assert await status_of(http, server, path) == 400


@pytest.mark.parametrize("path", ["/", "/healthz", f"/gateway/{UID}"])
async def test_other_paths_are_not_found(
    server: ProbeServer, http: aiohttp.ClientSession, path: str
) -> None:
    assert await status_of(http, server, path) == 404


async def test_oversized_headers_are_refused_and_the_server_keeps_answering(
    server: ProbeServer, http: aiohttp.ClientSession
) -> None:
    server.activate(UID)
    url = f"http://127.0.0.1:{server.port}/gw/{UID}"

    async with http.get(url, headers={"X-Padding": "a" * 20_000}) as response:
        assert 400 <= response.status < 500

    assert await status_of(http, server, f"/gw/{UID}") == 200


async def test_stop_drains_with_503_then_refuses_connections(
    http: aiohttp.ClientSession,
) -> None:
    probe = ProbeServer("127.0.0.1", 0, drain_seconds=2.0)
    await probe.start()
    probe.activate(UID)
    assert await status_of(http, probe, f"/gw/{UID}") == 200
    port = probe.port

    stopping = asyncio.create_task(probe.stop())
    await asyncio.sleep(0)  # let stop() begin draining
    try:
        # Still active on this node, but the node is going away: the load balancer must stop
        # sending new flows here before the listener closes.
        assert UID in probe.active()
        assert await status_of(http, probe, f"/gw/{UID}") == 503
    finally:
        await stopping

    with pytest.raises(aiohttp.ClientConnectorError):
        async with http.get(f"http://127.0.0.1:{port}/gw/{UID}"):
            pass


async def test_can_be_stopped_when_never_started() -> None:
    await ProbeServer("127.0.0.1", 0, drain_seconds=0).stop()


async def test_serves_on_a_socket_made_for_it(http: aiohttp.ClientSession) -> None:
    probe = ProbeServer("127.0.0.1", 0, drain_seconds=0)
    await probe.start(listening_socket("127.0.0.1", 0))
    try:
        probe.activate(UID)
        assert await status_of(http, probe, f"/gw/{UID}") == 200
    finally:
        await probe.stop()


def test_a_missing_network_namespace_is_named() -> None:
    name = "egressgw-no-such-netns"
    with pytest.raises(OSError, match=name):
        listening_socket("127.0.0.1", 0, netns=name)
