"""Gateway pool activities: resolving a configuration's pool, and the pool's ipConfigs
(VMSS model, instances; VM pool NICs). The ipConfig activities are called only by
GatewayPoolWorkflow, the single writer of one pool."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from temporalio import activity

from activities.azure import errors, vm_pool, vmss
from activities.azure.arm_payloads import as_object, raw_json, raw_json_list
from activities.azure.pool_resolution import (
    PoolResolutionError,
    pool_from_nodepool,
    pool_from_profile,
)
from contracts import activity_io
from contracts.activity_io import (
    ApplyPoolInput,
    ApplyVmssModelResult,
    MemberAddresses,
    PoolMembers,
    ReconcileMemberInput,
    ResolvePoolInput,
)
from contracts.azure_state import GatewayPool, PoolKind


def _refusal(err: PoolResolutionError) -> Exception:
    return errors.refused(errors.POOL_NOT_FOUND if err.not_found else errors.INVALID_POOL, str(err))


class GatewayPoolActivities:
    def __init__(self, network: NetworkManagementClient, compute: ComputeManagementClient) -> None:
        self._network = network
        self._compute = compute

    @activity.defn(name=activity_io.RESOLVE_GATEWAY_POOL)
    async def resolve_gateway_pool(self, data: ResolvePoolInput) -> GatewayPool:
        spec, scope = data.spec, data.scope
        profile = spec.vmss_profile
        if profile is not None:
            with errors.azure_errors(f"reading gateway VMSS {profile.vmss_name}"):
                try:
                    found = as_object(
                        await self._compute.virtual_machine_scale_sets.get(
                            profile.vmss_resource_group, profile.vmss_name, cls=raw_json
                        )
                    )
                except ResourceNotFoundError:
                    raise errors.refused(
                        errors.POOL_NOT_FOUND,
                        f"spec.gatewayVmssProfile: gateway VMSS {profile.vmss_name} not found in "
                        f"resource group {profile.vmss_resource_group} of subscription "
                        f"{scope.subscription_id}",
                    ) from None
            try:
                return pool_from_profile(found, scope.subscription_id, spec)
            except PoolResolutionError as err:
                raise _refusal(err) from None
        pool_name = spec.gateway_nodepool_name
        if not pool_name:
            raise errors.refused(
                errors.INVALID_POOL,
                "the spec names no gateway pool: set gatewayNodepoolName or gatewayVmssProfile",
            )
        rg = scope.resource_group
        scale_sets: list[dict[str, Any]] = []
        with errors.azure_errors(f"listing the scale sets of resource group {rg}"):
            async for item in self._compute.virtual_machine_scale_sets.list(rg, cls=raw_json_list):
                scale_sets.append(as_object(item))
        vms: list[dict[str, Any]] = []
        try:
            return pool_from_nodepool(
                pool_name,
                scale_sets,
                vms,
                scope.subscription_id,
                rg,
                public=spec.provision_public_ips,
            )
        except PoolResolutionError as err:
            if not err.not_found:
                raise _refusal(err) from None
        # No scale set carries the pool's tag: look for a VM pool (a second LIST only then).
        with errors.azure_errors(f"listing the VMs of resource group {rg}"):
            async for vm in self._compute.virtual_machines.list(rg, cls=raw_json_list):
                vms.append(as_object(vm))
        try:
            return pool_from_nodepool(
                pool_name,
                scale_sets,
                vms,
                scope.subscription_id,
                rg,
                public=spec.provision_public_ips,
            )
        except PoolResolutionError as err:
            raise _refusal(err) from None

    @activity.defn(name=activity_io.APPLY_VMSS_MODEL)
    async def apply_vmss_model(self, data: ApplyPoolInput) -> ApplyVmssModelResult:
        """Make the scale set model's primary NIC carry exactly the wanted ipConfigs of ours;
        one PUT (If-Match) only when it differs. A VM pool has no model: nothing to do."""
        if data.pool.kind is not PoolKind.VMSS:
            return ApplyVmssModelResult()
        return await vmss.apply_model(self._compute, data)

    @activity.defn(name=activity_io.LIST_POOL_MEMBERS)
    async def list_gateway_pool_members(self, pool: GatewayPool) -> PoolMembers:
        if pool.kind is PoolKind.VMSS:
            return PoolMembers(tuple(await vmss.list_members(self._compute, pool)))
        return PoolMembers(tuple(await vm_pool.list_members(self._network, self._compute, pool)))

    @activity.defn(name=activity_io.RECONCILE_POOL_MEMBER)
    async def reconcile_gateway_pool_member(self, data: ReconcileMemberInput) -> MemberAddresses:
        """Bring one instance (VMSS) or gateway NIC (VM pool) to the wanted ipConfigs and
        return its primary and secondary private IPs."""
        if data.pool.kind is PoolKind.VMSS:
            return await vmss.reconcile_instance(self._compute, self._network, data)
        return await vm_pool.reconcile_nic(self._network, data)
