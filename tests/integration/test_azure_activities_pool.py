"""The gateway pool activities (resolution, VMSS model and instances, VM pool NICs), run as real
activities with the real aio clients against the ARM emulator."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.azure import errors
from activities.azure.arm_payloads import json_body
from activities.azure.gateway_pool import GatewayPoolActivities
from activities.azure.load_balancer import LoadBalancerActivities
from activities.azure.public_ip_prefix import PublicIpPrefixActivities
from contracts import resource_names
from contracts.activity_io import (
    ApplyLoadBalancerInput,
    ApplyPoolInput,
    DeletePrefixInput,
    EnsurePrefixInput,
    LoadBalancerRule,
    MemberAddresses,
    PoolIpConfig,
    PoolMember,
    ReconcileMemberInput,
    ResolvePoolInput,
    ResourceChange,
)
from contracts.azure_state import AzureScope, GatewayPool, PoolKind
from contracts.gateway_config import GatewayVmssProfile, StaticGatewayConfigurationSpec
from sim.arm.server import ArmEmulator
from sim.topology import Topology

AsyncNet = Callable[..., Awaitable[NetworkManagementClient]]
AsyncCompute = Callable[..., Awaitable[ComputeManagementClient]]


def descriptions(changes: tuple[ResourceChange, ...]) -> list[str]:
    return [c.description for c in changes]


def _uid(n: int) -> str:
    return str(uuid.UUID(int=n))


def _scope(t: Topology) -> AzureScope:
    return AzureScope(
        subscription_id=t.subscription_id,
        location=t.location,
        resource_group=t.resource_group,
        load_balancer_resource_group=t.resource_group,
        load_balancer_name=resource_names.DEFAULT_LOAD_BALANCER_NAME,
        vnet_resource_group=t.resource_group,
        vnet_name=t.vnet_name,
        subnet_name=t.gateway_subnet_name,
    )


@pytest.fixture
async def network(async_network_client: AsyncNet) -> NetworkManagementClient:
    return await async_network_client(retry_total=0)


@pytest.fixture
async def compute(async_compute_client: AsyncCompute) -> ComputeManagementClient:
    return await async_compute_client(retry_total=0)


@pytest.fixture
def pools(
    network: NetworkManagementClient, compute: ComputeManagementClient
) -> GatewayPoolActivities:
    return GatewayPoolActivities(network, compute)


async def _run(fn: Callable[..., Awaitable[Any]], arg: Any) -> Any:
    return await ActivityEnvironment().run(fn, arg)


async def _resolve(
    pools: GatewayPoolActivities, t: Topology, spec: StaticGatewayConfigurationSpec
) -> GatewayPool:
    pool: GatewayPool = await _run(pools.resolve_gateway_pool, ResolvePoolInput(_scope(t), spec))
    return pool


async def _prepared(
    pools: GatewayPoolActivities,
    network: NetworkManagementClient,
    t: Topology,
    nodepool: str,
    *,
    public: bool,
    owners: tuple[int, ...] = (1, 2),
) -> tuple[GatewayPool, tuple[PoolIpConfig, ...]]:
    """A resolved pool whose load balancer pool exists, and ipConfigs for `owners` (the first
    with a managed prefix in public mode)."""
    spec = StaticGatewayConfigurationSpec(gateway_nodepool_name=nodepool)
    pool = await _resolve(pools, t, spec)
    rules = tuple(
        LoadBalancerRule(_uid(n), pool.lb_pool_name, resource_names.probe_path(_uid(n)))
        for n in owners
    )
    await _run(
        LoadBalancerActivities(network).apply_load_balancer,
        ApplyLoadBalancerInput(_scope(t), rules),
    )
    configs = []
    for i, n in enumerate(owners):
        prefix_id = ""
        if public and i == 0:
            prefix = await _run(
                PublicIpPrefixActivities(network).ensure_managed_public_ip_prefix,
                EnsurePrefixInput(
                    _scope(t), resource_names.managed_resource_name(_uid(n)), pool.prefix_length
                ),
            )
            prefix_id = prefix.id
        configs.append(
            PoolIpConfig(_uid(n), resource_names.managed_resource_name(_uid(n)), prefix_id)
        )
    return pool, tuple(configs)


def _primary_ip_configs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    nics = doc["networkInterfaceConfigurations"]
    primary = next(c for c in nics if c["properties"].get("primary"))
    configs: list[dict[str, Any]] = primary["properties"]["ipConfigurations"]
    return configs


def _model_ip_configs(arm: ArmEmulator, pool: GatewayPool) -> list[dict[str, Any]]:
    vmss = arm.resource(
        resource_names.vmss_id(pool.subscription_id, pool.resource_group, pool.name)
    )
    assert vmss is not None
    return _primary_ip_configs(vmss["properties"]["virtualMachineProfile"]["networkProfile"])


# --- resolution ----------------------------------------------------------------------------------


async def test_pools_are_resolved_by_profile_tag_and_vm_tag(
    pools: GatewayPoolActivities, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    vmss_pool = t.vmss_pools[0]
    by_profile = await _resolve(
        pools,
        t,
        StaticGatewayConfigurationSpec(
            gateway_vmss_profile=GatewayVmssProfile(t.resource_group, vmss_pool.vmss_name, 30)
        ),
    )
    vmss = arm_emulator.resource(t.vmss_id(vmss_pool))
    assert vmss is not None
    assert by_profile == GatewayPool(
        kind=PoolKind.VMSS,
        subscription_id=t.subscription_id,
        resource_group=t.resource_group,
        name=vmss_pool.vmss_name,
        lb_pool_name=vmss["properties"]["uniqueId"],
        prefix_length=30,
        instance_count=vmss_pool.instance_count,
    )
    # Pool names compare case-insensitively; the length comes from the pool's tag.
    by_tag = await _resolve(
        pools, t, StaticGatewayConfigurationSpec(gateway_nodepool_name="GWPool")
    )
    assert by_tag == dataclasses.replace(by_profile, prefix_length=vmss_pool.ip_prefix_size)

    vm_pool = t.vm_pools[0]
    by_vm = await _resolve(
        pools, t, StaticGatewayConfigurationSpec(gateway_nodepool_name=vm_pool.pool_name)
    )
    assert by_vm.kind is PoolKind.VM
    assert by_vm.name == vm_pool.pool_name
    assert by_vm.lb_pool_name == resource_names.vm_pool_lb_pool_name(vm_pool.pool_name)
    assert by_vm.instance_count == vm_pool.vm_count
    assert by_vm.prefix_length == vm_pool.ip_prefix_size
    assert arm_emulator.request_log.writes() == 0


async def test_unknown_pools_and_missing_tags_are_refused_naming_the_pool(
    pools: GatewayPoolActivities,
    compute: ComputeManagementClient,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
) -> None:
    t = arm_topology
    with pytest.raises(ApplicationError) as nodepool:
        await _resolve(pools, t, StaticGatewayConfigurationSpec(gateway_nodepool_name="nopool"))
    assert nodepool.value.non_retryable
    assert nodepool.value.type == errors.POOL_NOT_FOUND
    assert "nopool" in nodepool.value.message

    with pytest.raises(ApplicationError) as profile:
        await _resolve(
            pools,
            t,
            StaticGatewayConfigurationSpec(
                gateway_vmss_profile=GatewayVmssProfile(t.resource_group, "no-vmss", 31)
            ),
        )
    assert profile.value.non_retryable
    assert "spec.gatewayVmssProfile" in profile.value.message
    assert "no-vmss" in profile.value.message

    vmss_pool = t.vmss_pools[0]
    tag = resource_names.TAG_GATEWAY_IP_PREFIX_SIZE
    await (
        await compute.virtual_machine_scale_sets.begin_create_or_update(
            t.resource_group,
            vmss_pool.vmss_name,
            json_body({"location": t.location, "tags": {tag: None}}),
        )
    ).result()
    with pytest.raises(ApplicationError) as untagged:
        await _resolve(
            pools, t, StaticGatewayConfigurationSpec(gateway_nodepool_name=vmss_pool.pool_name)
        )
    assert untagged.value.non_retryable
    assert vmss_pool.pool_name in untagged.value.message
    assert tag in untagged.value.message
    # Private mode needs no prefix, so it does not need the tag either.
    private = await _resolve(
        pools,
        t,
        StaticGatewayConfigurationSpec(
            gateway_nodepool_name=vmss_pool.pool_name, provision_public_ips=False
        ),
    )
    assert private.prefix_length == 0


# --- VMSS pools ----------------------------------------------------------------------------------


async def test_vmss_model_gets_our_ip_configs_once_and_drift_is_repaired(
    pools: GatewayPoolActivities,
    network: NetworkManagementClient,
    compute: ComputeManagementClient,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
) -> None:
    t = arm_topology
    pool, configs = await _prepared(pools, network, t, t.vmss_pools[0].pool_name, public=True)
    data = ApplyPoolInput(_scope(t), pool, configs)
    result = await _run(pools.apply_vmss_model, data)
    assert len([c for c in result.changes if "added ipConfig" in c.description]) == 2
    assert {c.owner_uid for c in result.changes if "added ipConfig" in c.description} == {
        c.owner_uid for c in configs
    }
    ipcs = {c["name"]: c["properties"] for c in _model_ip_configs(arm_emulator, pool)}
    public = ipcs[configs[0].ip_config_name]
    assert public["primary"] is False
    assert public["privateIPAddressVersion"] == "IPv4"
    assert public["subnet"]["id"] == ipcs["ipconfig1"]["subnet"]["id"]
    pip = public["publicIPAddressConfiguration"]
    assert pip["name"] == configs[0].ip_config_name
    assert pip["properties"]["publicIPPrefix"]["id"] == configs[0].public_ip_prefix_id
    assert "publicIPAddressConfiguration" not in ipcs[configs[1].ip_config_name]
    pool_ids = [p["id"] for p in ipcs["ipconfig1"]["loadBalancerBackendAddressPools"]]
    assert [i.rsplit("/", 1)[-1] for i in pool_ids] == [pool.lb_pool_name]
    put = [
        e
        for e in arm_emulator.request_log.entries
        if e.method == "PUT" and e.path.endswith(pool.name)
    ]
    assert put and put[-1].if_match is not None

    arm_emulator.request_log.clear()
    again = await _run(pools.apply_vmss_model, data)
    assert again.changes == ()
    assert arm_emulator.request_log.writes() == 0

    # Out of band: someone strips one of our ipConfigs from the model.
    vmss = (await compute.virtual_machine_scale_sets.get(t.resource_group, pool.name)).as_dict()
    profile = vmss["properties"]["virtualMachineProfile"]["networkProfile"]
    primary = _primary_ip_configs(profile)
    primary[:] = [c for c in primary if c["name"] != configs[1].ip_config_name]
    await (
        await compute.virtual_machine_scale_sets.begin_create_or_update(
            t.resource_group,
            pool.name,
            json_body(
                {
                    "location": t.location,
                    "properties": {"virtualMachineProfile": {"networkProfile": profile}},
                }
            ),
        )
    ).result()
    repaired = await _run(pools.apply_vmss_model, data)
    assert repaired.changes == (
        ResourceChange(
            f"VMSS {pool.name} model: added ipConfig {configs[1].ip_config_name}",
            configs[1].owner_uid,
        ),
    )
    names = {c["name"] for c in _model_ip_configs(arm_emulator, pool)}
    assert {c.ip_config_name for c in configs} <= names

    # Nothing of ours wanted: our ipConfigs and the backend pool leave the model.
    emptied = await _run(pools.apply_vmss_model, ApplyPoolInput(_scope(t), pool, ()))
    assert any("removed backend pool" in c.description for c in emptied.changes)
    left = _model_ip_configs(arm_emulator, pool)
    assert [c["name"] for c in left] == ["ipconfig1"]
    assert not left[0]["properties"].get("loadBalancerBackendAddressPools")


async def _reconcile(
    pools: GatewayPoolActivities,
    t: Topology,
    pool: GatewayPool,
    member: PoolMember,
    configs: tuple[PoolIpConfig, ...],
) -> MemberAddresses:
    addresses: MemberAddresses = await _run(
        pools.reconcile_gateway_pool_member, ReconcileMemberInput(_scope(t), pool, member, configs)
    )
    return addresses


async def test_vmss_instances_are_updated_only_when_needed(
    pools: GatewayPoolActivities,
    network: NetworkManagementClient,
    compute: ComputeManagementClient,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
) -> None:
    t = arm_topology
    vmss_pool = t.vmss_pools[0]
    pool, configs = await _prepared(pools, network, t, vmss_pool.pool_name, public=True)
    await _run(pools.apply_vmss_model, ApplyPoolInput(_scope(t), pool, configs))
    listed = await _run(pools.list_gateway_pool_members, pool)
    assert listed.members == tuple(
        PoolMember(str(i), vmss_pool.computer_name(i)) for i in range(vmss_pool.instance_count)
    )
    member = listed.members[0]
    first = await _reconcile(pools, t, pool, member, configs)
    assert first.primary_ip.startswith("10.224.")
    assert {uid for uid, _ in first.secondary_ips} == {c.owner_uid for c in configs}
    assert len({ip for _, ip in first.secondary_ips} | {first.primary_ip}) == 3
    assert any("added ipConfig" in c.description for c in first.changes)
    address = first.address_for(configs[0].owner_uid)
    assert address is not None and address.node_name == member.node_name

    arm_emulator.request_log.clear()
    second = await _reconcile(pools, t, pool, member, configs)
    assert second.changes == ()
    assert (second.primary_ip, second.secondary_ips) == (first.primary_ip, first.secondary_ips)
    assert arm_emulator.request_log.writes() == 0

    # A Failed instance is updated even though its configuration is right.
    instance_id = resource_names.vmss_vm_id(t.subscription_id, t.resource_group, pool.name, "0")
    arm_emulator.set_provisioning_state(instance_id, "Failed")
    repaired = await _reconcile(pools, t, pool, member, configs)
    assert "updated instance 0 (was Failed)" in descriptions(repaired.changes)
    instance = arm_emulator.resource(instance_id)
    assert instance is not None
    assert instance["properties"]["provisioningState"] == "Succeeded"
    assert repaired.secondary_ips == first.secondary_ips

    # Drift: one of our ipConfigs stripped from the instance out of band.
    doc = (
        await compute.virtual_machine_scale_set_vms.get(t.resource_group, pool.name, "0")
    ).as_dict()
    npc = doc["properties"]["networkProfileConfiguration"]
    primary = _primary_ip_configs(npc)
    primary[:] = [c for c in primary if c["name"] != configs[0].ip_config_name]
    await (
        await compute.virtual_machine_scale_set_vms.begin_update(
            t.resource_group,
            pool.name,
            "0",
            json_body({"location": t.location, "properties": {"networkProfileConfiguration": npc}}),
        )
    ).result()
    restored = await _reconcile(pools, t, pool, member, configs)
    assert f"instance 0: added ipConfig {configs[0].ip_config_name}" in descriptions(
        restored.changes
    )
    assert {uid for uid, _ in restored.secondary_ips} == {c.owner_uid for c in configs}


async def test_a_managed_prefix_is_deleted_only_after_the_ip_configs_using_it(
    pools: GatewayPoolActivities,
    network: NetworkManagementClient,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
) -> None:
    t = arm_topology
    pool, configs = await _prepared(pools, network, t, t.vmss_pools[0].pool_name, public=True)
    await _run(pools.apply_vmss_model, ApplyPoolInput(_scope(t), pool, configs))
    member = PoolMember("0", t.vmss_pools[0].computer_name(0))
    await _reconcile(pools, t, pool, member, configs)
    prefix_name = resource_names.parse_arm_resource_id(configs[0].public_ip_prefix_id).name
    delete = DeletePrefixInput(_scope(t), prefix_name)
    prefixes = PublicIpPrefixActivities(network)
    with pytest.raises(ApplicationError) as in_use:
        await _run(prefixes.delete_managed_public_ip_prefix, delete)
    assert not in_use.value.non_retryable
    assert "still used by 1 scale set instance IP" in in_use.value.message

    # Teardown in order: the model, then the instance, then the prefix.
    await _run(pools.apply_vmss_model, ApplyPoolInput(_scope(t), pool, configs[1:]))
    await _reconcile(pools, t, pool, member, configs[1:])
    result = await _run(prefixes.delete_managed_public_ip_prefix, delete)
    assert result.deleted
    assert arm_emulator.resource(configs[0].public_ip_prefix_id) is None


# --- VM pools ------------------------------------------------------------------------------------


async def test_vm_pool_nics_keep_their_private_ips(
    pools: GatewayPoolActivities,
    network: NetworkManagementClient,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
) -> None:
    t = arm_topology
    vm_pool = t.vm_pools[0]
    pool, configs = await _prepared(pools, network, t, vm_pool.pool_name, public=False)
    listed = await _run(pools.list_gateway_pool_members, pool)
    assert listed.members == tuple(
        PoolMember(vm_pool.nic_name(i), vm_pool.vm_name(i)) for i in range(vm_pool.vm_count)
    )
    assert (
        await _run(pools.apply_vmss_model, ApplyPoolInput(_scope(t), pool, configs))
    ).changes == ()
    member = listed.members[1]
    first = await _reconcile(pools, t, pool, member, configs)
    assert len(first.secondary_ips) == 2
    nic_id = resource_names.network_interface_id(t.subscription_id, t.resource_group, member.id)
    nic = arm_emulator.resource(nic_id)
    assert nic is not None
    by_name = {c["name"]: c["properties"] for c in nic["properties"]["ipConfigurations"]}
    assert by_name[configs[0].ip_config_name]["privateIPAddress"] == first.secondary_ips[0][1]
    assert "publicIPAddress" not in by_name[configs[0].ip_config_name]
    pool_refs = by_name["ipconfig1"]["loadBalancerBackendAddressPools"]
    assert pool_refs[0]["id"].endswith(f"/backendAddressPools/{pool.lb_pool_name}")

    arm_emulator.request_log.clear()
    second = await _reconcile(pools, t, pool, member, configs)
    assert second.secondary_ips == first.secondary_ips
    assert second.primary_ip == first.primary_ip
    assert arm_emulator.request_log.writes() == 0

    # Dropping one configuration keeps the other's address.
    fewer = await _reconcile(pools, t, pool, member, configs[1:])
    assert fewer.secondary_ips == first.secondary_ips[1:]
    assert f"NIC {member.id}: removed ipConfig {configs[0].ip_config_name}" in descriptions(
        fewer.changes
    )


async def test_vm_pool_public_ips_come_from_the_prefix_and_go_with_the_ip_config(
    pools: GatewayPoolActivities,
    network: NetworkManagementClient,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
) -> None:
    t = arm_topology
    vm_pool = t.vm_pools[0]
    pool, configs = await _prepared(pools, network, t, vm_pool.pool_name, public=True, owners=(7,))
    member = PoolMember(vm_pool.nic_name(0), vm_pool.vm_name(0))
    await _reconcile(pools, t, pool, member, configs)
    prefix_name = resource_names.parse_arm_resource_id(configs[0].public_ip_prefix_id).name
    ip_name = resource_names.vm_pool_public_ip_name(prefix_name, member.id)
    ip_id = resource_names.public_ip_address_id(t.subscription_id, t.resource_group, ip_name)
    public_ip = arm_emulator.resource(ip_id)
    assert public_ip is not None
    assert (
        public_ip["properties"]["publicIPPrefix"]["id"].lower()
        == configs[0].public_ip_prefix_id.lower()
    )
    assert public_ip["properties"]["ipConfiguration"]["id"].endswith(configs[0].ip_config_name)

    arm_emulator.request_log.clear()
    await _reconcile(pools, t, pool, member, configs)
    assert arm_emulator.request_log.writes() == 0

    removed = await _reconcile(pools, t, pool, member, ())
    assert f"NIC {member.id}: deleted public IP {ip_name}" in descriptions(removed.changes)
    assert arm_emulator.resource(ip_id) is None
    nic = arm_emulator.resource(
        resource_names.network_interface_id(t.subscription_id, t.resource_group, member.id)
    )
    assert nic is not None
    assert [c["name"] for c in nic["properties"]["ipConfigurations"]] == ["ipconfig1"]
