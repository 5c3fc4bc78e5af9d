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

from control_plane_stack import REALISTIC_LATENCY, bench_stack, cpu_seconds

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


LABELS = {
    (False, False): "no metrics, no tracing",
    (True, False): "metrics only",
    (False, True): "tracing only",
    (True, True): "metrics + tracing",
}


async def measure(
    runs: int, batch_window: str, batch_quiet: str, metrics: bool, tracing: bool
) -> tuple[list[float], float]:
    """The runs' ratios, and the controller's CPU seconds per configuration over them."""
    ratios: list[float] = []
    flags = ("--batch-window", batch_window, "--batch-quiet", batch_quiet)
    label = LABELS[metrics, tracing]
    print(f"--- {label}", flush=True)
    async with bench_stack(
        latency=REALISTIC_LATENCY, controller_flags=flags, metrics=metrics, tracing=tracing
    ) as stack:
        spec = stack.vmss_spec(31)
        # One configuration first, unmeasured: the worker's first workflow tasks pay for its
        # imports and the sandbox's first load of the workflow modules.
        await stack.create_sgc("warm-up", spec)
        await stack.wait_ready({"warm-up"}, timeout=120)
        cpu_before = cpu_seconds(stack.controller.pid)
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
        cpu = (cpu_seconds(stack.controller.pid) - cpu_before) / runs
    print(
        f"time to Ready / critical path ({label}): median {statistics.median(ratios):.3f} "
        f"over {len(ratios)} runs (target <= 1.10; batch quiet {batch_quiet}, window "
        f"{batch_window}); controller CPU {cpu:.2f} s per configuration",
        flush=True,
    )
    return ratios, cpu


MODES = {
    "off": [(False, False)],
    "on": [(True, True)],
    "both": [(False, False), (True, True)],
    "each": [(False, False), (True, False), (False, True), (True, True)],
}


async def main(runs: int, batch_window: str, batch_quiet: str, telemetry: str) -> None:
    results = {
        mode: await measure(runs, batch_window, batch_quiet, *mode) for mode in MODES[telemetry]
    }
    if len(results) > 1:
        off = statistics.median(results[False, False][0])
        off_cpu = results[False, False][1]
        print("median time to Ready / critical path (target <= 1.10), controller CPU:")
        for mode, (ratios, cpu) in results.items():
            median = statistics.median(ratios)
            print(
                f"  {LABELS[mode]:<24} {median:.3f} ({(median - off) * CRITICAL_PATH:+.2f} s)  "
                f"CPU {cpu:.2f} s per configuration ({cpu - off_cpu:+.2f} s)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-window", default="2s", help="the controller's --batch-window")
    parser.add_argument("--batch-quiet", default="200ms", help="the controller's --batch-quiet")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--telemetry",
        choices=tuple(MODES),
        default="both",
        help="the controller with /metrics (scraped every second) and traces sent to Jaeger "
        "(on), without (off), both one after the other, or each: also metrics only and "
        "tracing only (default: both)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.batch_window, args.batch_quiet, args.telemetry))
