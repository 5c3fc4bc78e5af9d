"""The chaos suite's short version (bench/chaos.py is the full one): on a dev stack of its own,
one SIGKILL of each kind of part (controller, agent, Temporal, API server, a node runtime) at a
random moment of create, update or delete, two create/delete cycles under 20% ARM faults of
every kind, 13 cases of the invalid-input corpus (every well-formed one among them), and the
secrets scan of every history. Any leak, duplicate, stuck workflow, unconverged run or secret
fails it."""

from __future__ import annotations

import os
import random

import pytest

from tests.chaos.report import markdown
from tests.chaos.stack_parts import KINDS
from tests.chaos.suite import SuiteSize, run_suite
from tests.fixtures.dev_stack import DevStackRun

pytestmark = [pytest.mark.slow, pytest.mark.needs_root]

SHORT = SuiteSize(kill_runs=len(KINDS), fault_cycles=2, invalid_cases=13)


async def test_short_chaos_suite_leaves_azure_exact_and_histories_clean(
    dev_stack_with_nodes: DevStackRun,
) -> None:
    seed = int(os.environ.get("EGRESSGW_CHAOS_SEED") or random.randrange(1 << 30))
    lines: list[str] = []
    outcome = await run_suite(dev_stack_with_nodes.state_dir, SHORT, seed, lines.append)

    report = f"seed {seed}\n{markdown(outcome.table())}\n" + "\n".join(lines)
    assert not outcome.failures(), report
    assert all(r.converged for r in outcome.results), report
    # The scan saw at least the history of every configuration the runs made (and calibration's).
    runs = [r for r in outcome.results if r.test != "invalid input"]
    assert outcome.histories > len(runs), report
