"""The plan of one configuration: Azure read (GETs and LISTs only, through the same read-only
activity code the workflows run: pool resolution, pool members, the bring-your-own prefix check),
then the workflows' own decisions and planners over what was read.

In the order GatewayConfigWorkflow takes its steps (docs/control-plane.md): resolve the gateway
pool, check the public IP prefix (capacity, managed or bring-your-own), the load balancer's rule
(LoadBalancerWorkflow's planner over every owner's rule), the pool's ipConfigs (
GatewayPoolWorkflow's planners for the VMSS model and each instance, or each VM pool NIC), what a
spec change releases (the old pool's ipConfig, a managed prefix no longer used), and the gateway
each node's agent would be asked to hold.

Each configuration is planned against Azure as it is now, as if applied alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from temporalio.exceptions import ApplicationError

from activities.azure import errors, vm_pool
from activities.azure.arm_json import (
    IpConfigurationJson,
    LoadBalancerJson,
    NicConfigurationJson,
)
from activities.azure.arm_payloads import as_object, raw_json
from activities.azure.gateway_pool import GatewayPoolActivities
from activities.azure.ip_config_plan import (
    NicShape,
    NicShapeError,
    plan_ip_configs,
    private_ips,
)
from activities.azure.load_balancer import target_of
from activities.azure.load_balancer_plan import LoadBalancerAction, PlanError, plan_load_balancer
from activities.azure.public_ip_prefix import PublicIpPrefixActivities
from activities.azure.vm_pool import released_public_ips
from activities.azure.vmss import backend_pool_id, plan_nic_configurations, primary_nic_index
from contracts import resource_names
from contracts.activity_io import (
    ByoPrefixInput,
    GatewayKey,
    LoadBalancerRule,
    PoolIpConfig,
    ResolvePoolInput,
    SgcRef,
)
from contracts.azure_state import AzureScope, GatewayPool, NodeAddress, PoolKind
from contracts.gateway_config import StaticGatewayConfigurationSpec
from contracts.node_io import NodeGateway
from contracts.spec_validation import controller_errors, describe_field_errors, refusals
from contracts.workflow_io import AppliedConfiguration, SpecDelivery
from egressgw.plan.changes import (
    Action,
    PlannedChange,
    Target,
    frontend_ip,
    nic_ip_configs,
    node_changes,
    provisioning_failed,
    rule_port,
    rules_on,
    vmss_ip_configs,
    with_ip_config,
    with_rule,
)
from workflows import gateway_config_decisions as decide
from workflows import node_decisions


class AzureReadError(Exception):
    """Azure could not be read (not a refusal of the configuration): the plan is incomplete."""


@dataclass(frozen=True)
class PlanTarget:
    """One configuration to plan: the spec in the manifest, and the object as it is, if any."""

    sgc: SgcRef  # uid is changes.NEW_UID for an object not created yet
    spec: StaticGatewayConfigurationSpec
    current_spec: StaticGatewayConfigurationSpec | None = None  # None: no such object yet


@dataclass
class PoolOutcome:
    """A pool's planned changes, and its nodes' addresses for the configuration now."""

    changes: list[PlannedChange] = field(default_factory=list)
    nodes: list[NodeAddress] = field(default_factory=list)  # secondary "" when it has none yet


@dataclass(frozen=True)
class AzurePlan:
    changes: tuple[PlannedChange, ...] = ()
    refusal: str = ""


class _Refused(Exception):
    """A check of this planner's (as of the workflow's) refused the configuration."""


# The refusals the read-only activities decide themselves; any other error is Azure not read.
_REFUSALS = frozenset(
    {errors.POOL_NOT_FOUND, errors.INVALID_POOL, errors.INVALID_PREFIX, errors.LOAD_BALANCER_FULL}
)


def is_refusal(err: ApplicationError) -> bool:
    return err.type in _REFUSALS


class AzurePlanner:
    def __init__(
        self, network: NetworkManagementClient, compute: ComputeManagementClient, scope: AzureScope
    ) -> None:
        self._network = network
        self._compute = compute
        self._scope = scope
        self._pools = GatewayPoolActivities(network, compute)
        self._prefixes = PublicIpPrefixActivities(network)

    # --- reads -----------------------------------------------------------------------------------

    async def _get(self, action: str, call: Any) -> dict[str, Any] | None:
        with errors.azure_errors(action):
            try:
                return as_object(await call)
            except ResourceNotFoundError:
                return None

    async def _resolve(self, spec: StaticGatewayConfigurationSpec) -> GatewayPool:
        return await self._pools.resolve_gateway_pool(ResolvePoolInput(self._scope, spec))

    async def _load_balancer(self) -> LoadBalancerJson | None:
        target = target_of(self._scope)
        found = await self._get(
            f"reading load balancer {target.name}",
            self._network.load_balancers.get(target.resource_group, target.name, cls=raw_json),
        )
        return cast(LoadBalancerJson, found) if found is not None else None

    async def _managed_prefix(self, name: str) -> dict[str, Any] | None:
        rg = self._scope.resource_group
        return await self._get(
            f"reading public IP prefix {name}",
            self._network.public_ip_prefixes.get(rg, name, cls=raw_json),
        )

    # --- the plan --------------------------------------------------------------------------------

    async def plan(self, target: PlanTarget) -> AzurePlan:
        """What the workflow would change in Azure and on the nodes; reads only. What the
        controller refuses before reading anything (contracts/spec_validation.py) is refused
        here before reading too."""
        own = controller_errors(target.spec, self._scope.subscription_id)
        if own:
            return AzurePlan(refusal=describe_field_errors(own))
        try:
            return AzurePlan(changes=tuple(await self._plan(target)))
        except _Refused as refused:
            return AzurePlan(refusal=str(refused))
        except ApplicationError as err:
            if is_refusal(err):
                return AzurePlan(refusal=err.message)
            raise AzureReadError(err.message) from None

    async def _plan(self, target: PlanTarget) -> list[PlannedChange]:
        uid = target.sgc.uid
        delivery = SpecDelivery(sgc=target.sgc, generation=0, spec=target.spec)
        pool = await self._resolve(target.spec)
        problem = decide.prefix_capacity_error(delivery, pool) or decide.prefix_length_error(
            delivery, pool
        )
        if problem is not None:
            raise _Refused(problem)
        prefix_plan = decide.plan_prefix(delivery)
        changes: list[PlannedChange] = []

        # Public IP prefix: the managed one is created when missing; a user's is only checked.
        managed_name = resource_names.managed_resource_name(uid)
        managed = await self._managed_prefix(managed_name)
        prefix_id = ""
        prefix_length = pool.prefix_length
        if prefix_plan.kind is decide.PrefixKind.MANAGED:
            prefix_id = resource_names.public_ip_prefix_id(
                self._scope.subscription_id, self._scope.resource_group, managed_name
            )
            if managed is not None and not provisioning_failed(managed):
                prefix_length = int((managed.get("properties") or {}).get("prefixLength") or 0)
            else:
                changes.append(
                    PlannedChange(
                        Action.CREATE,
                        Target.AZURE,
                        f"public IP prefix {managed_name}",
                        (f"/{pool.prefix_length} in {self._scope.location}",),
                    )
                )
        elif prefix_plan.kind is decide.PrefixKind.BYO:
            checked = await self._prefixes.get_byo_public_ip_prefix(
                ByoPrefixInput(self._scope, prefix_plan.byo_id, pool.prefix_length)
            )
            prefix_id = checked.id
            prefix_length = checked.prefix_length

        # The load balancer rule, planned with every other owner's rule as it stands.
        lb = await self._load_balancer()
        rules = rules_on(lb)
        rule = LoadBalancerRule(uid, pool.lb_pool_name, resource_names.probe_path(uid))
        try:
            lb_plan = plan_load_balancer(lb, target_of(self._scope), with_rule(rules, uid, rule))
        except PlanError as err:
            raise _Refused(f"load balancer {self._scope.load_balancer_name}: {err}") from None
        name = f"load balancer {self._scope.load_balancer_name}"
        details = tuple(c.description for c in lb_plan.changes)
        if lb_plan.action is LoadBalancerAction.PUT:
            action = Action.CREATE if lb is None else Action.UPDATE
            changes.append(PlannedChange(action, Target.AZURE, name, details))
        elif lb_plan.action is LoadBalancerAction.DELETE:
            changes.append(PlannedChange(Action.DELETE, Target.AZURE, name, details))
        planned_lb = lb_plan.body if lb_plan.body is not None else lb
        port = lb_plan.ports[uid]

        # The pool's ipConfig, then what the change releases: the old pool, the managed prefix.
        ours = PoolIpConfig(uid, managed_name, prefix_id)
        after = await self._pool(pool, uid, ours)
        changes += after.changes
        before_pool = await self._current_pool(target)
        release = decide.plan_release(
            AppliedConfiguration(
                sgc=target.sgc,
                pool=before_pool,
                managed_prefix=managed_name if managed is not None else "",
            ),
            AppliedConfiguration(
                sgc=target.sgc, pool=pool, managed_prefix=prefix_plan.managed_name
            ),
        )
        before_nodes = after.nodes
        if release.old_pool is not None:
            self._check_move_capacity(target, release.old_pool, pool, prefix_length)
            released = await self._pool(release.old_pool, uid, None)
            changes += released.changes
            before_nodes = released.nodes
        if release.managed_prefix:
            changes.append(self._prefix_deletion(release.managed_prefix, managed))

        # The gateway on each node, before (as Azure holds it now) and after.
        old_port = rule_port(lb, uid)
        before: tuple[NodeGateway, ...] = ()
        if target.current_spec is not None and old_port is not None:
            old_rule = rules.get(uid)
            old_frontend = frontend_ip(lb, old_rule.lb_pool_name) if old_rule else ""
            before = self._gateways(
                target.sgc, old_frontend, old_port, [n for n in before_nodes if n.secondary_ip]
            )
        after_gateways = self._gateways(
            target.sgc, frontend_ip(planned_lb, pool.lb_pool_name), port, after.nodes
        )
        changes += node_changes(before, after_gateways)
        return changes

    async def _current_pool(self, target: PlanTarget) -> GatewayPool | None:
        """The pool the object's current spec names (where its ipConfig is now), if any."""
        current = target.current_spec
        if current is None or refusals(current, self._scope.subscription_id):
            return None
        try:
            return await self._resolve(current)
        except ApplicationError as err:
            if is_refusal(err):
                return None  # the current spec never got a pool: nothing to release
            raise

    @staticmethod
    def _check_move_capacity(
        target: PlanTarget, old: GatewayPool, new: GatewayPool, prefix_length: int
    ) -> None:
        """A move keeps the same public IP prefix and registers with the new pool before it
        leaves the old one (docs/control-plane.md), so for a while the prefix holds a public IP
        per instance of both pools; Azure refuses the new pool's when that does not fit."""
        current = target.current_spec
        if current is None or not current.provision_public_ips or prefix_length <= 0:
            return
        now = decide.plan_prefix(SpecDelivery(target.sgc, 0, current))
        wanted = decide.plan_prefix(SpecDelivery(target.sgc, 0, target.spec))
        if now != wanted or wanted.kind is decide.PrefixKind.NONE:
            return
        capacity = 2 ** (32 - prefix_length)
        needed = old.instance_count + new.instance_count
        if needed > capacity:
            raise _Refused(
                f"moving from gateway pool {old.name} to {new.name} keeps the /{prefix_length}"
                f" public IP prefix, which holds {capacity} addresses, while both pools hold one"
                f" each ({needed}): Azure would refuse the new pool's public IPs"
                " (PublicIpPrefixOutOfIpAddresses)"
            )

    def _prefix_deletion(self, name: str, found: dict[str, Any] | None) -> PlannedChange:
        ips = ((found or {}).get("properties") or {}).get("publicIPAddresses") or []
        details = (f"and its {len(ips)} public IPs",) if ips else ()
        return PlannedChange(Action.DELETE, Target.AZURE, f"public IP prefix {name}", details)

    @staticmethod
    def _gateways(
        sgc: SgcRef, frontend: str, port: int, nodes: Sequence[NodeAddress]
    ) -> tuple[NodeGateway, ...]:
        # The key's public half is not shown; the Secret's name is what the agent is given.
        key = GatewayKey("", resource_names.gateway_secret_name(sgc.uid), "")
        return node_decisions.node_gateways(sgc, key, frontend, port, nodes)

    # --- pools -----------------------------------------------------------------------------------

    async def _pool(self, pool: GatewayPool, uid: str, ours: PoolIpConfig | None) -> PoolOutcome:
        """`pool` with `uid`'s ipConfig made `ours` (None: removed), other owners' as they are."""
        try:
            if pool.kind is PoolKind.VMSS:
                return await self._vmss(pool, uid, ours)
            return await self._vm_pool(pool, uid, ours)
        except NicShapeError as err:
            raise _Refused(f"gateway pool {pool.name}: {err}") from None

    async def _vmss(self, pool: GatewayPool, uid: str, ours: PoolIpConfig | None) -> PoolOutcome:
        outcome = PoolOutcome()
        rg, name = pool.resource_group, pool.name
        pool_id = backend_pool_id(self._scope, pool)
        model = await self._get(
            f"reading gateway VMSS {name}",
            self._compute.virtual_machine_scale_sets.get(rg, name, cls=raw_json),
        )
        if model is None:
            raise _Refused(f"gateway VMSS {name} not found in resource group {rg}")
        profile = (model.get("properties") or {}).get("virtualMachineProfile") or {}
        configs = cast(
            list[NicConfigurationJson],
            (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or [],
        )
        primary = configs[primary_nic_index(configs)]
        current = list((primary.get("properties") or {}).get("ipConfigurations") or [])
        wanted = with_ip_config(vmss_ip_configs(current), uid, ours)
        _, model_plan = plan_nic_configurations(configs, wanted, pool_id)
        details = [c.description for c in model_plan.changes]
        if provisioning_failed(model):
            details.append("re-applied (the scale set is Failed)")
        if details:
            outcome.changes.append(
                PlannedChange(Action.UPDATE, Target.AZURE, f"VMSS {name} model", tuple(details))
            )
        for member in (await self._pools.list_gateway_pool_members(pool)).members:
            instance = await self._get(
                f"reading instance {member.id} of gateway VMSS {name}",
                self._compute.virtual_machine_scale_set_vms.get(rg, name, member.id, cls=raw_json),
            )
            if instance is None:
                continue
            props = instance.get("properties") or {}
            npc = cast(
                list[NicConfigurationJson],
                (props.get("networkProfileConfiguration") or {}).get(
                    "networkInterfaceConfigurations"
                )
                or [],
            )
            if not npc:
                continue
            planned, instance_plan = plan_nic_configurations(npc, wanted, pool_id)
            details = [c.description for c in instance_plan.changes]
            if provisioning_failed(instance):
                details.append("updated (the instance is Failed)")
            if details:
                outcome.changes.append(
                    PlannedChange(
                        Action.UPDATE,
                        Target.AZURE,
                        f"VMSS {name} instance {member.id} ({member.node_name})",
                        tuple(details),
                    )
                )
            nic_name = str(planned[primary_nic_index(planned)].get("name", ""))
            nic = await self._get(
                f"reading the NIC of instance {member.id} of VMSS {name}",
                self._network.network_interfaces.get_virtual_machine_scale_set_network_interface(
                    rg, name, member.id, nic_name, cls=raw_json
                ),
            )
            outcome.nodes.append(self._address(member.node_name, nic, uid))
        return outcome

    async def _vm_pool(self, pool: GatewayPool, uid: str, ours: PoolIpConfig | None) -> PoolOutcome:
        outcome = PoolOutcome()
        pool_id = backend_pool_id(self._scope, pool)
        for member in (await self._pools.list_gateway_pool_members(pool)).members:
            nic_name = member.id
            nic = await self._get(
                f"reading gateway NIC {nic_name}",
                self._network.network_interfaces.get(pool.resource_group, nic_name, cls=raw_json),
            )
            if nic is None:
                continue
            current = cast(
                list[IpConfigurationJson],
                (nic.get("properties") or {}).get("ipConfigurations") or [],
            )
            configs = with_ip_config(nic_ip_configs(current, pool), uid, ours)
            wanted = vm_pool.wanted_on_nic(configs, pool, nic_name)
            own_name = resource_names.managed_resource_name(uid).lower()
            mine = next((w for w in wanted if w.name.lower() == own_name), None)
            if mine is not None and mine.public_ip and ours is not None:
                outcome.changes += await self._public_ip(mine.public_ip, ours.public_ip_prefix_id)
            nic_plan = plan_ip_configs(current, wanted, pool_id, NicShape.STANDALONE_NIC)
            details = [c.description for c in nic_plan.changes]
            if provisioning_failed(nic):
                details.append("updated (the NIC is Failed)")
            if details:
                outcome.changes.append(
                    PlannedChange(
                        Action.UPDATE,
                        Target.AZURE,
                        f"NIC {nic_name} ({member.node_name})",
                        tuple(details),
                    )
                )
            for released in released_public_ips(current, nic_plan.ip_configurations, nic_name):
                outcome.changes.append(
                    PlannedChange(
                        Action.DELETE, Target.AZURE, f"public IP {released.rsplit('/', 1)[-1]}"
                    )
                )
            outcome.nodes.append(self._address(member.node_name, nic, uid))
        return outcome

    async def _public_ip(self, ip_id: str, prefix_id: str) -> list[PlannedChange]:
        """The per-NIC public IP of a VM pool, created from the prefix unless it is there."""
        parsed = resource_names.parse_arm_resource_id(ip_id)
        found = await self._get(
            f"reading public IP {parsed.name}",
            self._network.public_ip_addresses.get(parsed.resource_group, parsed.name, cls=raw_json),
        )
        if found is not None:
            props = found.get("properties") or {}
            prefix = str((props.get("publicIPPrefix") or {}).get("id", ""))
            if prefix.lower() == prefix_id.lower() and not provisioning_failed(found):
                return []
        prefix_name = prefix_id.rsplit("/", 1)[-1]
        return [
            PlannedChange(
                Action.CREATE,
                Target.AZURE,
                f"public IP {parsed.name}",
                (f"from public IP prefix {prefix_name}",),
            )
        ]

    @staticmethod
    def _address(node: str, nic: dict[str, Any] | None, uid: str) -> NodeAddress:
        configs = ((nic or {}).get("properties") or {}).get("ipConfigurations") or []
        primary, by_name = private_ips(configs)
        secondary = by_name.get(resource_names.managed_resource_name(uid).lower(), "")
        return NodeAddress(node, primary, secondary)
