"""Dataplane throughput: one TCP stream from a pod's namespace to an "internet" namespace through
the gateway (built by the agent's own code: wg-<port>, gateway namespace, SNAT to the secondary
IP), divided by the same stream over a direct wireguard-go tunnel between the same namespaces.
Target: ratio >= 0.8. Needs root, wireguard-go and iptables; builds everything in throwaway
namespaces (bench/netns_bench_env.py) and removes it again, also on Ctrl-C.
Prints every run, the medians (Mbit/s) and the ratio of the medians.
    .venv/bin/python bench/dataplane_throughput.py [--runs N] [--seconds S]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import uuid
from types import FrameType

from netns_bench_env import (
    FRONTEND_IP,
    GATEWAY_PORT,
    SECONDARY_IP,
    Route,
    ThroughputEnv,
    Transfer,
    throughput_env,
)

TARGET_RATIO = 0.8
_WARM_UP_S = 0.5


def ratio(via_gateway: list[float], direct: list[float]) -> float:
    """Median gateway throughput over median direct throughput."""
    return statistics.median(via_gateway) / statistics.median(direct)


def measured(env: ThroughputEnv, route: Route, seconds: float) -> Transfer:
    """One transfer, refused unless the internet saw the source this route must give (else the
    figure would be of some other path)."""
    transfer = env.transfer(route, seconds)
    if transfer.source != env.expected_source(route):
        raise RuntimeError(
            f"{route}: the internet saw source {transfer.source}, expected "
            f"{env.expected_source(route)}"
        )
    return transfer


def describe(env: ThroughputEnv, runs: int, seconds: float) -> str:
    names = env.names
    return "\n".join(
        [
            f"One TCP stream (Python, 1 MiB sendall) from {names.client} to a sink in "
            f"{names.internet}, {seconds:g} s per run,",
            f"{runs} runs per path, paths alternating; figure = bytes received / time from "
            "first byte to end of stream.",
            f"  via gateway: {names.client} wireguard-go -> UDP to frontend "
            f"{FRONTEND_IP}:{GATEWAY_PORT} on {names.node} -> wg-{GATEWAY_PORT} "
            f"(agent's wireguard-go) in {names.gateway},",
            f"               SNAT to {SECONDARY_IP} -> host0 -> {names.node} -> "
            f"{env.destination(Route.VIA_GATEWAY)} in {names.internet}",
            f"  direct:      {names.client} wireguard-go -> UDP forwarded by {names.node} -> "
            f"wireguard-go in {names.internet} -> {env.destination(Route.DIRECT)}",
            f"Both paths: two wireguard-go daemons, the same veths; {os.cpu_count()} CPUs, "
            f"load average before start {os.getloadavg()[0]:.2f}.",
        ]
    )


_MAIN_PID = os.getpid()


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    if os.getpid() != _MAIN_PID:
        # A child pyroute2 forked to enter a namespace inherits this handler and is stopped
        # with SIGTERM: it must die, not unwind our stack and run the teardown a second time.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per path (median taken)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one run")
    args = parser.parse_args()
    if args.runs < 1 or args.seconds <= 0:
        parser.error("--runs must be at least 1 and --seconds positive")
    signal.signal(signal.SIGTERM, _interrupt)  # kill <pid> cleans up like Ctrl-C

    tag = "b" + uuid.uuid4().hex[:5]
    figures: dict[Route, list[float]] = {Route.VIA_GATEWAY: [], Route.DIRECT: []}
    try:
        with throughput_env(tag) as env:
            print(describe(env, args.runs, args.seconds), flush=True)
            for route in figures:  # first handshake, and wireguard-go noticing its link is up
                measured(env, route, _WARM_UP_S)
            for run in range(args.runs):
                # Alternating (and swapping who goes first) spreads drift in machine load.
                order = list(figures) if run % 2 == 0 else list(reversed(figures))
                for route in order:
                    transfer = measured(env, route, args.seconds)
                    figures[route].append(transfer.mbit_per_s)
                    print(
                        f"run {run + 1} {route:<12} {transfer.mbit_per_s:8.1f} Mbit/s "
                        f"({transfer.byte_count / 1e6:.0f} MB in {transfer.seconds:.2f} s)",
                        flush=True,
                    )
    except KeyboardInterrupt:
        print("interrupted; namespaces and processes removed", file=sys.stderr)
        raise SystemExit(130) from None

    gateway, direct = figures[Route.VIA_GATEWAY], figures[Route.DIRECT]
    for route, values in figures.items():
        print(
            f"{route:<12} median {statistics.median(values):8.1f} Mbit/s "
            f"(min {min(values):.1f}, max {max(values):.1f})"
        )
    result = ratio(gateway, direct)
    verdict = "meets" if result >= TARGET_RATIO else "BELOW"
    print(f"ratio gateway/direct {result:.2f} ({verdict} target {TARGET_RATIO})")


if __name__ == "__main__":
    main()
