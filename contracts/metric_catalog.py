"""Every metric egressgw defines, in one place: name, kind, help text, labels and buckets.

Workflows record through Temporal's replay-safe meter (workflows/pass_metrics.py); the
processes build their Prometheus collectors from these specs (egressgw/prometheus_catalog.py) and
serve them on /metrics. Names follow kube-egress-gateway where it has the metric
(`controller_reconcile_*`, `cnimanager_*`); the rest are `egressgw_*`. Labels are bounded: a
configuration's namespace and name, a node, an Azure operation; a pod only where upstream has it
(`cnimanager_podendpoint_operation_failures_total`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class MetricKind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class MetricSpec:
    name: str  # as exposed; counters end in _total, except upstream's own names
    kind: MetricKind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()  # histograms only (seconds)


# kube-egress-gateway's controller buckets (pkg/metrics/metrics.go), seconds.
RECONCILE_BUCKETS: Final = (
    0.1, 0.2, 0.5, 1, 5, 10, 15, 20, 30, 40, 50, 60, 100, 200, 300, 600, 1200,
)  # fmt: skip
# One HTTP call: ARM answers in tens of milliseconds; a long operation's first answer in seconds.
REQUEST_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# Values of the `operation` label of the reconcile metrics, as upstream names them.
RECONCILE_OPERATION: Final = "reconcile_static_gateway_configuration"
DELETE_OPERATION: Final = "delete_static_gateway_configuration"

# --- controller: recorded by GatewayConfigWorkflow ------------------------------------------------

RECONCILE_LATENCY: Final = MetricSpec(
    "controller_reconcile_latency",
    MetricKind.HISTOGRAM,
    "Seconds one reconcile pass of a StaticGatewayConfiguration took, from its first step to its "
    "status (kube-egress-gateway's name and labels).",
    ("namespace", "operation", "subscription_id", "resource_group"),
    RECONCILE_BUCKETS,
)
RECONCILE_FAILURES: Final = MetricSpec(
    "controller_reconcile_fail_count",
    MetricKind.COUNTER,
    "Reconcile passes that ended Degraded (kube-egress-gateway's name and labels; resource is "
    "namespace/name).",
    ("namespace", "operation", "subscription_id", "resource_group", "resource"),
)
DRIFT_REPAIRS: Final = MetricSpec(
    "egressgw_drift_repairs_total",
    MetricKind.COUNTER,
    "Changes a drift check made to Azure because a configuration's resources had drifted, by "
    "the part repaired (load_balancer, gateway_pool).",
    ("namespace", "part"),
)
NODE_START_FAILURES: Final = MetricSpec(
    "egressgw_node_schedule_to_start_failures_total",
    MetricKind.COUNTER,
    "Node activities no agent picked up in time (schedule-to-start timeout on the node's task "
    "queue), by node.",
    ("node",),
)

# --- controller: the process's ARM client ---------------------------------------------------------

ARM_REQUESTS: Final = MetricSpec(
    "egressgw_arm_requests_total",
    MetricKind.COUNTER,
    "HTTP requests to Azure Resource Manager, by operation (method and resource type) and status "
    "code ('error' when no answer came).",
    ("operation", "status"),
)
ARM_REQUEST_DURATION: Final = MetricSpec(
    "egressgw_arm_request_duration_seconds",
    MetricKind.HISTOGRAM,
    "Seconds until Azure Resource Manager answered one HTTP request, by operation.",
    ("operation",),
    REQUEST_BUCKETS,
)

# --- agent ----------------------------------------------------------------------------------------

GATEWAY_PEERS: Final = MetricSpec(
    "egressgw_gateway_peers",
    MetricKind.GAUGE,
    "Pod peers configured on this node's gateway of a configuration (namespace, name).",
    ("namespace", "name"),
)
NODE_GATEWAYS: Final = MetricSpec(
    "egressgw_node_gateways",
    MetricKind.GAUGE,
    "Configurations whose gateway this agent holds on its node.",
)

# --- CNI manager: kube-egress-gateway's names -----------------------------------------------------

PODENDPOINT_FAILURES: Final = MetricSpec(
    "cnimanager_podendpoint_operation_failures_total",
    MetricKind.COUNTER,
    "PodEndpoint writes that failed (operation create_or_update or delete).",
    ("namespace", "operation", "pod"),
)
CNI_CONFIG_FAILURES: Final = MetricSpec(
    "cnimanager_cni_config_operation_failures_total",
    MetricKind.COUNTER,
    "Failures to install, regenerate or uninstall the node's CNI configuration.",
    ("operation",),
)
NODE_TAINT_FAILURES: Final = MetricSpec(
    "cnimanager_node_taint_operation_failures_total",
    MetricKind.COUNTER,
    "Failures to remove the node's cni-not-ready taint.",
    ("node",),
)
CNI_REQUESTS: Final = MetricSpec(
    "egressgw_cni_manager_requests_total",
    MetricKind.COUNTER,
    "Requests of the CNI plugin to the manager, by method and outcome (ok or an error code).",
    ("method", "outcome"),
)
CNI_REQUEST_DURATION: Final = MetricSpec(
    "egressgw_cni_manager_request_duration_seconds",
    MetricKind.HISTOGRAM,
    "Seconds the manager took to answer one plugin request, by method.",
    ("method",),
    REQUEST_BUCKETS,
)

WORKFLOW_METRICS: Final = (
    RECONCILE_LATENCY,
    RECONCILE_FAILURES,
    DRIFT_REPAIRS,
    NODE_START_FAILURES,
)
CONTROLLER_METRICS: Final = (*WORKFLOW_METRICS, ARM_REQUESTS, ARM_REQUEST_DURATION)
AGENT_METRICS: Final = (GATEWAY_PEERS, NODE_GATEWAYS)
CNI_MANAGER_METRICS: Final = (
    PODENDPOINT_FAILURES,
    CNI_CONFIG_FAILURES,
    NODE_TAINT_FAILURES,
    CNI_REQUESTS,
    CNI_REQUEST_DURATION,
)
