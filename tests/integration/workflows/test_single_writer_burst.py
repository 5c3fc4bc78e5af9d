"""Many configurations waiting on one load balancer and one pool workflow at once.

Requests reach the single writers by signal and are answered by completing the caller's
activity, so the server's limit of 10 in-flight updates per workflow does not apply: 30
configurations created together all become Ready, sharing a handful of Azure writes.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from contracts.workflow_io import SpecDelivery
from tests.fixtures.workflow_stack import Stack, StackOptions

BURST = 30


@pytest.fixture
def stack_options() -> StackOptions:
    return StackOptions(batch_quiet=timedelta(seconds=0.3), batch_window=timedelta(seconds=3))


@pytest.mark.slow
async def test_thirty_configurations_at_once_all_become_ready(stack: Stack) -> None:
    spec = stack.vmss_spec(public_ip_prefix_id="")
    refs = [await stack.create_sgc(f"burst-{i}", spec) for i in range(BURST)]
    stack.arm.request_log.clear()

    statuses = await asyncio.gather(
        *(stack.apply(SpecDelivery(sgc=ref, generation=1, spec=spec)) for ref in refs)
    )

    assert [s.phase for s in statuses] == ["Ready"] * BURST, {s.message for s in statuses}
    assert len({s.port for s in statuses}) == BURST  # one rule port each, no conflict
    lb_puts = [
        e
        for e in stack.arm.request_log.entries
        if e.method == "PUT" and e.resource_type == "loadBalancers"
    ]
    assert len(lb_puts) < BURST / 2  # batched, not one write per configuration
