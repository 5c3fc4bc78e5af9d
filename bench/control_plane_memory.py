"""(d) Controller (worker + watchers) memory with many configurations Ready.

Prints the controller process's RSS when idle with none, then once every configuration is Ready,
and the time that took (no ARM latency).
    .venv/bin/python bench/control_plane_memory.py [--configs N]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from control_plane_stack import bench_stack, rss_kib

BATCH = 25  # configurations created together, as a burst of kubectl applies would


async def main(configs: int) -> None:
    async with bench_stack() as stack:
        spec = stack.vmss_spec(31)
        await stack.create_sgc("warm-up", spec)
        await stack.wait_ready({"warm-up"}, timeout=120)
        baseline = rss_kib(stack.controller.pid)
        names = [f"mem-{index:03d}" for index in range(configs)]
        started = time.monotonic()
        for first in range(0, configs, BATCH):
            chunk = names[first : first + BATCH]
            await asyncio.gather(*(stack.create_sgc(name, spec) for name in chunk))
        await stack.wait_ready(set(names), timeout=1800, every=1.0)
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
    asyncio.run(main(parser.parse_args().configs))
