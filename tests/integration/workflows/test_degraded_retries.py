"""How a Degraded configuration tries again: on the drift timer, backing off after consecutive
failures, and checking the public IP prefix before it asks for a load balancer rule, so a refusal
that needs the user (here: a bring-your-own prefix of the wrong length) costs no Azure write per
retry.

Set EGRESSGW_RECORD_HISTORIES=1 to (re)write this run's history under tests/replay/next/.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from azure.mgmt.network.aio import NetworkManagementClient
from temporalio.api.enums.v1 import EventType

from contracts.workflow_io import GET_STATUS, ConfigurationStatus, SpecDelivery
from tests.fixtures.waiting import wait_for
from tests.fixtures.workflow_stack import Stack, StackOptions, create_prefix


@pytest.fixture
def stack_options() -> StackOptions:
    return StackOptions(batch_quiet=timedelta(0), drift_check_seconds=1)


async def test_a_refused_configuration_backs_off_and_writes_nothing_on_retries(
    stack: Stack,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
) -> None:
    network = await async_network_client()
    rg = stack.topology.resource_group
    prefix_id = await create_prefix(network, stack, rg, "too-short", 30)
    spec = stack.vmss_spec(public_ip_prefix_id=prefix_id)
    sgc = await stack.create_sgc("refused", spec)

    first = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
    assert first.phase == "Degraded" and "/31 prefix" in first.message
    stack.arm.request_log.clear()
    handle = stack.handle(sgc)

    async def failed_four_times() -> bool:
        status: ConfigurationStatus = await handle.query(
            GET_STATUS, result_type=ConfigurationStatus
        )
        return status.failed_passes >= 4

    await wait_for(failed_four_times, timeout=60, what="three retries on the drift timer")

    # Retries settle the prefix first: the refusal costs a read, never a rule to compensate.
    log = stack.arm.request_log
    assert log.writes() == 0, [(e.method, e.path) for e in log.entries if e.method != "GET"]
    assert log.count("GET", "publicIPPrefixes") >= 3
    # The retry timer doubles after each consecutive failure: 1 s, 1 s, 2 s, 4 s ...
    waits: list[float] = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            waits.append(event.timer_started_event_attributes.start_to_fire_timeout.ToSeconds())
    assert waits[:3] == [1, 2, 4], waits
    await stack.record("degraded_backoff_prefix_first", sgc)
