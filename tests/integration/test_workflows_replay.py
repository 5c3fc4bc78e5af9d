"""Recorded histories (tests/replay/, written by test_workflows.py with
EGRESSGW_RECORD_HISTORIES=1) replay against the current workflow code, and a changed workflow
fails replay: the negative control proves the gate can fail."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from contracts.activity_io import RESOLVE_GATEWAY_POOL
from contracts.workflow_io import GATEWAY_CONFIG_WORKFLOW, GatewayConfigInput
from workflows import gateway_config_decisions
from workflows.gateway_pool import GatewayPoolWorkflow
from workflows.load_balancer import LoadBalancerWorkflow
from workflows.registry import WORKFLOWS

REPLAY_DIR = Path(__file__).resolve().parents[1] / "replay"
HISTORIES = sorted(REPLAY_DIR.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    # The file name stands in for the workflow ID, which the JSON does not carry.
    return WorkflowHistory.from_json(path.stem, path.read_text())


def test_histories_are_recorded_for_each_workflow() -> None:
    kinds = {path.stem.rsplit(".", 1)[-1] for path in HISTORIES}
    assert kinds == {"config", "lb", "pool"}


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    replayer = Replayer(workflows=list(WORKFLOWS))
    await replayer.replay_workflow(load(path))


# Unsandboxed: the sandbox would re-import this test module, which reads files at import.
@workflow.defn(name=GATEWAY_CONFIG_WORKFLOW, sandboxed=False)
class ReorderedGatewayConfigWorkflow:
    """A 'new version' that resolves the pool before anything else, without a patch."""

    @workflow.run
    async def run(self, input: GatewayConfigInput) -> None:
        await workflow.execute_activity(
            RESOLVE_GATEWAY_POOL,
            None,
            activity_id="pool/resolve/first",
            start_to_close_timeout=timedelta(seconds=5),
        )


async def test_a_reordered_workflow_fails_replay() -> None:
    history = load(REPLAY_DIR / "public_vmss_ready.config.json")
    replayer = Replayer(
        workflows=[ReorderedGatewayConfigWorkflow, LoadBalancerWorkflow, GatewayPoolWorkflow]
    )
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(history)


@pytest.mark.parametrize("changed", [False, True], ids=["unchanged", "changed"])
async def test_a_changed_decision_fails_replay(
    monkeypatch: pytest.MonkeyPatch, changed: bool
) -> None:
    """The real workflow with one decision changed (the prefix now counts as too small) takes
    another path than the recorded one, and replay refuses it. Unsandboxed, so that the patched
    module is the one the workflow calls; the unchanged case shows the runner itself replays."""
    if changed:
        monkeypatch.setattr(
            gateway_config_decisions, "prefix_capacity_error", lambda delivery, pool: "too small"
        )
    replayer = Replayer(workflows=list(WORKFLOWS), workflow_runner=UnsandboxedWorkflowRunner())
    history = load(REPLAY_DIR / "public_vmss_ready.config.json")
    if changed:
        with pytest.raises(NondeterminismError):
            await replayer.replay_workflow(history)
    else:
        await replayer.replay_workflow(history)
