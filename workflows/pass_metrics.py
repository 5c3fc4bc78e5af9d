"""What the workflows tell the controller's /metrics (contracts/metric_catalog.py).

They record through `workflow.metric_meter()`, which records nothing while a workflow replays
history: a pass that a worker replays after a restart or an eviction is counted once, when it
ran. The worker's process takes the values from Temporal's metric buffer
(egressgw/temporal_metrics.py). Recording creates no workflow command, so it changes no history.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from contracts import metric_catalog as catalog
from contracts.workflow_io import ControllerSettings


def _reconcile_labels(
    settings: ControllerSettings, namespace: str, operation: str
) -> dict[str, str]:
    return {
        "namespace": namespace,
        "operation": operation,
        "subscription_id": settings.scope.subscription_id,
        "resource_group": settings.scope.resource_group,
    }


def pass_finished(
    settings: ControllerSettings,
    namespace: str,
    name: str,
    *,
    deleting: bool,
    took: timedelta,
    failed: bool,
) -> None:
    """One reconcile pass of a configuration ended; `failed`: it ended Degraded or Invalid."""
    operation = catalog.DELETE_OPERATION if deleting else catalog.RECONCILE_OPERATION
    labels = _reconcile_labels(settings, namespace, operation)
    meter = workflow.metric_meter()
    latency = catalog.RECONCILE_LATENCY
    meter.create_histogram_timedelta(latency.name, latency.help, "s").record(took, labels)
    if failed:
        failures = catalog.RECONCILE_FAILURES
        meter.create_counter(failures.name, failures.help).add(
            1, {**labels, "resource": f"{namespace}/{name}".lower()}
        )


def drift_repaired(namespace: str, part: str, changes: int) -> None:
    """A drift check changed `changes` things of one configuration in `part` (load_balancer,
    gateway_pool)."""
    if changes <= 0:
        return
    repairs = catalog.DRIFT_REPAIRS
    workflow.metric_meter().create_counter(repairs.name, repairs.help).add(
        changes, {"namespace": namespace, "part": part}
    )


def node_not_started(node_name: str) -> None:
    """No agent picked up a node activity before its schedule-to-start timeout."""
    failures = catalog.NODE_START_FAILURES
    workflow.metric_meter().create_counter(failures.name, failures.help).add(1, {"node": node_name})
