"""Typed stubs of every activity the workflows call.

Workflows never import the modules that hold Azure, Kubernetes or netlink clients (the layer rule
in docs/design.md), yet `workflow.execute_activity` must know each activity's input and result
types so that mypy checks every call. These stubs carry the names of contracts.activity_io and
contracts.node_io and the signatures of the implementations; they never run. Where each one runs:

- Kubernetes and Azure activities: the controller's worker (activities/kube, activities/azure);
- single-writer requests and replies: the controller's worker (activities/temporal);
- node activities: the gateway agent of the node, on its own task queue (agent/node_activities).

tests/unit/test_activity_stubs.py checks that every implementation a worker registers has the
signature of its stub, so a stub cannot drift from the code it stands for.
"""

from __future__ import annotations

from typing import NoReturn

from temporalio import activity

from contracts import activity_io as io
from contracts import node_io
from contracts.activity_io import (
    ApplyLoadBalancerInput,
    ApplyLoadBalancerResult,
    ApplyPoolInput,
    ApplyVmssModelResult,
    ByoPrefixInput,
    DeletePrefixInput,
    DeletePrefixResult,
    EnsureIpConfigCall,
    EnsurePrefixInput,
    EnsureRuleCall,
    EventInput,
    GatewayKey,
    GatewayKeyInput,
    GatewayPeers,
    ListPeersInput,
    MemberAddresses,
    PoolMembers,
    ReconcileMemberInput,
    RemoveIpConfigCall,
    RemoveRuleCall,
    ResolvePoolInput,
    SgcRef,
    StatusUpdate,
)
from contracts.azure_state import GatewayPool, PublicPrefix
from contracts.node_io import (
    ApplyGatewayInput,
    ApplyGatewayResult,
    PeerSyncResult,
    RemoveGatewayInput,
    SyncPeersInput,
)
from contracts.workflow_io import CompleteRequestsInput, IpConfigResult, RuleResult


def _stub(name: str) -> NoReturn:
    raise NotImplementedError(f"{name} is a stub: a worker runs the real activity")


# --- Kubernetes (activities/kube) ---------------------------------------------------------------


@activity.defn(name=io.ENSURE_GATEWAY_KEY)
async def ensure_gateway_key(request: GatewayKeyInput) -> GatewayKey:
    _stub(io.ENSURE_GATEWAY_KEY)


@activity.defn(name=io.DELETE_GATEWAY_KEY)
async def delete_gateway_key(request: GatewayKeyInput) -> None:
    _stub(io.DELETE_GATEWAY_KEY)


@activity.defn(name=io.UPDATE_SGC_STATUS)
async def update_sgc_status(update: StatusUpdate) -> None:
    _stub(io.UPDATE_SGC_STATUS)


@activity.defn(name=io.RECORD_SGC_EVENT)
async def record_sgc_event(event: EventInput) -> None:
    _stub(io.RECORD_SGC_EVENT)


@activity.defn(name=io.REMOVE_SGC_FINALIZER)
async def remove_sgc_finalizer(sgc: SgcRef) -> None:
    _stub(io.REMOVE_SGC_FINALIZER)


@activity.defn(name=io.LIST_GATEWAY_PEERS)
async def list_gateway_peers(request: ListPeersInput) -> GatewayPeers:
    _stub(io.LIST_GATEWAY_PEERS)


# --- Azure (activities/azure) -------------------------------------------------------------------


@activity.defn(name=io.RESOLVE_GATEWAY_POOL)
async def resolve_gateway_pool(request: ResolvePoolInput) -> GatewayPool:
    _stub(io.RESOLVE_GATEWAY_POOL)


@activity.defn(name=io.ENSURE_MANAGED_PREFIX)
async def ensure_managed_public_ip_prefix(request: EnsurePrefixInput) -> PublicPrefix:
    _stub(io.ENSURE_MANAGED_PREFIX)


@activity.defn(name=io.GET_BYO_PREFIX)
async def get_byo_public_ip_prefix(request: ByoPrefixInput) -> PublicPrefix:
    _stub(io.GET_BYO_PREFIX)


@activity.defn(name=io.DELETE_MANAGED_PREFIX)
async def delete_managed_public_ip_prefix(request: DeletePrefixInput) -> DeletePrefixResult:
    _stub(io.DELETE_MANAGED_PREFIX)


@activity.defn(name=io.APPLY_LOAD_BALANCER)
async def apply_load_balancer(request: ApplyLoadBalancerInput) -> ApplyLoadBalancerResult:
    _stub(io.APPLY_LOAD_BALANCER)


@activity.defn(name=io.APPLY_VMSS_MODEL)
async def apply_vmss_model(request: ApplyPoolInput) -> ApplyVmssModelResult:
    _stub(io.APPLY_VMSS_MODEL)


@activity.defn(name=io.LIST_POOL_MEMBERS)
async def list_gateway_pool_members(pool: GatewayPool) -> PoolMembers:
    _stub(io.LIST_POOL_MEMBERS)


@activity.defn(name=io.RECONCILE_POOL_MEMBER)
async def reconcile_gateway_pool_member(request: ReconcileMemberInput) -> MemberAddresses:
    _stub(io.RECONCILE_POOL_MEMBER)


# --- Requests to the single writers (activities/temporal) ---------------------------------------
# Each completes asynchronously with the single writer's answer.


@activity.defn(name=io.ENSURE_LOAD_BALANCER_RULE)
async def ensure_load_balancer_rule(call: EnsureRuleCall) -> RuleResult:
    _stub(io.ENSURE_LOAD_BALANCER_RULE)


@activity.defn(name=io.REMOVE_LOAD_BALANCER_RULE)
async def remove_load_balancer_rule(call: RemoveRuleCall) -> None:
    _stub(io.REMOVE_LOAD_BALANCER_RULE)


@activity.defn(name=io.ENSURE_POOL_IP_CONFIG)
async def ensure_pool_ip_config(call: EnsureIpConfigCall) -> IpConfigResult:
    _stub(io.ENSURE_POOL_IP_CONFIG)


@activity.defn(name=io.REMOVE_POOL_IP_CONFIG)
async def remove_pool_ip_config(call: RemoveIpConfigCall) -> None:
    _stub(io.REMOVE_POOL_IP_CONFIG)


@activity.defn(name=io.COMPLETE_SINGLE_WRITER_REQUESTS)
async def complete_single_writer_requests(replies: CompleteRequestsInput) -> int:
    _stub(io.COMPLETE_SINGLE_WRITER_REQUESTS)


# --- Gateway nodes (agent/node_activities, on egressgw-node-<name>) -----------------------------


@activity.defn(name=node_io.APPLY_NODE_GATEWAY)
async def apply_node_gateway(request: ApplyGatewayInput) -> ApplyGatewayResult:
    _stub(node_io.APPLY_NODE_GATEWAY)


@activity.defn(name=node_io.REMOVE_NODE_GATEWAY)
async def remove_node_gateway(request: RemoveGatewayInput) -> None:
    _stub(node_io.REMOVE_NODE_GATEWAY)


@activity.defn(name=node_io.SYNC_NODE_PEERS)
async def sync_node_peers(request: SyncPeersInput) -> PeerSyncResult:
    _stub(node_io.SYNC_NODE_PEERS)


CONTROLLER_STUBS = (
    ensure_gateway_key,
    delete_gateway_key,
    update_sgc_status,
    record_sgc_event,
    remove_sgc_finalizer,
    list_gateway_peers,
    resolve_gateway_pool,
    ensure_managed_public_ip_prefix,
    get_byo_public_ip_prefix,
    delete_managed_public_ip_prefix,
    apply_load_balancer,
    apply_vmss_model,
    list_gateway_pool_members,
    reconcile_gateway_pool_member,
    ensure_load_balancer_rule,
    remove_load_balancer_rule,
    ensure_pool_ip_config,
    remove_pool_ip_config,
    complete_single_writer_requests,
)
NODE_STUBS = (apply_node_gateway, remove_node_gateway, sync_node_peers)
