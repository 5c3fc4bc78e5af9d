"""VMSS gateway pools: the scale set model's NIC profile, its instances, and each instance's NIC
(docs/control-plane.md, GatewayPoolWorkflow)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, cast

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.core.polling import AsyncLROPoller
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient

from activities.azure import errors, long_operations
from activities.azure.arm_json import (
    IpConfigurationJson,
    NetworkInterfaceJson,
    NicConfigurationJson,
)
from activities.azure.arm_payloads import as_object, json_body, raw_json, raw_json_list
from activities.azure.ip_config_plan import (
    IpConfigPlan,
    NicShape,
    NicShapeError,
    WantedIpConfig,
    plan_ip_configs,
    private_ips,
)
from contracts import resource_names
from contracts.activity_io import (
    ApplyPoolInput,
    ApplyVmssModelResult,
    MemberAddresses,
    PoolIpConfig,
    PoolMember,
    ReconcileMemberInput,
    ResourceChange,
)
from contracts.azure_state import AzureScope, GatewayPool


def backend_pool_id(scope: AzureScope, pool: GatewayPool) -> str:
    return resource_names.backend_address_pool_id(
        scope.subscription_id,
        scope.load_balancer_resource_group,
        scope.load_balancer_name,
        pool.lb_pool_name,
    )


def wanted_in_profile(ip_configs: Sequence[PoolIpConfig]) -> list[WantedIpConfig]:
    return [WantedIpConfig(c.ip_config_name, c.public_ip_prefix_id) for c in ip_configs]


def primary_nic_index(configs: Sequence[NicConfigurationJson]) -> int:
    for i, config in enumerate(configs):
        if (config.get("properties") or {}).get("primary") is True:
            return i
    if len(configs) == 1:
        return 0
    raise NicShapeError("no primary network interface configuration")


def plan_nic_configurations(
    configs: Sequence[NicConfigurationJson],
    ip_configs: Sequence[PoolIpConfig],
    pool_id: str,
) -> tuple[list[NicConfigurationJson], IpConfigPlan]:
    """The NIC configurations with the primary one's ipConfigurations planned."""
    out = [copy.deepcopy(c) for c in configs]
    primary = out[primary_nic_index(out)]
    current: list[IpConfigurationJson] = list(
        (primary.get("properties") or {}).get("ipConfigurations") or []
    )
    plan = plan_ip_configs(current, wanted_in_profile(ip_configs), pool_id, NicShape.VMSS_PROFILE)
    primary.setdefault("properties", {})["ipConfigurations"] = plan.ip_configurations
    return out, plan


def _profile_configs(vmss: dict[str, Any]) -> list[NicConfigurationJson]:
    profile = (vmss.get("properties") or {}).get("virtualMachineProfile") or {}
    configs = (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []
    return cast(list[NicConfigurationJson], configs)


def _put_vmss(
    compute: ComputeManagementClient, rg: str, name: str, body: object, etag: str | None
) -> long_operations.Begin[Any]:
    async def begin(token: str | None) -> AsyncLROPoller[Any]:
        if etag:
            return await compute.virtual_machine_scale_sets.begin_create_or_update(
                rg,
                name,
                json_body(body),
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
                cls=raw_json,
                continuation_token=token,
            )
        return await compute.virtual_machine_scale_sets.begin_create_or_update(
            rg, name, json_body(body), cls=raw_json, continuation_token=token
        )

    return begin


def _update_instance(
    compute: ComputeManagementClient,
    rg: str,
    name: str,
    instance_id: str,
    body: object,
    etag: str | None,
) -> long_operations.Begin[Any]:
    async def begin(token: str | None) -> AsyncLROPoller[Any]:
        if etag:
            return await compute.virtual_machine_scale_set_vms.begin_update(
                rg,
                name,
                instance_id,
                json_body(body),
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
                cls=raw_json,
                continuation_token=token,
            )
        return await compute.virtual_machine_scale_set_vms.begin_update(
            rg, name, instance_id, json_body(body), cls=raw_json, continuation_token=token
        )

    return begin


async def apply_model(
    compute: ComputeManagementClient, data: ApplyPoolInput
) -> ApplyVmssModelResult:
    pool = data.pool
    rg, name = pool.resource_group, pool.name
    key = f"PUT {resource_names.vmss_id(pool.subscription_id, rg, name)}"
    await long_operations.resume_interrupted(key, _put_vmss(compute, rg, name, {}, None))
    with errors.azure_errors(f"reading gateway VMSS {name}"):
        vmss = as_object(await compute.virtual_machine_scale_sets.get(rg, name, cls=raw_json))
    long_operations.require_settled(f"gateway VMSS {name}", vmss)
    try:
        configs, plan = plan_nic_configurations(
            _profile_configs(vmss), data.ip_configs, backend_pool_id(data.scope, pool)
        )
    except NicShapeError as err:
        raise errors.refused(errors.INVALID_POOL, f"gateway VMSS {name}: {err}") from None
    changes = [c.on(f"VMSS {name} model") for c in plan.changes]
    if (vmss.get("properties") or {}).get("provisioningState") == "Failed":
        changes.append(ResourceChange(f"VMSS {name} model: re-applied (the scale set was Failed)"))
    if not changes:
        return ApplyVmssModelResult()
    network_profile = copy.deepcopy(
        ((vmss.get("properties") or {}).get("virtualMachineProfile") or {}).get("networkProfile")
        or {}
    )
    network_profile["networkInterfaceConfigurations"] = configs
    # Only the NIC profile (and the location ARM requires): a PUT must not carry back read-only
    # or unrelated parts of the model.
    body = {
        "location": vmss.get("location"),
        "properties": {"virtualMachineProfile": {"networkProfile": network_profile}},
    }
    etag = vmss.get("etag")
    with errors.azure_errors(f"updating the model of gateway VMSS {name}"):
        await long_operations.run(key, _put_vmss(compute, rg, name, body, etag))
    return ApplyVmssModelResult(changes=tuple(changes))


async def list_members(compute: ComputeManagementClient, pool: GatewayPool) -> list[PoolMember]:
    members: list[PoolMember] = []
    with errors.azure_errors(f"listing the instances of gateway VMSS {pool.name}"):
        async for item in compute.virtual_machine_scale_set_vms.list(
            pool.resource_group, pool.name, cls=raw_json_list
        ):
            instance = as_object(item)
            os_profile = (instance.get("properties") or {}).get("osProfile") or {}
            members.append(
                PoolMember(
                    id=str(instance.get("instanceId", "")),
                    node_name=str(os_profile.get("computerName", "")),
                )
            )
    return members


async def _instance_nic(
    network: NetworkManagementClient, pool: GatewayPool, instance_id: str, nic_name: str
) -> NetworkInterfaceJson | None:
    with errors.azure_errors(f"reading the NIC of instance {instance_id} of VMSS {pool.name}"):
        try:
            nic = await network.network_interfaces.get_virtual_machine_scale_set_network_interface(
                pool.resource_group, pool.name, instance_id, nic_name, cls=raw_json
            )
        except ResourceNotFoundError:
            return None
    return cast(NetworkInterfaceJson, as_object(nic))


def _addresses(
    nic: NetworkInterfaceJson | None, ip_configs: Sequence[PoolIpConfig]
) -> tuple[str, list[tuple[str, str]], bool]:
    """(primary IP, [(owner uid, secondary IP)], complete) of an instance NIC as read."""
    if nic is None:
        return "", [], False
    primary, by_name = private_ips((nic.get("properties") or {}).get("ipConfigurations") or [])
    secondary = [
        (c.owner_uid, by_name[c.ip_config_name.lower()])
        for c in ip_configs
        if c.ip_config_name.lower() in by_name
    ]
    return primary, secondary, bool(primary) and len(secondary) == len(ip_configs)


async def reconcile_instance(
    compute: ComputeManagementClient,
    network: NetworkManagementClient,
    data: ReconcileMemberInput,
) -> MemberAddresses:
    """Update one instance when its NIC configuration differs from the wanted one, when it is
    Failed, or when its NIC lacks an address; then read its addresses."""
    pool, instance_id = data.pool, data.member.id
    rg, name = pool.resource_group, pool.name
    what = f"instance {instance_id} of gateway VMSS {name}"
    key = f"PUT {resource_names.vmss_vm_id(pool.subscription_id, rg, name, instance_id)}"
    await long_operations.resume_interrupted(
        key, _update_instance(compute, rg, name, instance_id, {}, None)
    )
    with errors.azure_errors(f"reading {what}"):
        instance = as_object(
            await compute.virtual_machine_scale_set_vms.get(rg, name, instance_id, cls=raw_json)
        )
    long_operations.require_settled(what, instance)
    props = instance.get("properties") or {}
    npc = (props.get("networkProfileConfiguration") or {}).get("networkInterfaceConfigurations")
    if not npc:
        raise errors.unexpected(f"{what} has no network profile configuration yet")
    try:
        configs, plan = plan_nic_configurations(
            cast(list[NicConfigurationJson], npc),
            data.ip_configs,
            backend_pool_id(data.scope, pool),
        )
    except NicShapeError as err:
        raise errors.refused(errors.INVALID_POOL, f"{what}: {err}") from None
    nic_name = str(configs[primary_nic_index(configs)].get("name", ""))
    changes = [c.on(f"instance {instance_id}") for c in plan.changes]
    failed = props.get("provisioningState") == "Failed"
    nic: NetworkInterfaceJson | None = None
    complete = False
    if not plan.changed and not failed:
        nic = await _instance_nic(network, pool, instance_id, nic_name)
        complete = _addresses(nic, data.ip_configs)[2]
    if plan.changed or failed or not complete:
        if failed:
            changes.append(ResourceChange(f"updated instance {instance_id} (was Failed)"))
        elif not plan.changed:
            changes.append(
                ResourceChange(f"updated instance {instance_id} (its NIC lacked an address)")
            )
        body = {
            "location": instance.get("location"),
            "properties": {
                "networkProfileConfiguration": {"networkInterfaceConfigurations": configs}
            },
        }
        etag = instance.get("etag")
        with errors.azure_errors(f"updating {what}"):
            await long_operations.run(
                key, _update_instance(compute, rg, name, instance_id, body, etag)
            )
        nic = await _instance_nic(network, pool, instance_id, nic_name)
    primary, secondary, complete = _addresses(nic, data.ip_configs)
    if not complete:
        raise errors.unexpected(f"failed to find the private IPs of {what} on NIC {nic_name}")
    return MemberAddresses(
        member=data.member,
        primary_ip=primary,
        secondary_ips=tuple(secondary),
        changes=tuple(changes),
    )
