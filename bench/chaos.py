"""The chaos benchmark: SIGKILLs at random moments of create, update and delete, ARM faults,
the invalid-input corpus and a secrets scan of every history, on a dev stack of its own (or a
running one: --state-dir). Prints one table (test | runs | converged | time | leaked |
duplicated | stuck); exits 1 on any leak, duplicate, stuck workflow or secret.

    .venv/bin/python bench/chaos.py                  # the full suite: 50 kills, 15 fault cycles
    .venv/bin/python bench/chaos.py --runs 5 --fault-cycles 2 --invalid 10

As root the stack has its node network and node runtimes (a node runtime is one of the parts
killed); without root that kind is left out. The scenarios are tests/chaos/ (docs there).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.ports import free_port_block  # noqa: E402
from tests.chaos.invalid_corpus import CASES  # noqa: E402
from tests.chaos.report import markdown  # noqa: E402
from tests.chaos.stack_parts import KINDS  # noqa: E402
from tests.chaos.suite import SuiteSize, run_suite  # noqa: E402

EGRESSGW = [sys.executable, "-m", "egressgw"]


@contextlib.contextmanager
def dev_stack(state_dir: Path | None) -> Iterator[Path]:
    """The given running stack, or `dev up --detach` of a new one (and `dev down` after)."""
    if state_dir is not None:
        yield state_dir
        return
    with tempfile.TemporaryDirectory(prefix="egressgw-chaos-") as tmp:
        state = Path(tmp) / "state"
        base = free_port_block(8, start=33000)
        prefix = "k" + uuid.uuid4().hex[:5]
        up = subprocess.run(
            [*EGRESSGW, "dev", "up", "--detach", "--headless", "--state-dir", str(state),
             "--port-base", str(base), "--net-prefix", prefix],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if up.returncode != 0:
            raise SystemExit(f"dev up failed:\n{up.stdout}{up.stderr}")
        try:
            yield state
        finally:
            subprocess.run(
                [*EGRESSGW, "dev", "down", "--state-dir", str(state)],
                capture_output=True, timeout=180, check=False,
            )  # fmt: skip


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="kill runs (default 50)")
    parser.add_argument("--fault-cycles", type=int, default=15, help="default 15")
    parser.add_argument("--invalid", type=int, default=len(CASES), help="invalid cases")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--state-dir", type=Path, help="a running dev stack's, instead of a new")
    parser.add_argument("--kinds", default=",".join(KINDS), help="what to kill, comma-separated")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C: the stack goes down and what the harness started is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if os.geteuid() != 0:
        kinds = tuple(k for k in kinds if k != "node-runtime")  # no node runtimes without root
    size = SuiteSize(args.runs, args.fault_cycles, min(args.invalid, len(CASES)), kinds)
    began = time.monotonic()
    with dev_stack(args.state_dir) as state:
        outcome = asyncio.run(run_suite(state, size, args.seed))
    print(markdown(outcome.table()))
    print(f"\nseed {args.seed}; {time.monotonic() - began:.0f} s in all")
    for failure in outcome.failures():
        print(f"FAIL {failure}")
    return 1 if outcome.failures() else 0


if __name__ == "__main__":
    raise SystemExit(main())
