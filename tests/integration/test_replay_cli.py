"""`egressgw replay`, run as a user runs it: histories from files, directories and a server.

The committed histories under tests/replay/ must replay; a history the current code cannot have
produced (a recorded one with one activity changed, or one written by a different workflow under
the same name) must fail with exit code 1 and say which history failed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from contracts.azure_state import AzureScope
from contracts.workflow_io import (
    GATEWAY_CONFIG_WORKFLOW,
    NODES_CHANGED,
    ControllerSettings,
    GatewayConfigInput,
)
from egressgw.dev.temporal_server import TemporalDevServer
from tests.fixtures import histories
from workflows.registry import WORKFLOWS

RECORDED = histories.baseline("public_vmss_ready.config")


def replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "egressgw", "replay", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def with_first_activity_renamed(source: Path, target: Path) -> str:
    """Copy a recorded history with its first scheduled activity's ID changed, as if the code
    that recorded it had run the steps in another order; returns the ID it replaced."""
    history: dict[str, Any] = json.loads(source.read_text())
    for event in history["events"]:
        attributes = event.get("activityTaskScheduledEventAttributes")
        if attributes is not None:
            original: str = attributes["activityId"]
            attributes["activityId"] = "pool/resolve/first-in-another-version"
            target.write_text(json.dumps(history))
            return original
    raise AssertionError(f"{source} schedules no activity")


def test_committed_histories_replay_one_line_each() -> None:
    recorded = histories.recorded_histories()
    assert recorded, "tests/replay/ holds no recorded histories"

    done = replay(str(histories.REPLAY_DIR))

    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(("ok", "FAILED"))]
    assert len(lines) == len(recorded)
    assert all(line.startswith("ok") for line in lines)
    assert f"{len(recorded)} replayed, 0 failed" in done.stdout


def test_an_incompatible_history_fails_and_is_named(tmp_path: Path) -> None:
    changed = tmp_path / "reordered.config.json"
    original_id = with_first_activity_renamed(RECORDED, changed)

    done = replay(str(RECORDED), str(changed))

    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ok") and str(RECORDED) in lines[0]
    assert lines[1].startswith("FAILED") and str(changed) in lines[1]
    assert "NondeterminismError" in lines[1] and original_id in lines[1]
    assert "1 replayed, 1 failed" in done.stdout


def test_unreadable_input_is_a_usage_error(tmp_path: Path) -> None:
    not_history = tmp_path / "notes.json"
    not_history.write_text('{"hello": "world"}')

    missing = replay(str(tmp_path / "missing.json"))
    garbage = replay(str(not_history))
    nothing = replay()

    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert garbage.returncode == 2 and "not a workflow history" in garbage.stderr
    assert nothing.returncode == 2


@workflow.defn(name=GATEWAY_CONFIG_WORKFLOW, sandboxed=False)
class ImpostorGatewayConfigWorkflow:
    """Another program's workflow under our name: it sleeps where ours waits for a delivery."""

    @workflow.run
    async def run(self, input: GatewayConfigInput) -> None:
        await workflow.sleep(timedelta(milliseconds=50))


async def _wait_for_completed_task(client: Client, workflow_id: str, tasks: int) -> None:
    for _ in range(200):
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        completed = [
            e for e in history.events if e.HasField("workflow_task_completed_event_attributes")
        ]
        if len(completed) >= tasks:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id} completed fewer than {tasks} workflow tasks")


async def test_histories_fetched_by_workflow_id(temporal_server: TemporalDevServer) -> None:
    client = await Client.connect(temporal_server.address)
    run = uuid.uuid4().hex[:8]
    scope = AzureScope("sub", "westeurope", "rg", "rg", "ilb", "rg", "vnet", "gateways")
    settings = ControllerSettings(scope=scope, secret_namespace="ns")
    ours, impostor = f"replay-cli/ours/{run}", f"replay-cli/impostor/{run}"
    ours_queue, impostor_queue = f"replay-ours-{run}", f"replay-impostor-{run}"
    start = GatewayConfigInput(namespace="team-a", name="replayed", settings=settings)

    async with (
        Worker(client, task_queue=ours_queue, workflows=list(WORKFLOWS)),
        Worker(client, task_queue=impostor_queue, workflows=[ImpostorGatewayConfigWorkflow]),
    ):
        handle = await client.start_workflow(
            GATEWAY_CONFIG_WORKFLOW, start, id=ours, task_queue=ours_queue
        )
        await _wait_for_completed_task(client, ours, 1)
        await handle.signal(NODES_CHANGED)  # a pass with nothing delivered yet: a second task
        await _wait_for_completed_task(client, ours, 2)
        await client.execute_workflow(
            GATEWAY_CONFIG_WORKFLOW, start, id=impostor, task_queue=impostor_queue
        )

    good = await asyncio.to_thread(
        replay, "--workflow-id", ours, "--address", temporal_server.address
    )
    bad = await asyncio.to_thread(
        replay,
        "--workflow-id",
        ours,
        "--workflow-id",
        impostor,
        "--address",
        temporal_server.address,
    )
    unknown = await asyncio.to_thread(
        replay, "--workflow-id", f"replay-cli/none/{run}", "--address", temporal_server.address
    )
    await handle.terminate()

    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith(f"ok      {ours}")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    failed = [line for line in bad.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and impostor in failed[0]
    assert unknown.returncode == 2 and "not found" in unknown.stderr.lower()
