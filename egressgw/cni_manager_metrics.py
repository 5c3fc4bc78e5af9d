"""The CNI manager's /metrics: kube-egress-gateway's three failure counters (PodEndpoint writes,
CNI configuration, node taint) and the plugin's requests by method and outcome
(contracts/metric_catalog.py), counted as agent/cni reports them (agent/cni/manager_events.py)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from contracts import metric_catalog as catalog
from egressgw import prometheus_catalog


class CniManagerMetrics:
    """A ManagerObserver that counts."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._pod_endpoints = prometheus_catalog.counter(
            catalog.PODENDPOINT_FAILURES, self.registry
        )
        self._cni_config = prometheus_catalog.counter(catalog.CNI_CONFIG_FAILURES, self.registry)
        self._taint = prometheus_catalog.counter(catalog.NODE_TAINT_FAILURES, self.registry)
        self._requests = prometheus_catalog.counter(catalog.CNI_REQUESTS, self.registry)
        self._duration = prometheus_catalog.histogram(catalog.CNI_REQUEST_DURATION, self.registry)

    def request_answered(self, method: str, outcome: str, seconds: float) -> None:
        self._requests.labels(method, outcome).inc()
        self._duration.labels(method).observe(seconds)

    def pod_endpoint_failed(self, namespace: str, operation: str, pod: str) -> None:
        self._pod_endpoints.labels(namespace, operation, pod).inc()

    def cni_config_failed(self, operation: str) -> None:
        self._cni_config.labels(operation).inc()

    def node_taint_failed(self, node: str) -> None:
        self._taint.labels(node).inc()
