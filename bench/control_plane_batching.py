"""(b) Azure writes for 10 configurations created at once on one 4-instance VMSS gateway pool.

The Go implementation needs about one load balancer PUT, one prefix PUT, one VMSS PUT and up to
four instance updates per configuration (about 70 for ten); the target here is <= 25, through the
single-writer workflows batching concurrent requests. Counted from the ARM emulator's request log
(PUT/PATCH/POST/DELETE; operation polls are GETs and not counted).
    .venv/bin/python bench/control_plane_batching.py [--configs N] [--latency-scale F]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time

from control_plane_stack import REALISTIC_LATENCY, bench_stack

from sim.topology import Topology, VmssPool

INSTANCES = 4
GO_WRITES_PER_CONFIG = 1 + 1 + 1 + INSTANCES


async def main(configs: int, scale: float, batch_window: str, batch_quiet: str) -> None:
    topology = Topology(
        vmss_pools=(
            VmssPool(
                pool_name="gwpool",
                vmss_name="aks-gwpool-12345678-vmss",
                instance_count=INSTANCES,
                ip_prefix_size=30,
            ),
        )
    )
    latency = {kind: seconds * scale for kind, seconds in REALISTIC_LATENCY.items()}
    flags = ("--batch-window", batch_window, "--batch-quiet", batch_quiet)
    async with bench_stack(topology=topology, latency=latency, controller_flags=flags) as stack:
        names = {f"batch-{index:02d}" for index in range(configs)}
        spec = stack.vmss_spec(30)  # four addresses for four instances
        started = time.monotonic()
        await asyncio.gather(*(stack.create_sgc(name, spec) for name in sorted(names)))
        seen = await stack.wait_ready(names, timeout=600)
        elapsed = max(seen.values()) - started
        log = stack.arm.request_log
        writes = [e for e in log.entries if e.method != "GET" and not e.is_poll]
        by_kind = collections.Counter(
            f"{e.method} {(e.resource_type or e.path).split('/', 1)[-1]}" for e in writes
        )
        reads = log.reads()
    for kind, count in sorted(by_kind.items()):
        print(f"    {count:3d}  {kind}")
    go = GO_WRITES_PER_CONFIG * configs
    print(
        f"{configs} configurations on one {INSTANCES}-instance VMSS pool: {len(writes)} Azure "
        f"writes (target <= 25; Go implementation about {go}); {reads} GETs; all Ready after "
        f"{elapsed:.1f} s (latencies x{scale}, batch quiet {batch_quiet}, window {batch_window})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-window", default="2s", help="the controller's --batch-window")
    parser.add_argument("--batch-quiet", default="200ms", help="the controller's --batch-quiet")
    parser.add_argument("--configs", type=int, default=10)
    parser.add_argument("--latency-scale", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(main(args.configs, args.latency_scale, args.batch_window, args.batch_quiet))
