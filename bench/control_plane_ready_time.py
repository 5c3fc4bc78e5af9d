"""(a) Time for one configuration to become Ready with realistic ARM latencies, divided by the sum
of latencies on the dependency critical path: max(LB PUT, prefix PUT) + VMSS model PUT + instance
update = max(3, 2) + 5 + 10 = 18 s. Target: <= 1.10.

Measured from the `create` of the StaticGatewayConfiguration to the first read that shows it
Ready (polled every 0.1 s), through the real controller process, watchers and workflows; by
default once with the controller's metrics and tracing off and once with both on (/metrics
scraped every second, every span sent to a local Jaeger), to show what they cost.
    .venv/bin/python bench/control_plane_ready_time.py [--runs N] [--telemetry off|on|both]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from control_plane_stack import REALISTIC_LATENCY, bench_stack

from sim.arm.request_log import LoggedRequest

CRITICAL_PATH = (
    max(REALISTIC_LATENCY["PUT loadBalancers"], REALISTIC_LATENCY["PUT publicIPPrefixes"])
    + REALISTIC_LATENCY["PUT virtualMachineScaleSets"]
    + REALISTIC_LATENCY["PUT virtualMachineScaleSets/virtualMachines"]
)


def timeline(entries: list[LoggedRequest], start: float) -> None:
    """When each ARM write was accepted, to see where time goes beyond the critical path."""
    writes = [e for e in entries if e.method != "GET" and not e.is_poll]
    polls = sum(1 for e in entries if e.is_poll)
    reads = sum(1 for e in entries if e.method == "GET" and not e.is_poll)
    for entry in writes:
        kind = entry.resource_type or entry.path
        print(f"    +{entry.timestamp - start:6.2f} s  {entry.method} {kind} -> {entry.status}")
    print(f"    ({reads} GETs, {polls} operation polls)")


async def measure(runs: int, batch_window: str, batch_quiet: str, telemetry: bool) -> list[float]:
    ratios: list[float] = []
    flags = ("--batch-window", batch_window, "--batch-quiet", batch_quiet)
    label = "metrics + tracing" if telemetry else "no metrics, no tracing"
    print(f"--- {label}", flush=True)
    async with bench_stack(
        latency=REALISTIC_LATENCY, controller_flags=flags, telemetry=telemetry
    ) as stack:
        spec = stack.vmss_spec(31)
        # One configuration first, unmeasured: the worker's first workflow tasks pay for its
        # imports and the sandbox's first load of the workflow modules.
        await stack.create_sgc("warm-up", spec)
        await stack.wait_ready({"warm-up"}, timeout=120)
        for run in range(1, runs + 1):
            name = f"ready-{run}"
            stack.arm.request_log.clear()
            wall_start, started = time.time(), time.monotonic()
            await stack.create_sgc(name, spec)
            seen = await stack.wait_ready({name}, timeout=120)
            elapsed = seen[name] - started
            timeline(stack.arm.request_log.entries, wall_start)
            ratios.append(elapsed / CRITICAL_PATH)
            print(
                f"run {run}: Ready after {elapsed:.2f} s; critical path {CRITICAL_PATH:.0f} s; "
                f"ratio {elapsed / CRITICAL_PATH:.3f}",
                flush=True,
            )
    print(
        f"time to Ready / critical path ({label}): median {statistics.median(ratios):.3f} "
        f"over {len(ratios)} runs (target <= 1.10; batch quiet {batch_quiet}, window "
        f"{batch_window})",
        flush=True,
    )
    return ratios


async def main(runs: int, batch_window: str, batch_quiet: str, telemetry: str) -> None:
    modes = {"off": [False], "on": [True], "both": [False, True]}[telemetry]
    medians = {
        mode: statistics.median(await measure(runs, batch_window, batch_quiet, mode))
        for mode in modes
    }
    if len(medians) == 2:
        off, on = medians[False], medians[True]
        print(
            f"median ratio without metrics and tracing {off:.3f}, with both {on:.3f} "
            f"(+{(on - off) * CRITICAL_PATH:.2f} s on an {CRITICAL_PATH:.0f} s critical path); "
            "target: both <= 1.10"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-window", default="2s", help="the controller's --batch-window")
    parser.add_argument("--batch-quiet", default="200ms", help="the controller's --batch-quiet")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--telemetry",
        choices=("off", "on", "both"),
        default="both",
        help="the controller with /metrics (scraped every second) and traces sent to Jaeger, "
        "without, or both one after the other (default: both)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.batch_window, args.batch_quiet, args.telemetry))
