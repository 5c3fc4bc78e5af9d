"""Time for `egressgw dev up --detach` to return ready, on a fresh and on a reused state dir.

Target: under 5 s. Prints one line per run and the median of each kind.
    .venv/bin/python bench/dev_up.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sim.ports import free_port_block

EGRESSGW = [sys.executable, "-m", "egressgw"]


def timed_up(state_dir: Path, base: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            *EGRESSGW,
            "dev",
            "up",
            "--detach",
            "--state-dir",
            str(state_dir),
            "--port-base",
            str(base),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def down(state_dir: Path) -> None:
    subprocess.run(
        [*EGRESSGW, "dev", "down", "--state-dir", str(state_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    fresh: list[float] = []
    reused: list[float] = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="egressgw-bench-") as tmp:
            state = Path(tmp) / "state"
            base = free_port_block(6, start=41000)
            fresh.append(timed_up(state, base))
            down(state)
            reused.append(timed_up(state, base))
            down(state)
        print(f"run {run + 1}: fresh state dir {fresh[-1]:.2f} s, reused {reused[-1]:.2f} s")
    print(
        f"dev up --detach, fresh state dir: median {statistics.median(fresh):.2f} s (target < 5 s)"
    )
    print(f"dev up --detach, reused state dir: median {statistics.median(reused):.2f} s")


if __name__ == "__main__":
    main()
