"""Azure writes and 409 conflicts for 10 configurations deleted at once, under realistic latency.

Ten public configurations on the default two-instance VMSS gateway pool are created and become
Ready; the ARM emulator's request log is then cleared and all ten are deleted at once. The floor
is 14 writes: one DELETE per managed public IP prefix (10), one load balancer write (its last
rules go: DELETE), one VMSS model PUT and one update per instance (2). Every write above that is
a retry, most of them answered 409 AnotherOperationInProgress (a write to a resource with a
running operation) or 400 (e.g. InvalidResourceReference). Counted from the request log
(PUT/PATCH/POST/DELETE; operation polls are GETs and not counted).

`--lost-answers F` makes the emulator lose the answer of that fraction of the deletion's writes
after accepting them (fault `drop-after-accept`), as a dropped connection does: a write sent
again blindly meets the operation the first one started (409) or a changed ETag (412).
    .venv/bin/python bench/delete_conflicts.py [--configs N] [--latency-scale F] [--stagger S]
        [--lost-answers F]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time

from control_plane_stack import REALISTIC_LATENCY, bench_stack

from sim.topology import Topology


def _kind(path: str, resource_type: str | None) -> str:
    return (resource_type or path).split("/", 1)[-1]


async def main(
    configs: int, scale: float, stagger: float, lost_answers: float, timeout: float
) -> None:
    topology = Topology()
    instances = topology.vmss_pools[0].instance_count
    latency = {kind: seconds * scale for kind, seconds in REALISTIC_LATENCY.items()}
    async with bench_stack(topology=topology, latency=latency) as stack:
        names = {f"del-{index:02d}" for index in range(configs)}
        spec = stack.vmss_spec(32 - (instances - 1).bit_length())  # an address per instance
        await asyncio.gather(*(stack.create_sgc(name, spec) for name in sorted(names)))
        await stack.wait_ready(names, timeout=600)
        log = stack.arm.request_log
        log.clear()
        if lost_answers > 0:
            stack.arm.faults.add(effect="drop-after-accept", probability=lost_answers)
        started = time.monotonic()
        if stagger > 0:
            for name in sorted(names):
                await stack.delete_sgc(name)
                await asyncio.sleep(stagger)
        await stack.delete_all(timeout=timeout)
        elapsed = time.monotonic() - started
        writes = [e for e in log.entries if e.method not in ("GET", "HEAD") and not e.is_poll]
        by_kind = collections.Counter(
            (f"{e.method} {_kind(e.path, e.resource_type)}", e.status) for e in writes
        )
        conflicts = sum(1 for e in writes if e.status == 409)
        stale = sum(1 for e in writes if e.status == 412)
        lost = sum(1 for e in writes if e.status == 0)
        refused = sum(1 for e in writes if 400 <= e.status < 500 and e.status not in (409, 412))
        reads = log.reads()
    for (kind, status), count in sorted(by_kind.items()):
        print(f"    {count:3d}  {kind} -> {status}")
    floor = configs + 1 + 1 + instances
    print(
        f"{configs} configurations deleted at once on one {instances}-instance VMSS pool: "
        f"{len(writes)} Azure writes (floor {floor}), {conflicts} answered 409, {stale} 412, "
        f"{refused} other 4xx, {lost} answers lost; {reads} GETs; all gone after {elapsed:.1f} s "
        f"(latencies x{scale}, deletions {stagger:g} s apart, {lost_answers:.0%} answers lost)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=10)
    parser.add_argument("--latency-scale", type=float, default=1.0)
    parser.add_argument(
        "--stagger", type=float, default=0.0, help="seconds between two deletions (0: at once)"
    )
    parser.add_argument(
        "--lost-answers", type=float, default=0.0, help="fraction of write answers lost (0-1)"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for deletion")
    args = parser.parse_args()
    asyncio.run(
        main(args.configs, args.latency_scale, args.stagger, args.lost_answers, args.timeout)
    )
