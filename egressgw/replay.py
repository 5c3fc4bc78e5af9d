"""`egressgw replay`: replay workflow histories against the current workflow code.

Histories come from JSON files (what `temporal workflow show -o json`, the Web UI's "Encoded"
download or `WorkflowHistory.to_json()` write), from directories of them, or from a server by
workflow ID. Each one prints one line; any failure (non-determinism, or a workflow task that
fails on the current code) makes the exit code 1, so CI can gate a deploy on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from google.protobuf.json_format import ParseError
from temporalio.client import Client, WorkflowHistory
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.service import RPCError
from temporalio.worker import Replayer

from workflows.registry import WORKFLOWS, workflow_runner

EXIT_OK = 0
EXIT_REPLAY_FAILED = 1
EXIT_BAD_INPUT = 2


class ReplayInputError(Exception):
    """A history that could not be read at all (missing file, not a history)."""


@dataclass(frozen=True)
class ReplayOutcome:
    source: str  # file path or workflow ID, as the user gave it
    failure: str | None  # None: replayed cleanly


def history_files(paths: Sequence[Path]) -> list[Path]:
    """Files as given, and every *.json inside each directory and its subdirectories (one per
    release in tests/replay/), in path order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.json") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise ReplayInputError(f"{path}: no such file or directory")
    return found


def load_history_file(path: Path) -> WorkflowHistory:
    # The JSON does not carry the workflow ID; the file name stands in for it.
    try:
        return WorkflowHistory.from_json(path.stem, path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise ReplayInputError(f"{path}: cannot read: {err}") from None
    except (ValueError, KeyError, TypeError, ParseError) as err:
        raise ReplayInputError(f"{path}: not a workflow history: {err}") from None


def describe_failure(error: Exception) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:500]}"


async def _histories(
    files: Sequence[Path], workflow_ids: Sequence[str], client: Client | None
) -> AsyncIterator[tuple[str, WorkflowHistory]]:
    for path in files:
        yield str(path), load_history_file(path)
    for workflow_id in workflow_ids:
        assert client is not None
        yield workflow_id, await client.get_workflow_handle(workflow_id).fetch_history()


async def replay_histories(
    files: Sequence[Path],
    workflow_ids: Sequence[str],
    client: Client | None,
    out: TextIO,
) -> list[ReplayOutcome]:
    # The SDK core's own log lines would repeat each failure on stdout, between ours.
    quiet = Runtime(telemetry=TelemetryConfig(logging=None))
    replayer = Replayer(workflows=list(WORKFLOWS), workflow_runner=workflow_runner(), runtime=quiet)
    outcomes: list[ReplayOutcome] = []
    async for source, history in _histories(files, workflow_ids, client):
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        failure = (
            describe_failure(result.replay_failure) if result.replay_failure is not None else None
        )
        outcomes.append(ReplayOutcome(source, failure))
        events = len(history.events)
        if failure is None:
            print(f"ok      {source} ({events} events)", file=out, flush=True)
        else:
            print(f"FAILED  {source} ({events} events): {failure}", file=out, flush=True)
    return outcomes


async def run_replay(
    paths: Sequence[Path],
    workflow_ids: Sequence[str],
    address: str,
    namespace: str,
    out: TextIO,
    err: TextIO,
) -> int:
    if not paths and not workflow_ids:
        print("egressgw replay: give history files, directories or --workflow-id", file=err)
        return EXIT_BAD_INPUT
    try:
        files = history_files(paths)
        if paths and not files and not workflow_ids:
            raise ReplayInputError(f"no *.json histories in {', '.join(map(str, paths))}")
        client = await Client.connect(address, namespace=namespace) if workflow_ids else None
        outcomes = await replay_histories(files, workflow_ids, client, out)
    except ReplayInputError as error:
        print(f"egressgw replay: {error}", file=err)
        return EXIT_BAD_INPUT
    except (RPCError, RuntimeError) as error:
        # An unknown workflow ID is an RPCError; a server that does not answer a RuntimeError.
        print(f"egressgw replay: {describe_failure(error)}", file=err)
        return EXIT_BAD_INPUT
    failed = sum(1 for outcome in outcomes if outcome.failure is not None)
    print(f"{len(outcomes) - failed} replayed, {failed} failed", file=out)
    return EXIT_REPLAY_FAILED if failed else EXIT_OK
