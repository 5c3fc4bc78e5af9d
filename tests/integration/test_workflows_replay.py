"""Recorded histories (tests/replay/: each release's, and the unreleased code's in next/; see
tests/fixtures/histories.py) replay against the current workflow code, and a changed workflow
fails replay: the negative controls prove the gate can fail."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from contracts.activity_io import RESOLVE_GATEWAY_POOL
from contracts.workflow_io import GATEWAY_CONFIG_WORKFLOW, GatewayConfigInput
from tests.fixtures.histories import NEXT_DIR, baseline, load, recorded_histories
from workflows import gateway_config_decisions, node_decisions
from workflows.gateway_pool import GatewayPoolWorkflow
from workflows.load_balancer import LoadBalancerWorkflow
from workflows.registry import WORKFLOWS, workflow_runner

HISTORIES = recorded_histories()
BASELINE = baseline("public_vmss_ready.config")


def test_histories_are_recorded_for_each_workflow_by_every_release() -> None:
    releases = {path.parent.name for path in HISTORIES}
    assert "v0.1.0" in releases
    for release in releases:
        kinds = {p.stem.rsplit(".", 1)[-1] for p in HISTORIES if p.parent.name == release}
        assert kinds == {"config", "lb", "pool"}, release


@pytest.mark.parametrize("path", HISTORIES, ids=[f"{p.parent.name}/{p.stem}" for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    replayer = Replayer(workflows=list(WORKFLOWS), workflow_runner=workflow_runner())
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
    history = load(BASELINE)
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
    history = load(BASELINE)
    if changed:
        with pytest.raises(NondeterminismError):
            await replayer.replay_workflow(history)
    else:
        await replayer.replay_workflow(history)


@pytest.mark.parametrize("switched_off", [False, True], ids=["as recorded", "switched off"])
async def test_the_node_retry_timer_is_in_its_recorded_history(
    monkeypatch: pytest.MonkeyPatch, switched_off: bool
) -> None:
    """The history of a node retried without its agent's start signal replays only with the
    node retry timer: without it the workflow waits for the drift pass instead."""
    if switched_off:
        monkeypatch.setattr(node_decisions, "unanswering_nodes", lambda problems: set())
    replayer = Replayer(workflows=list(WORKFLOWS), workflow_runner=UnsandboxedWorkflowRunner())
    history = load(NEXT_DIR / "nodes_retried_without_start_signal.config.json")
    if switched_off:
        with pytest.raises(NondeterminismError):
            await replayer.replay_workflow(history)
    else:
        await replayer.replay_workflow(history)
