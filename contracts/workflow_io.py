"""Workflow names, message names, inputs and results.

Three workflows (docs/control-plane.md): one GatewayConfigWorkflow per StaticGatewayConfiguration,
and single writers for shared Azure resources: a LoadBalancerWorkflow per internal load balancer
and a GatewayPoolWorkflow per gateway pool. IDs come from contracts.resource_names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from contracts import resource_names
from contracts.activity_io import LoadBalancerRule, PoolIpConfig, ResourceChange, SgcRef
from contracts.azure_state import AzureScope, GatewayPool, NodeAddress
from contracts.gateway_config import StaticGatewayConfigurationSpec
from contracts.node_io import NodeGateway

GATEWAY_CONFIG_WORKFLOW: Final = "GatewayConfigWorkflow"
LOAD_BALANCER_WORKFLOW: Final = "LoadBalancerWorkflow"
GATEWAY_POOL_WORKFLOW: Final = "GatewayPoolWorkflow"

# GatewayConfigWorkflow messages
DELIVER_SPEC: Final = "deliver"  # signal: SpecDelivery (watchers, signal-with-start)
APPLY_SPEC: Final = (
    "apply"  # update: SpecDelivery -> ConfigurationStatus (callers wanting a result)
)
NODES_CHANGED: Final = "nodes_changed"  # signal: no argument; re-run the pool step
PEERS_CHANGED: Final = "peers_changed"  # signal: no argument; a PodEndpoint of it changed
# Node agents use contracts.node_io.NODE_AGENT_STARTED and NODE_GATEWAY_QUERY.
GET_STATUS: Final = "status"  # query -> ConfigurationStatus

# LoadBalancerWorkflow messages
SUBMIT_RULE: Final = "submit_rule"  # signal: RuleSubmission; answered by completing its activity

# GatewayPoolWorkflow messages
SUBMIT_IP_CONFIG: Final = "submit_ip_config"  # signal: IpConfigSubmission, answered likewise
POOL_MEMBERS_CHANGED: Final = "members_changed"  # signal: no argument (a node joined or left)

# How a single writer collects requests into one apply (a debounce): it applies once no new request
# has arrived for the quiet period, or when the window since the first one is over. A lone
# configuration waits only the quiet period, twice (load balancer, then pool) on its way to Ready;
# configurations created together keep arriving within it and share applies.
# Figures: bench/control_plane_ready_time.py and control_plane_batching.py.
DEFAULT_BATCH_QUIET_SECONDS: Final = 0.2
DEFAULT_BATCH_WINDOW_SECONDS: Final = 2.0


@dataclass(frozen=True)
class SpecDelivery:
    """One observed state of the object. Workflows ignore deliveries they have already seen."""

    sgc: SgcRef
    generation: int
    spec: StaticGatewayConfigurationSpec
    deleting: bool = False  # deletionTimestamp is set, or the object is gone


@dataclass(frozen=True)
class ControllerSettings:
    scope: AzureScope
    secret_namespace: str
    drift_check_seconds: int = 300
    # The controllers' task queue: watchers start configuration workflows on it.
    task_queue: str = resource_names.CONTROLLER_TASK_QUEUE
    # Configure gateway nodes through their agents (egressgw-node-<name> task queues). Off only
    # for running the control plane without agents (its own tests).
    configure_nodes: bool = True
    # A node whose agent does not answer within this long (does not pick up its work, or stops
    # heartbeating in the middle of it) is named in Degraded, not waited for, and retried when its
    # agent says it started, on the node retry timer (node_decisions.node_retry_seconds: twice
    # this or 15 s, doubling up to the drift interval) and by the drift pass.
    node_answer_timeout_seconds: int = 10
    # 0.1.0's pick-up timeout, which node_answer_timeout_seconds replaced; kept so that the inputs
    # of runs started by 0.1.0 still decode. Unused.
    node_start_timeout_seconds: int = 30
    # The periodic full peer sync: the PodEndpoints re-listed and every gateway's peers made
    # exactly those, at least this often. Every drift pass does it too, so it only runs on its own
    # timer when shorter than drift_check_seconds; 0 (runs started before it existed): the drift
    # pass alone.
    peer_sync_seconds: int = 0


@dataclass(frozen=True)
class GatewayConfigInput:
    namespace: str
    name: str
    settings: ControllerSettings
    state: GatewayConfigState | None = None  # set when continuing as new


@dataclass(frozen=True)
class AppliedConfiguration:
    """What one configuration owns right now; deletion and compensation undo exactly this."""

    sgc: SgcRef
    generation: int = 0
    key_secret: str = ""  # Secret name, "" when none
    pool: GatewayPool | None = None  # registered with this pool's workflow
    rule_registered: bool = False  # registered with the load balancer's workflow
    managed_prefix: str = ""  # name of the prefix we created, "" when none
    public_ip_prefix_id: str = ""
    # Gateways asked of node agents, one per pool node (also those whose agent did not answer).
    node_gateways: tuple[NodeGateway, ...] = ()


@dataclass(frozen=True)
class NodeProblem:
    """A gateway node whose agent did not configure its gateway, and why (for the status)."""

    node_name: str
    reason: str


@dataclass(frozen=True)
class ConfigurationStatus:
    phase: str  # Pending | Invalid | Provisioning | Ready | Degraded | Deleting | Deleted
    observed_generation: int
    message: str = ""
    egress_ip_prefix: str = ""
    frontend_ip: str = ""
    port: int = 0
    nodes: tuple[NodeAddress, ...] = ()
    node_problems: tuple[NodeProblem, ...] = ()  # sorted by node name
    failed_passes: int = 0  # consecutive passes that ended Degraded: the retry backs off


@dataclass
class GatewayConfigState:
    """Everything a GatewayConfigWorkflow carries over continue-as-new: the last delivery, what
    this configuration owns in Azure and on nodes, and its last status (so that a settled
    delivery is not reconciled again)."""

    status: ConfigurationStatus
    desired: SpecDelivery | None = None
    applied: AppliedConfiguration | None = None
    # Node work signalled but not done yet when the run continued as new: the next run does it
    # first (a `peers_changed` that came with the last workflow task would be lost otherwise).
    peers_changed: bool = False
    restarted_nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadBalancerInput:
    scope: AzureScope
    carried_rules: tuple[LoadBalancerRule, ...] = ()
    # Longest a batch collects requests; it closes earlier after batch_quiet_seconds without one.
    batch_window_seconds: float = DEFAULT_BATCH_WINDOW_SECONDS
    batch_quiet_seconds: float = DEFAULT_BATCH_QUIET_SECONDS


@dataclass(frozen=True)
class RuleResult:
    frontend_ip: str
    port: int
    repaired: tuple[ResourceChange, ...] = ()  # what the apply answering this request changed


@dataclass(frozen=True)
class GatewayPoolInput:
    scope: AzureScope
    pool: GatewayPool
    carried_ip_configs: tuple[PoolIpConfig, ...] = ()
    batch_window_seconds: float = DEFAULT_BATCH_WINDOW_SECONDS
    batch_quiet_seconds: float = DEFAULT_BATCH_QUIET_SECONDS


@dataclass(frozen=True)
class IpConfigResult:
    nodes: tuple[NodeAddress, ...]
    repaired: tuple[ResourceChange, ...] = ()


# --- Requests to the single writers by signal ---------------------------------------------------
# A caller's activity signals (with start) its request and completes asynchronously: the single
# writer completes that activity with the answer (reply_token = the activity's task token, base64).
# No request holds an update open, so any number of configurations can wait on one single writer.


@dataclass(frozen=True)
class RuleSubmission:
    owner_uid: str
    rule: LoadBalancerRule | None  # None: remove the owner's rule and probe
    reply_token: str
    verify: bool = False  # drift check: re-read Azure even when nothing changed


@dataclass(frozen=True)
class IpConfigSubmission:
    owner_uid: str
    ip_config: PoolIpConfig | None  # None: remove the owner's ipConfig
    reply_token: str
    verify: bool = False


@dataclass(frozen=True)
class RequestFailed:
    """A single writer's answer when it could not carry out a request (final for that request:
    the single writer has retried its own Azure calls)."""

    message: str
    error_type: str  # the ApplicationError type the caller's activity fails with


@dataclass(frozen=True)
class RequestReply:
    """The answer for one submitted request: exactly one of rule / ip_config / failure, or none
    of them for a removal."""

    reply_token: str
    rule: RuleResult | None = None
    ip_config: IpConfigResult | None = None
    failure: RequestFailed | None = None


@dataclass(frozen=True)
class CompleteRequestsInput:
    replies: tuple[RequestReply, ...]
