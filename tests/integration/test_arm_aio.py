"""Long-running operations, conflicts, fault injection and the request log, through the aio
clients (the product's activities use these)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient

from egressgw.arm_transport import arm_transport
from sim.arm.server import ArmEmulator
from sim.topology import Topology

AsyncNet = Callable[..., Awaitable[NetworkManagementClient]]
AsyncCompute = Callable[..., Awaitable[ComputeManagementClient]]


def _prefix(topo: Topology, length: int = 30) -> dict[str, Any]:
    return {"location": topo.location, "properties": {"prefixLength": length}}


async def test_lro_stays_in_progress_for_its_latency_and_blocks_writes(
    async_network_client: AsyncNet, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    arm_emulator.set_latency({"PUT publicIPPrefixes": 1.0})
    net = await async_network_client()
    poller = await net.public_ip_prefixes.begin_create_or_update(t.resource_group, "p", _prefix(t))
    during = await net.public_ip_prefixes.get(t.resource_group, "p")
    assert during.provisioning_state == "Updating"
    with pytest.raises(HttpResponseError) as err:
        await net.public_ip_prefixes.begin_create_or_update(t.resource_group, "p", _prefix(t))
    assert err.value.status_code == 409
    assert err.value.error.code == "AnotherOperationInProgress"
    result = await poller.result()
    assert result.provisioning_state == "Succeeded"
    assert not poller.done() or poller.status() == "Succeeded"
    polls = [e for e in arm_emulator.request_log.entries if e.is_poll]
    assert len(polls) >= 2


async def test_failed_operation_fault_marks_resource_failed(
    async_network_client: AsyncNet, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    arm_emulator.faults.add(
        effect="fail-operation",
        method="PUT",
        resource_type="Microsoft.Network/publicIPPrefixes",
        count=1,
        code="InternalOperationError",
        message="boom",
    )
    net = await async_network_client()
    poller = await net.public_ip_prefixes.begin_create_or_update(t.resource_group, "p", _prefix(t))
    with pytest.raises(HttpResponseError) as err:
        await poller.result()
    assert "InternalOperationError" in str(err.value)
    assert (await net.public_ip_prefixes.get(t.resource_group, "p")).provisioning_state == "Failed"
    again = await (
        await net.public_ip_prefixes.begin_create_or_update(t.resource_group, "p", _prefix(t))
    ).result()
    assert again.provisioning_state == "Succeeded"


async def test_throttling_with_retry_after_is_honoured_by_the_sdk(
    async_network_client: AsyncNet, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    rule = arm_emulator.faults.add(
        effect="throttle", method="GET", resource_type="loadBalancers", count=1, retry_after=1
    )
    net = await async_network_client()
    start = time.monotonic()
    with pytest.raises(HttpResponseError) as err:
        await net.load_balancers.get(t.resource_group, "absent")
    waited = time.monotonic() - start
    # The 429 was retried after Retry-After, then the real answer (404) came back.
    assert err.value.status_code == 404
    assert rule.hits == 1
    statuses = [e.status for e in arm_emulator.request_log.entries]
    assert statuses == [429, 404]
    assert arm_emulator.request_log.count("GET", "loadBalancers") == 2
    assert waited >= 0.9


async def test_throttling_surfaces_429_when_retries_are_off(
    async_network_client: AsyncNet, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    arm_emulator.faults.add(effect="throttle", resource_type="loadBalancers", retry_after=7)
    net = await async_network_client(retry_total=0)
    with pytest.raises(HttpResponseError) as err:
        await net.load_balancers.get(t.resource_group, "x")
    assert err.value.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert err.value.error.code == "TooManyRequests"


async def test_server_errors_and_conflicts_are_injected(
    async_network_client: AsyncNet, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    net = await async_network_client(retry_total=0)
    arm_emulator.faults.add(effect="error", status=503, method="PUT", count=1)
    with pytest.raises(HttpResponseError) as err:
        await net.public_ip_prefixes.begin_create_or_update(t.resource_group, "p", _prefix(t))
    assert err.value.status_code == 503
    arm_emulator.faults.add(effect="conflict", method="PUT", count=1)
    with pytest.raises(HttpResponseError) as err:
        await net.public_ip_prefixes.begin_create_or_update(t.resource_group, "p", _prefix(t))
    assert err.value.status_code == 409
    # Both rules used up their count: the write now goes through.
    created = await (
        await net.public_ip_prefixes.begin_create_or_update(t.resource_group, "p", _prefix(t))
    ).result()
    assert created.ip_prefix


async def test_dropped_connection_is_retried_by_the_sdk(
    async_network_client: AsyncNet, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    arm_emulator.faults.add(effect="drop", method="GET", resource_type="virtualNetworks", count=1)
    net = await async_network_client()
    vnet = await net.virtual_networks.get(t.resource_group, t.vnet_name)
    assert vnet.name == t.vnet_name
    assert [e.status for e in arm_emulator.request_log.entries] == [0, 200]
    arm_emulator.faults.add(effect="drop", resource_type="virtualNetworks")
    no_retry = await async_network_client(retry_total=0)
    with pytest.raises(ServiceRequestError):
        await no_retry.virtual_networks.get(t.resource_group, t.vnet_name)


async def test_a_write_whose_answer_is_lost_is_applied_and_not_sent_again(
    async_network_client: AsyncNet, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    arm_emulator.set_latency({"PUT publicIPPrefixes": 1.0})
    arm_emulator.faults.add(
        effect="drop-after-accept", method="PUT", resource_type="publicIPPrefixes", count=1
    )
    log = arm_emulator.request_log
    log.clear()
    # The product's transport (egressgw/arm_transport.py) and no SDK retries, as the worker has.
    net = await async_network_client(
        retry_total=0, transport=arm_transport(str(arm_emulator.ca_path))
    )
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        await net.public_ip_prefixes.begin_create_or_update(t.resource_group, "lost", _prefix(t))
    # ARM took the write and runs its operation; the client only lost the answer.
    assert [(e.method, e.status) for e in log.entries] == [("PUT", 0)]
    during = await net.public_ip_prefixes.get(t.resource_group, "lost")
    assert during.provisioning_state == "Updating"
    # aiohttp's own transport would have sent the PUT a second time into that operation.
    blind = await async_network_client(retry_total=0)
    arm_emulator.faults.add(
        effect="drop-after-accept", method="PUT", resource_type="publicIPPrefixes", count=1
    )
    log.clear()
    with pytest.raises(HttpResponseError) as err:
        await blind.public_ip_prefixes.begin_create_or_update(t.resource_group, "other", _prefix(t))
    assert err.value.status_code == 409
    assert [(e.method, e.status) for e in log.entries] == [("PUT", 0), ("PUT", 409)]


async def test_request_log_counts_reads_and_writes(
    async_network_client: AsyncNet,
    async_compute_client: AsyncCompute,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
) -> None:
    t = arm_topology
    net = await async_network_client()
    cmp = await async_compute_client()
    log = arm_emulator.request_log
    log.clear()
    await (
        await net.public_ip_prefixes.begin_create_or_update(t.resource_group, "p", _prefix(t))
    ).result()
    [s async for s in cmp.virtual_machine_scale_sets.list(t.resource_group)]
    await cmp.virtual_machine_scale_sets.get(t.resource_group, t.vmss_pools[0].vmss_name)
    assert log.writes() == 1
    assert log.count("PUT", "publicIPPrefixes") == 1
    assert log.reads("Microsoft.Compute/virtualMachineScaleSets") == 2
    # The prefix's final GET after polling counts as a read too.
    assert log.reads("publicIPPrefixes") == 1
    put = next(e for e in log.entries if e.method == "PUT")
    assert put.api_version == "2026-03-01"
    assert put.status == 201


async def test_concurrent_lros_from_aio_clients(
    async_network_client: AsyncNet, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    arm_emulator.set_latency({"PUT publicIPPrefixes": 0.2})
    net = await async_network_client()
    pollers = [
        await net.public_ip_prefixes.begin_create_or_update(
            t.resource_group, f"p{i}", _prefix(t, 31)
        )
        for i in range(5)
    ]
    results = await asyncio.gather(*(p.result() for p in pollers))
    assert len({r.ip_prefix for r in results}) == 5
    assert all(r.provisioning_state == "Succeeded" for r in results)


async def test_poller_resumes_from_a_continuation_token(
    async_network_client: AsyncNet, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    arm_emulator.set_latency({"PUT publicIPPrefixes": 0.4})
    first = await async_network_client()
    poller = await first.public_ip_prefixes.begin_create_or_update(
        t.resource_group, "resumed", _prefix(t)
    )
    token = poller.continuation_token()
    # Another client (a retried activity) picks the operation up where the first left it.
    second = await async_network_client()
    resumed = await second.public_ip_prefixes.begin_create_or_update(
        t.resource_group, "resumed", None, continuation_token=token
    )
    result = await resumed.result()
    assert result.provisioning_state == "Succeeded"
    assert result.name == "resumed"
    assert (await poller.result()).name == "resumed"
