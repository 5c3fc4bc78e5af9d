"""Activity names, inputs and results.

Workflows call activities through typed stubs with these names (workflows/activity_stubs.py), so
that workflow modules never import the modules that hold Azure or Kubernetes clients; a unit test
checks that every implementation has its stub's signature.
Every activity is idempotent: calling it again with the same input is safe at any point.
Nothing here carries a secret: the WireGuard private key stays in its Kubernetes Secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from contracts.azure_state import AzureScope, GatewayPool, NodeAddress
from contracts.conditions import ConditionStatus
from contracts.gateway_config import StaticGatewayConfigurationSpec
from contracts.node_io import GatewayPeer, PeerTable

# --- Kubernetes ----------------------------------------------------------------------------------

ENSURE_GATEWAY_KEY: Final = "ensure_gateway_key"
DELETE_GATEWAY_KEY: Final = "delete_gateway_key"
UPDATE_SGC_STATUS: Final = "update_sgc_status"
RECORD_SGC_EVENT: Final = "record_sgc_event"
REMOVE_SGC_FINALIZER: Final = "remove_sgc_finalizer"
LIST_GATEWAY_PEERS: Final = "list_gateway_peers"  # ListPeersInput -> GatewayPeers


@dataclass(frozen=True)
class SgcRef:
    namespace: str
    name: str
    uid: str  # a recreated object with the same name is a different configuration


@dataclass(frozen=True)
class GatewayKeyInput:
    sgc: SgcRef
    secret_namespace: str  # the controller's namespace, as upstream keeps `sgw-<uid>` there


@dataclass(frozen=True)
class GatewayKey:
    """Where the gateway's WireGuard key lives; the private key never leaves the Secret."""

    public_key: str  # base64
    secret_name: str
    secret_namespace: str


@dataclass(frozen=True)
class ConditionUpdate:
    type: str
    status: ConditionStatus
    reason: str
    message: str


@dataclass(frozen=True)
class StatusUpdate:
    """Status to write; fields left None are kept as they are on the object."""

    sgc: SgcRef
    observed_generation: int
    conditions: tuple[ConditionUpdate, ...] = ()
    egress_ip_prefix: str | None = None
    server_ip: str | None = None
    server_port: int | None = None
    key: GatewayKey | None = None


@dataclass(frozen=True)
class EventInput:
    sgc: SgcRef
    type: str  # Normal | Warning
    reason: str
    message: str


# --- Azure: gateway pool resolution and public IP prefixes --------------------------------------


@dataclass(frozen=True)
class ResourceChange:
    """One change an Azure write made, in words for history and Events, with the configuration it
    belongs to (None: something configurations share, e.g. a frontend or an instance)."""

    description: str
    owner_uid: str | None = None

    def concerns(self, owner_uid: str) -> bool:
        return self.owner_uid is None or self.owner_uid.lower() == owner_uid.lower()

    def on(self, where: str) -> ResourceChange:
        """The same change, said of a part, e.g. "instance 3: added ipConfig ..."."""
        return ResourceChange(f"{where}: {self.description}", self.owner_uid)


RESOLVE_GATEWAY_POOL: Final = "resolve_gateway_pool"
ENSURE_MANAGED_PREFIX: Final = "ensure_managed_public_ip_prefix"
GET_BYO_PREFIX: Final = "get_byo_public_ip_prefix"
DELETE_MANAGED_PREFIX: Final = "delete_managed_public_ip_prefix"


@dataclass(frozen=True)
class ResolvePoolInput:
    scope: AzureScope
    spec: StaticGatewayConfigurationSpec


@dataclass(frozen=True)
class EnsurePrefixInput:
    scope: AzureScope
    name: str  # egressgateway-<uid>
    prefix_length: int


@dataclass(frozen=True)
class ByoPrefixInput:
    scope: AzureScope
    prefix_id: str
    prefix_length: int  # the pool's; a prefix of another length is refused


@dataclass(frozen=True)
class DeletePrefixInput:
    scope: AzureScope
    name: str


@dataclass(frozen=True)
class DeletePrefixResult:
    deleted: bool  # False: there was nothing to delete
    deleted_public_ips: tuple[str, ...] = ()


# --- Azure: the internal load balancer (called only by LoadBalancerWorkflow) ---------------------

APPLY_LOAD_BALANCER: Final = "apply_load_balancer"


@dataclass(frozen=True)
class LoadBalancerRule:
    owner_uid: str  # the SGC uid: names the rule and the probe
    lb_pool_name: str  # frontend and backend pool name
    probe_path: str  # /gw/<uid>


@dataclass(frozen=True)
class ApplyLoadBalancerInput:
    scope: AzureScope
    rules: tuple[LoadBalancerRule, ...]  # every rule the load balancer should have, all owners


@dataclass(frozen=True)
class AppliedRule:
    owner_uid: str
    frontend_ip: str
    port: int


@dataclass(frozen=True)
class ApplyLoadBalancerResult:
    rules: tuple[AppliedRule, ...]
    changes: tuple[ResourceChange, ...] = ()  # e.g. "added rule <uid> on port 6000"
    deleted: bool = False  # no rules were wanted and the load balancer is gone


# --- Azure: gateway pool ipConfigs (called only by GatewayPoolWorkflow) --------------------------

APPLY_VMSS_MODEL: Final = "apply_vmss_model"
LIST_POOL_MEMBERS: Final = "list_gateway_pool_members"
RECONCILE_POOL_MEMBER: Final = "reconcile_gateway_pool_member"


@dataclass(frozen=True)
class PoolIpConfig:
    owner_uid: str
    ip_config_name: str  # egressgateway-<uid>
    public_ip_prefix_id: str  # "" in private mode


@dataclass(frozen=True)
class ApplyPoolInput:
    scope: AzureScope
    pool: GatewayPool
    ip_configs: tuple[PoolIpConfig, ...]  # every ipConfig the pool should carry, all owners


@dataclass(frozen=True)
class ApplyVmssModelResult:
    changes: tuple[ResourceChange, ...] = ()


@dataclass(frozen=True)
class PoolMember:
    """A VMSS instance (id = instance ID) or a VM pool's pre-created NIC (id = NIC name)."""

    id: str
    node_name: str


@dataclass(frozen=True)
class ReconcileMemberInput:
    scope: AzureScope
    pool: GatewayPool
    member: PoolMember
    ip_configs: tuple[PoolIpConfig, ...]


@dataclass(frozen=True)
class MemberAddresses:
    member: PoolMember
    primary_ip: str
    secondary_ips: tuple[tuple[str, str], ...]  # (owner uid, secondary IP)
    changes: tuple[ResourceChange, ...] = ()  # e.g. "updated instance 3 (was Failed)"

    def address_for(self, owner_uid: str) -> NodeAddress | None:
        for uid, ip in self.secondary_ips:
            if uid == owner_uid:
                return NodeAddress(self.member.node_name, self.primary_ip, ip)
        return None


@dataclass(frozen=True)
class PoolMembers:
    members: tuple[PoolMember, ...] = field(default_factory=tuple)


# --- Temporal: reaching the single-writer workflows (activities/temporal/) ------------------------
# A workflow cannot signal-with-start another workflow, so GatewayConfigWorkflow asks these
# activities, which signal-with-start LoadBalancerWorkflow / GatewayPoolWorkflow with the request
# and complete asynchronously: the single writer completes them with its answer
# (contracts.workflow_io.RuleResult / IpConfigResult, or None for removals) through
# COMPLETE_SINGLE_WRITER_REQUESTS, a local activity of the single writer.

ENSURE_LOAD_BALANCER_RULE: Final = "ensure_load_balancer_rule"
REMOVE_LOAD_BALANCER_RULE: Final = "remove_load_balancer_rule"
ENSURE_POOL_IP_CONFIG: Final = "ensure_pool_ip_config"
REMOVE_POOL_IP_CONFIG: Final = "remove_pool_ip_config"
COMPLETE_SINGLE_WRITER_REQUESTS: Final = "complete_single_writer_requests"


@dataclass(frozen=True)
class EnsureRuleCall:
    scope: AzureScope
    rule: LoadBalancerRule
    verify: bool = False  # drift check: the load balancer's workflow re-reads Azure


@dataclass(frozen=True)
class RemoveRuleCall:
    scope: AzureScope
    owner_uid: str


@dataclass(frozen=True)
class EnsureIpConfigCall:
    scope: AzureScope
    pool: GatewayPool
    ip_config: PoolIpConfig
    verify: bool = False


@dataclass(frozen=True)
class RemoveIpConfigCall:
    scope: AzureScope
    pool: GatewayPool
    owner_uid: str


@dataclass(frozen=True)
class ListPeersInput:
    """Whose PodEndpoints to list: a configuration's (SgcRef's fields, so that what 0.1.0 sent,
    an SgcRef, reads as a request from the API server)."""

    namespace: str
    name: str
    uid: str
    # A pass after a watched change may read what the controller's own PodEndpoint watch has
    # cached; passes that must not trust a cache (the periodic sync) list from the API server.
    from_watch_cache: bool = False

    @classmethod
    def of(cls, sgc: SgcRef, *, from_watch_cache: bool) -> ListPeersInput:
        return cls(sgc.namespace, sgc.name, sgc.uid, from_watch_cache=from_watch_cache)


@dataclass(frozen=True)
class GatewayPeers:
    """The pods egressing through one configuration: its PodEndpoints as WireGuard peers, in
    `table`; `peers` is how 0.1.0 returned them (recorded histories hold that form)."""

    peers: tuple[GatewayPeer, ...] = ()
    skipped: tuple[str, ...] = ()  # PodEndpoints that do not parse, with why
    table: PeerTable | None = None

    def as_table(self) -> PeerTable:
        return self.table if self.table is not None else PeerTable.of(self.peers)
