"""The controller's /metrics (contracts/metric_catalog.py): ARM calls by operation and status
(egressgw/arm_metrics.py), what the workflows record (reconcile latency and failures, drift
repairs, node schedule-to-start failures: workflows/pass_metrics.py) and Temporal's SDK metrics
of the controller's worker (egressgw/temporal_metrics.py)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from contracts import metric_catalog as catalog
from egressgw.arm_metrics import ArmRequestMetrics
from egressgw.listen_address import ListenAddress
from egressgw.process_telemetry import ProcessTelemetry
from egressgw.temporal_metrics import TemporalMetrics


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.temporal = TemporalMetrics(catalog.WORKFLOW_METRICS)
        self.registry.register(self.temporal)
        self.arm_requests = ArmRequestMetrics(self.registry)


def controller_telemetry(
    address: ListenAddress | None,
) -> tuple[ProcessTelemetry, ArmRequestMetrics | None]:
    """The process's telemetry and the ARM clients' metrics policy (None: metrics are off)."""
    if address is None:
        return ProcessTelemetry(None, None), None
    metrics = ControllerMetrics()
    return ProcessTelemetry(address, metrics.registry, metrics.temporal), metrics.arm_requests
