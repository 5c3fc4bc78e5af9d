"""Time for `egressgw dev up --detach` to return ready, on a fresh and on a reused state dir,
with the Kubernetes binaries cached (scripts/k8s-binaries).

Target: under 10 s (a real control plane, and as root the node network with a node runtime per
node). Prints one line per run and the median of each kind; the progress lines of each run's
logs/dev.log carry timestamps, for where the time goes (--keep-logs DIR copies them).
    .venv/bin/python bench/dev_up.py [--runs N] [--keep-logs DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from egressgw.dev.layout import DevPorts
from sim.ports import free_port_block

EGRESSGW = [sys.executable, "-m", "egressgw"]


def timed_up(state_dir: Path, base: int, prefix: str) -> float:
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
            # Names of its own: another dev stack on the machine keeps the default prefix.
            "--net-prefix",
            prefix,
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
    parser.add_argument("--keep-logs", type=Path, default=None, metavar="DIR")
    args = parser.parse_args()
    fresh: list[float] = []
    reused: list[float] = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="egressgw-bench-") as tmp:
            state = Path(tmp) / "state"
            base = free_port_block(len(DevPorts().named()), start=41000)
            prefix = "b" + uuid.uuid4().hex[:5]
            fresh.append(timed_up(state, base, prefix))
            down(state)
            reused.append(timed_up(state, base, prefix))
            down(state)
            if args.keep_logs is not None:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                shutil.copy(state / "logs" / "dev.log", args.keep_logs / f"dev-{run + 1}.log")
        print(f"run {run + 1}: fresh state dir {fresh[-1]:.2f} s, reused {reused[-1]:.2f} s")
    print(
        f"dev up --detach, fresh state dir: median {statistics.median(fresh):.2f} s (target < 10 s)"
    )
    print(f"dev up --detach, reused state dir: median {statistics.median(reused):.2f} s")


if __name__ == "__main__":
    main()
