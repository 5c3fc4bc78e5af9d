"""Workflow names, message names, inputs and results.

Three workflows (docs/control-plane.md): one GatewayConfigWorkflow per StaticGatewayConfiguration,
and single writers for shared Azure resources: a LoadBalancerWorkflow per internal load balancer
and a GatewayPoolWorkflow per gateway pool. IDs come from contracts.resource_names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from contracts import resource_names
from contracts.activity_io import LoadBalancerRule, PoolIpConfig, SgcRef
from contracts.azure_state import AzureScope, GatewayPool, NodeAddress
from contracts.gateway_config import StaticGatewayConfigurationSpec

GATEWAY_CONFIG_WORKFLOW: Final = "GatewayConfigWorkflow"
LOAD_BALANCER_WORKFLOW: Final = "LoadBalancerWorkflow"
GATEWAY_POOL_WORKFLOW: Final = "GatewayPoolWorkflow"

# GatewayConfigWorkflow messages
DELIVER_SPEC: Final = "deliver"  # signal: SpecDelivery (watchers, signal-with-start)
APPLY_SPEC: Final = (
    "apply"  # update: SpecDelivery -> ConfigurationStatus (callers wanting a result)
)
NODES_CHANGED: Final = "nodes_changed"  # signal: no argument; re-run the pool step
GET_STATUS: Final = "status"  # query -> ConfigurationStatus

# LoadBalancerWorkflow messages
ENSURE_RULE: Final = "ensure_rule"  # update: RuleRequest -> RuleResult
REMOVE_RULE: Final = "remove_rule"  # update: owner uid (str) -> None

# GatewayPoolWorkflow messages
ENSURE_IP_CONFIG: Final = "ensure_ip_config"  # update: IpConfigRequest -> IpConfigResult
REMOVE_IP_CONFIG: Final = "remove_ip_config"  # update: owner uid (str) -> None
POOL_MEMBERS_CHANGED: Final = "members_changed"  # signal: no argument (a node joined or left)

# How long a single writer collects requests before one apply. Every configuration waits this
# long twice (load balancer, then pool) on its way to Ready; requests that arrive later go into the
# next apply. Measured (bench/control_plane_*.py): 0.2 s keeps time to Ready within 1.10x of the
# Azure critical path while 10 configurations created at once still take 22 writes (0.5 s: 16
# writes, 1.12x).
DEFAULT_BATCH_WINDOW_SECONDS: Final = 0.2


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


@dataclass(frozen=True)
class GatewayConfigInput:
    namespace: str
    name: str
    settings: ControllerSettings
    # Set when continuing as new: the last delivery and what is applied in Azure.
    carried: AppliedConfiguration | None = None
    pending: SpecDelivery | None = None
    status: ConfigurationStatus | None = None  # last status, so a settled delivery is not redone


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


@dataclass(frozen=True)
class ConfigurationStatus:
    phase: str  # Pending | Invalid | Provisioning | Ready | Degraded | Deleting | Deleted
    observed_generation: int
    message: str = ""
    egress_ip_prefix: str = ""
    frontend_ip: str = ""
    port: int = 0
    nodes: tuple[NodeAddress, ...] = ()


@dataclass(frozen=True)
class LoadBalancerInput:
    scope: AzureScope
    carried_rules: tuple[LoadBalancerRule, ...] = ()
    # Requests arriving within this long of the first one share one apply.
    batch_window_seconds: float = DEFAULT_BATCH_WINDOW_SECONDS


@dataclass(frozen=True)
class RuleRequest:
    rule: LoadBalancerRule
    verify: bool = False  # drift check: re-read Azure even when nothing is queued


@dataclass(frozen=True)
class RuleResult:
    frontend_ip: str
    port: int
    repaired: tuple[str, ...] = ()


@dataclass(frozen=True)
class GatewayPoolInput:
    scope: AzureScope
    pool: GatewayPool
    carried_ip_configs: tuple[PoolIpConfig, ...] = ()
    batch_window_seconds: float = DEFAULT_BATCH_WINDOW_SECONDS


@dataclass(frozen=True)
class IpConfigRequest:
    ip_config: PoolIpConfig
    verify: bool = False


@dataclass(frozen=True)
class IpConfigResult:
    nodes: tuple[NodeAddress, ...]
    repaired: tuple[str, ...] = ()
