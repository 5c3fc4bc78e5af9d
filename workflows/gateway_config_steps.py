"""The steps GatewayConfigWorkflow takes, one typed activity call each: which stub, which input,
which options, which deterministic activity ID and which summary for the Web UI.

`tag` is `<uid>/g<generation>/p<pass>` (or a teardown's own prefix): activity IDs name the
configuration, the generation and the pass, so a reordered call can never take another's result
on replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contracts.activity_io import (
    ByoPrefixInput,
    DeletePrefixInput,
    EnsureIpConfigCall,
    EnsurePrefixInput,
    EnsureRuleCall,
    EventInput,
    GatewayKey,
    GatewayKeyInput,
    GatewayPeers,
    ListPeersInput,
    LoadBalancerRule,
    PoolIpConfig,
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
    NodeGateway,
    PeerSyncResult,
    PeerTable,
    RemoveGatewayInput,
    SyncPeersInput,
)
from contracts.workflow_io import ControllerSettings, IpConfigResult, RuleResult, SpecDelivery
from workflows import activity_calls, activity_stubs
from workflows import node_fanout as fanout
from workflows.activity_calls import AZURE, KUBE, SINGLE_WRITER
from workflows.gateway_config_decisions import PrefixKind, PrefixPlan
from workflows.node_fanout import NodeCall, NodeDone, NodeFailed


@dataclass(frozen=True)
class ConfigSteps:
    """Every activity call of one configuration's workflow, bound to the controller's settings."""

    settings: ControllerSettings

    # --- Kubernetes ------------------------------------------------------------------------------

    async def ensure_key(self, desired: SpecDelivery, tag: str) -> GatewayKey:
        return await activity_calls.execute(
            activity_stubs.ensure_gateway_key,
            self._key_input(desired.sgc),
            KUBE,
            activity_id=f"key/ensure/{tag}",
            summary="ensure the gateway WireGuard key Secret",
        )

    async def delete_key(self, sgc: SgcRef, tag: str) -> None:
        await activity_calls.execute(
            activity_stubs.delete_gateway_key,
            self._key_input(sgc),
            KUBE,
            activity_id=f"{tag}/key/delete",
            summary="delete the gateway key Secret",
        )

    def _key_input(self, sgc: SgcRef) -> GatewayKeyInput:
        return GatewayKeyInput(sgc=sgc, secret_namespace=self.settings.secret_namespace)

    async def write_status(self, update: StatusUpdate, activity_id: str, summary: str) -> None:
        await activity_calls.execute(
            activity_stubs.update_sgc_status,
            update,
            KUBE,
            activity_id=activity_id,
            summary=summary,
        )

    async def record_event(self, event: EventInput, activity_id: str) -> None:
        await activity_calls.execute(
            activity_stubs.record_sgc_event,
            event,
            KUBE,
            activity_id=activity_id,
            summary=f"event {event.reason}",
        )

    async def remove_finalizer(self, sgc: SgcRef, tag: str) -> None:
        await activity_calls.execute(
            activity_stubs.remove_sgc_finalizer,
            sgc,
            KUBE,
            activity_id=f"finalizer/remove/{tag}",
            summary="remove the finalizer",
        )

    async def list_peers(
        self, sgc: SgcRef, tag: str, *, from_watch_cache: bool, local: bool
    ) -> GatewayPeers:
        """`local`: as a local activity, which saves a peer pass a round trip through Temporal
        (workflows/gateway_config.py, PATCH_LOCAL_PEER_LIST)."""
        call = activity_calls.execute_local if local else activity_calls.execute
        return await call(
            activity_stubs.list_gateway_peers,
            ListPeersInput.of(sgc, from_watch_cache=from_watch_cache),
            KUBE,
            activity_id=f"peers/list/{tag}",
            summary="list the configuration's PodEndpoints"
            + (" (watch cache)" if from_watch_cache else ""),
        )

    # --- Azure -----------------------------------------------------------------------------------

    async def resolve_pool(self, desired: SpecDelivery, tag: str) -> GatewayPool:
        return await activity_calls.execute(
            activity_stubs.resolve_gateway_pool,
            ResolvePoolInput(scope=self.settings.scope, spec=desired.spec),
            AZURE,
            activity_id=f"pool/resolve/{tag}",
            summary="resolve the gateway node pool",
        )

    async def ensure_prefix(
        self, plan: PrefixPlan, pool: GatewayPool, tag: str
    ) -> PublicPrefix | None:
        scope = self.settings.scope
        match plan.kind:
            case PrefixKind.NONE:
                return None
            case PrefixKind.MANAGED:
                return await activity_calls.execute(
                    activity_stubs.ensure_managed_public_ip_prefix,
                    EnsurePrefixInput(
                        scope=scope, name=plan.managed_name, prefix_length=pool.prefix_length
                    ),
                    AZURE,
                    activity_id=f"prefix/ensure/{tag}",
                    summary=f"ensure managed public IP prefix {plan.managed_name}",
                )
            case PrefixKind.BYO:
                return await activity_calls.execute(
                    activity_stubs.get_byo_public_ip_prefix,
                    ByoPrefixInput(
                        scope=scope, prefix_id=plan.byo_id, prefix_length=pool.prefix_length
                    ),
                    AZURE,
                    activity_id=f"prefix/check/{tag}",
                    summary="check the bring-your-own public IP prefix",
                )

    async def delete_prefix(self, name: str, tag: str) -> None:
        await activity_calls.execute(
            activity_stubs.delete_managed_public_ip_prefix,
            DeletePrefixInput(scope=self.settings.scope, name=name),
            AZURE,
            activity_id=f"{tag}/prefix/delete",
            summary=f"delete managed public IP prefix {name} and its public IPs",
        )

    # --- Single writers (the load balancer's and the pool's workflows) ---------------------------

    async def ensure_rule(self, rule: LoadBalancerRule, tag: str, *, verify: bool) -> RuleResult:
        return await activity_calls.execute(
            activity_stubs.ensure_load_balancer_rule,
            EnsureRuleCall(scope=self.settings.scope, rule=rule, verify=verify),
            SINGLE_WRITER,
            activity_id=f"rule/ensure/{tag}",
            summary=f"load balancer rule and probe on {rule.lb_pool_name}"
            + (" (verify)" if verify else ""),
        )

    async def remove_rule(self, owner_uid: str, tag: str) -> None:
        await activity_calls.execute(
            activity_stubs.remove_load_balancer_rule,
            RemoveRuleCall(scope=self.settings.scope, owner_uid=owner_uid),
            SINGLE_WRITER,
            activity_id=f"{tag}/rule/remove",
            summary="remove load balancer rule and probe",
        )

    async def ensure_ip_config(
        self, pool: GatewayPool, ip_config: PoolIpConfig, tag: str, *, verify: bool
    ) -> IpConfigResult:
        return await activity_calls.execute(
            activity_stubs.ensure_pool_ip_config,
            EnsureIpConfigCall(
                scope=self.settings.scope, pool=pool, ip_config=ip_config, verify=verify
            ),
            SINGLE_WRITER,
            activity_id=f"ipconfig/ensure/{tag}",
            summary=f"ipConfig {ip_config.ip_config_name} on {pool.name}"
            + (" (verify)" if verify else ""),
        )

    async def remove_ip_config(self, pool: GatewayPool, owner_uid: str, tag: str) -> None:
        await activity_calls.execute(
            activity_stubs.remove_pool_ip_config,
            RemoveIpConfigCall(scope=self.settings.scope, pool=pool, owner_uid=owner_uid),
            SINGLE_WRITER,
            activity_id=f"{tag}/ipconfig/remove/{pool.name.lower()}",
            summary=f"remove ipConfig from {pool.name}",
        )

    # --- Gateway nodes (each node's agent, on the node's task queue) ----------------------------

    async def apply_nodes(
        self,
        gateways: Sequence[NodeGateway],
        peers: PeerTable | None,
        tag: str,
        restarts: fanout.Restarts | None = None,
    ) -> list[NodeDone[ApplyGatewayResult] | NodeFailed]:
        """Applies carry the peers as rows, the form every agent reads (0.1.0's too): they are
        rare (a new generation, the drift pass, a restarted agent), peer passes are not."""
        rows = peers.rows() if peers is not None else None
        return await fanout.on_every_node(
            activity_stubs.apply_node_gateway,
            gateways,
            lambda g: NodeCall(
                ApplyGatewayInput(node_name=g.node_name, gateway=g, peers=rows),
                f"node/apply/{g.node_name}/{tag}",
                f"gateway wg-{g.listen_port} on node {g.node_name}",
            ),
            self._node_options(),
            restarts,
        )

    async def sync_nodes(
        self, gateways: Sequence[NodeGateway], peers: PeerTable, tag: str
    ) -> list[NodeDone[PeerSyncResult] | NodeFailed]:
        return await fanout.on_every_node(
            activity_stubs.sync_node_peers,
            gateways,
            lambda g: NodeCall(
                SyncPeersInput(
                    node_name=g.node_name,
                    sgc_uid=g.sgc_uid,
                    listen_port=g.listen_port,
                    table=peers,
                ),
                f"node/peers/{g.node_name}/{tag}",
                f"{peers.size} peers on node {g.node_name}",
            ),
            self._node_options(),
        )

    async def remove_node_gateways(
        self, gateways: Sequence[NodeGateway], tag: str
    ) -> list[NodeDone[None] | NodeFailed]:
        return await fanout.on_every_node(
            activity_stubs.remove_node_gateway,
            gateways,
            lambda g: NodeCall(
                RemoveGatewayInput(
                    node_name=g.node_name,
                    sgc_uid=g.sgc_uid,
                    listen_port=g.listen_port,
                    secondary_ip=g.secondary_ip,
                ),
                f"{tag}/node/remove/{g.node_name}/{g.listen_port}",
                f"remove wg-{g.listen_port} from node {g.node_name}",
            ),
            self._node_options(),
        )

    def _node_options(self) -> activity_calls.ActivityOptions:
        return activity_calls.node_options(self.settings.node_answer_timeout_seconds)
