"""The suite's one table: test | runs | converged | time min/median/max | leaked | duplicated |
stuck; and what a CI run fails on."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from tests.chaos.scenarios import RunResult


@dataclass(frozen=True)
class Row:
    test: str
    runs: int
    converged: int
    times: tuple[float, float, float] | None
    leaked: int
    duplicated: int
    stuck: int

    def cells(self) -> list[str]:
        times = "-" if self.times is None else "/".join(f"{t:.1f}" for t in self.times)
        return [
            self.test,
            str(self.runs),
            str(self.converged),
            times,
            str(self.leaked),
            str(self.duplicated),
            str(self.stuck),
        ]


HEADER = ["test", "runs", "converged", "time s min/median/max", "leaked", "duplicated", "stuck"]


def rows(results: list[RunResult]) -> list[Row]:
    """One row per test, in the order the tests first appear."""
    order: list[str] = []
    for result in results:
        if result.test not in order:
            order.append(result.test)
    table = []
    for test in order:
        mine = [r for r in results if r.test == test]
        seconds = sorted(r.seconds for r in mine)
        table.append(
            Row(
                test,
                len(mine),
                sum(r.converged for r in mine),
                (seconds[0], statistics.median(seconds), seconds[-1]),
                sum(r.leaked for r in mine),
                sum(r.duplicated for r in mine),
                sum(r.stuck for r in mine),
            )
        )
    return table


def secrets_row(histories: int, findings: int) -> Row:
    """The secrets scan as a row: runs = histories scanned, leaked = secrets found in them."""
    return Row(
        "secrets in histories", histories, histories if not findings else 0, None, findings, 0, 0
    )


def markdown(table: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in table]
    return "\n".join(lines)


def failures(results: list[RunResult], findings: list[str]) -> list[str]:
    """What fails a CI run: any leak, duplicate, stuck workflow or secret (with its notes)."""
    found = [
        f"{r.test}: " + "; ".join(r.notes) for r in results if r.leaked or r.duplicated or r.stuck
    ]
    return found + [f"secret in a history: {f}" for f in findings]
