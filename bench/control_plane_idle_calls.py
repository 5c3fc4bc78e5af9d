"""(c) Azure calls per configuration per hour when nothing changes (drift checks only).

Configurations are made Ready with a shortened drift-check interval; then every ARM request over
a quiet window is counted and scaled to the default 5-minute interval, next to the Go
implementation's 5-minute recheck (about 12 load balancer GETs + 12 VMSS GETs + 12 GETs per
instance per hour and configuration).
    .venv/bin/python bench/control_plane_idle_calls.py [--configs N] [--interval S] [--window S]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
from datetime import datetime

from control_plane_stack import SGC_NAMESPACE, BenchStack, bench_stack
from temporalio.client import Client

from contracts import resource_names
from contracts.activity_io import ENSURE_POOL_IP_CONFIG

DEFAULT_INTERVAL = 300.0
CHECKS_PER_HOUR = 3600 / DEFAULT_INTERVAL


async def drift_passes(stack: BenchStack, names: set[str], start: float, end: float) -> int:
    """Drift passes that began in [start, end]: each pass asks the pool for its ipConfig once."""
    client = await Client.connect(stack.temporal.address)
    passes = 0
    for name in names:
        workflow_id = resource_names.gateway_config_workflow_id(SGC_NAMESPACE, name)
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        for event in history.events:
            if not event.HasField("activity_task_scheduled_event_attributes"):
                continue
            attributes = event.activity_task_scheduled_event_attributes
            at = event.event_time.ToDatetime().timestamp()
            if attributes.activity_type.name == ENSURE_POOL_IP_CONFIG and start <= at <= end:
                passes += 1
    return passes


async def main(configs: int, interval: float, window: float) -> None:
    async with bench_stack(drift_check=f"{interval}s") as stack:
        instances = stack.topology.vmss_pools[0].instance_count
        names = {f"idle-{index}" for index in range(configs)}
        for name in sorted(names):
            await stack.create_sgc(name, stack.vmss_spec(31))
        await stack.wait_ready(names, timeout=120)
        await asyncio.sleep(interval)  # let the first drift passes start from a settled state
        stack.arm.request_log.clear()
        start = datetime.now().timestamp()
        await asyncio.sleep(window)
        entries = list(stack.arm.request_log.entries)
        passes = await drift_passes(stack, names, start, start + window)
    kinds = collections.Counter(
        f"{e.method} {(e.resource_type or e.path).split('/', 1)[-1]}"
        for e in entries
        if not e.is_poll
    )
    polls = sum(1 for e in entries if e.is_poll)
    writes = sum(1 for e in entries if e.method != "GET" and not e.is_poll)
    # Calls per drift pass of one configuration, then per hour at the 5-minute default (a pass
    # takes a second or two, so at a short interval there are fewer passes than window/interval).
    per_check = (len(entries) - polls) / passes
    for kind, count in sorted(kinds.items()):
        print(f"    {count / passes:6.2f} per drift pass  {kind}")
    go = CHECKS_PER_HOUR * (2 + instances)
    print(
        f"idle: {passes} drift passes; {per_check:.1f} ARM calls per pass ({writes} writes, "
        f"{polls} polls in the window) -> {per_check * CHECKS_PER_HOUR:.0f} per configuration per "
        f"hour at a 5-minute interval; Go implementation about {go:.0f} "
        f"(12 LB + 12 VMSS + 12 x {instances} instance GETs); {configs} configurations, "
        f"measured over {window:.0f} s at a {interval:.0f} s interval"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=3)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=30.0)
    args = parser.parse_args()
    asyncio.run(main(args.configs, args.interval, args.window))
