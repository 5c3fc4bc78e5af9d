"""The workflow classes the controller's worker registers (and the replayer replays), and the
sandbox they run in."""

from __future__ import annotations

from typing import Final

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workflows.gateway_config import GatewayConfigWorkflow
from workflows.gateway_pool import GatewayPoolWorkflow
from workflows.load_balancer import LoadBalancerWorkflow

WORKFLOWS: Final[tuple[type, ...]] = (
    GatewayConfigWorkflow,
    LoadBalancerWorkflow,
    GatewayPoolWorkflow,
)


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox for every worker and replayer of these workflows. `contracts` (frozen
    dataclasses and names, no I/O) passes through: the workflows and the payload converter then
    share one copy of each message class, and a run does not re-import it. So does
    `opentelemetry`: the tracing interceptor's workflow side (egressgw/tracing.py) must use the
    process's one context and tracer, not a copy made per run."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "contracts", "opentelemetry"
        )
    )
