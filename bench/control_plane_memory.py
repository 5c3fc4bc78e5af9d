"""(d) Controller (worker + watchers) memory with many configurations Ready.

Prints the controller process's RSS with one configuration, then once every configuration is
Ready, and the time that took (no ARM latency). Configurations are created in bursts of
`--burst`, each burst Ready before the next: more than ten concurrent requests to one single
writer meet the Temporal server's per-workflow limit on in-flight updates (see the report of
issue 3), which is a separate finding from memory.
    .venv/bin/python bench/control_plane_memory.py [--configs N] [--burst N]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from control_plane_stack import bench_stack, rss_kib


async def main(configs: int, burst: int) -> None:
    async with bench_stack() as stack:
        spec = stack.vmss_spec(31)
        await stack.create_sgc("warm-up", spec)
        await stack.wait_ready({"warm-up"}, timeout=120)
        baseline = rss_kib(stack.controller.pid)
        names = [f"mem-{index:03d}" for index in range(configs)]
        started = time.monotonic()
        for first in range(0, configs, burst):
            chunk = names[first : first + burst]
            await asyncio.gather(*(stack.create_sgc(name, spec) for name in chunk))
            await stack.wait_ready(set(chunk), timeout=300, every=0.5)
            if (first + burst) % 50 == 0:
                print(
                    f"    {first + burst} Ready after {time.monotonic() - started:.0f} s, RSS "
                    f"{rss_kib(stack.controller.pid) / 1024:.0f} MiB",
                    flush=True,
                )
        elapsed = time.monotonic() - started
        await asyncio.sleep(5)  # let the last passes' activities and caches settle
        loaded = rss_kib(stack.controller.pid)
    print(f"controller RSS with 1 configuration: {baseline / 1024:.0f} MiB")
    print(
        f"controller RSS with {configs + 1} configurations Ready: {loaded / 1024:.0f} MiB "
        f"(+{(loaded - baseline) / configs:.0f} KiB per configuration); "
        f"all Ready {elapsed:.0f} s after the first create"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=200)
    parser.add_argument("--burst", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.configs, args.burst))
