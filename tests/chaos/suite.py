"""The whole suite on one running dev stack: calibration, kill runs, ARM fault cycles, the
invalid corpus, then the secrets scan of every history produced."""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egressgw.temporal_connection import ENV_API_KEY
from tests.chaos.history_checks import scan_histories
from tests.chaos.invalid_corpus import CASES, SCHEMA_CASES, SEMANTIC_CASES
from tests.chaos.report import Row, failures, rows, secrets_row
from tests.chaos.scenarios import PHASES, RunResult, Suite
from tests.chaos.session import ChaosSession
from tests.chaos.stack_parts import KINDS, StackParts, environment_of


@dataclass(frozen=True)
class SuiteSize:
    kill_runs: int
    fault_cycles: int
    invalid_cases: int  # at most len(CASES)
    kinds: tuple[str, ...] = KINDS


@dataclass
class SuiteOutcome:
    results: list[RunResult] = field(default_factory=list)
    histories: int = 0
    secret_findings: list[str] = field(default_factory=list)

    def table(self) -> list[Row]:
        return [*rows(self.results), secrets_row(self.histories, len(self.secret_findings))]

    def failures(self) -> list[str]:
        return failures(self.results, self.secret_findings)


def log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run_suite(
    state_dir: Path,
    size: SuiteSize,
    seed: int,
    log: Callable[[str], None] = log_to_stderr,
) -> SuiteOutcome:
    rng = random.Random(seed)
    parts = StackParts(state_dir, rng)
    outcome = SuiteOutcome()
    async with ChaosSession.open(state_dir) as session:
        suite = Suite(session, parts, rng)
        azure = json.loads((state_dir / "azure.json").read_text())
        if azure.get("aadClientSecret"):
            suite.secrets["the cloud config's client secret"] = azure["aadClientSecret"]
        api_key = temporal_api_key(parts)
        if api_key:
            suite.secrets["the Temporal API key"] = api_key
        calibration = await suite.calibrate()
        log(
            "calibrated: "
            + ", ".join(f"{p} {s:.1f} s" for p, s in calibration.seconds.items())
            + f"; {len(calibration.after['create'])} items after create"
        )
        plan = kill_plan(size.kinds, size.kill_runs)
        for index, (kind, phase) in enumerate(plan, 1):
            result = await suite.kill_run(kind, phase)
            outcome.results.append(result)
            log(f"kill run {index}/{len(plan)}: {_line(result)}")
        for index in range(1, size.fault_cycles + 1):
            result = await suite.fault_cycle()
            outcome.results.append(result)
            log(f"fault cycle {index}/{size.fault_cycles}: {_line(result)}")
        for index, (case, spec) in enumerate(invalid_sample(size.invalid_cases, rng), 1):
            result = await suite.invalid_case(case, spec)
            outcome.results.append(result)
            if not result.converged or result.stuck:
                log(f"invalid case {index} {case}: {_line(result)}")
        client = await session.temporal()
        outcome.histories, findings = await scan_histories(client, suite.secrets)
        outcome.secret_findings = [f"{f.secret} in {f.workflow_id} ({f.run_id})" for f in findings]
        log(
            f"secrets scan: {outcome.histories} histories, {len(suite.secrets)} secrets, "
            f"{len(findings)} found"
        )
    return outcome


def temporal_api_key(parts: StackParts) -> str | None:
    """The API key the controller connects to Temporal with (TEMPORAL_API_KEY), if any: none
    on a dev stack unless its environment had one."""
    for part in parts.candidates("controller"):
        with contextlib.suppress(OSError):
            return environment_of(part.pid).get(ENV_API_KEY) or None
    return os.environ.get(ENV_API_KEY) or None


def kill_plan(kinds: tuple[str, ...], runs: int) -> list[tuple[str, str]]:
    """Which kind to kill in which phase, run by run: kinds and phases in turn, so that every
    pair comes up (5 kinds and 3 phases: all 15 pairs in 15 runs); the moment is random."""
    return [(kinds[i % len(kinds)], PHASES[i % len(PHASES)]) for i in range(runs)]


def invalid_sample(count: int, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """`count` cases of the corpus (all of them when it has no more): the well-formed ones
    first (only the controller can refuse those), then others at random, in the corpus's
    order."""
    if count >= len(CASES):
        return list(CASES)
    semantic = SEMANTIC_CASES[:count]
    picked = sorted(rng.sample(range(len(SCHEMA_CASES)), count - len(semantic)))
    return [SCHEMA_CASES[i] for i in picked] + semantic


def _line(result: RunResult) -> str:
    verdict = "converged" if result.converged else "NOT converged"
    extra = ", stuck" if result.stuck else ""
    return f"{result.test}: {verdict}{extra} in {result.seconds:.1f} s; " + "; ".join(result.notes)
