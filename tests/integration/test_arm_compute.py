"""Microsoft.Compute (scale sets, instances, VMs) and the network API's VMSS NIC views, through the
real sync clients against the ARM emulator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import SubResource as ComputeSubResource
from azure.mgmt.compute.models import (
    VirtualMachineScaleSetIPConfiguration,
    VirtualMachineScaleSetPublicIPAddressConfiguration,
    VirtualMachineScaleSetVMInstanceRequiredIDs,
)
from azure.mgmt.network import NetworkManagementClient

from sim.arm.server import ArmEmulator
from sim.topology import Topology


@pytest.fixture
def net(network_client: Callable[..., NetworkManagementClient]) -> NetworkManagementClient:
    return network_client()


@pytest.fixture
def cmp(compute_client: Callable[..., ComputeManagementClient]) -> ComputeManagementClient:
    return compute_client()


def _add_gateway_ipconfig(vmss_or_vm_configs: list, prefix_id: str | None) -> None:
    nic = vmss_or_vm_configs[0]
    subnet_id = nic.ip_configurations[0].subnet.id
    pip = None
    if prefix_id is not None:
        pip = VirtualMachineScaleSetPublicIPAddressConfiguration(
            name="egressgateway-uid", public_ip_prefix=ComputeSubResource(id=prefix_id)
        )
    nic.ip_configurations.append(
        VirtualMachineScaleSetIPConfiguration(
            name="egressgateway-uid",
            primary=False,
            private_ip_address_version="IPv4",
            subnet=ComputeSubResource(id=subnet_id),
            public_ip_address_configuration=pip,
        )
    )


def test_seeded_scale_set_and_instances(
    cmp: ComputeManagementClient, arm_topology: Topology
) -> None:
    t = arm_topology
    pool = t.vmss_pools[0]
    scale_sets = list(cmp.virtual_machine_scale_sets.list(t.resource_group))
    assert sorted(s.name for s in scale_sets) == sorted(p.vmss_name for p in t.scale_sets)
    (vmss,) = [s for s in scale_sets if s.name == pool.vmss_name]
    assert vmss.tags["aks-managed-poolName"] == pool.pool_name
    assert vmss.tags["aks-managed-gatewayIPPrefixSize"] == str(pool.ip_prefix_size)
    assert len(vmss.unique_id) == 36
    assert vmss.upgrade_policy.mode == "Manual"
    vms = list(cmp.virtual_machine_scale_set_vms.list(t.resource_group, pool.vmss_name))
    assert [v.instance_id for v in vms] == ["0", "1"]
    assert [v.name for v in vms] == [f"{pool.vmss_name}_0", f"{pool.vmss_name}_1"]
    assert [v.os_profile.computer_name for v in vms] == [
        pool.computer_name(0),
        pool.computer_name(1),
    ]
    assert all(v.latest_model_applied for v in vms)
    assert vms[0].network_profile_configuration.network_interface_configurations[0].name == (
        pool.vmss_name
    )


def test_model_update_then_instance_update_with_public_ips_from_prefix(
    cmp: ComputeManagementClient, net: NetworkManagementClient, arm_topology: Topology
) -> None:
    t = arm_topology
    pool = t.vmss_pools[0]
    rg = t.resource_group
    prefix = net.public_ip_prefixes.begin_create_or_update(
        rg, "egressgateway-uid", {"location": t.location, "properties": {"prefixLength": 31}}
    ).result()
    vmss = cmp.virtual_machine_scale_sets.get(rg, pool.vmss_name)
    unique_id = vmss.unique_id
    _add_gateway_ipconfig(
        vmss.virtual_machine_profile.network_profile.network_interface_configurations, prefix.id
    )
    # Upstream PUTs only location + the network profile; the rest of the model must survive.
    updated = cmp.virtual_machine_scale_sets.begin_create_or_update(
        rg,
        pool.vmss_name,
        {
            "location": vmss.location,
            "properties": {
                "virtualMachineProfile": {
                    "networkProfile": vmss.virtual_machine_profile.network_profile.as_dict()
                }
            },
        },
    ).result()
    assert updated.unique_id == unique_id
    assert updated.sku.capacity == pool.instance_count
    assert updated.tags["aks-managed-poolName"] == pool.pool_name
    vms = list(cmp.virtual_machine_scale_set_vms.list(rg, pool.vmss_name))
    assert [v.latest_model_applied for v in vms] == [False, False]
    # Until the instance is updated its NIC has only the primary address.
    nic = net.network_interfaces.get_virtual_machine_scale_set_network_interface(
        rg, pool.vmss_name, "0", pool.vmss_name
    )
    assert [c.name for c in nic.ip_configurations] == ["ipconfig1"]
    vm0 = vms[0]
    _add_gateway_ipconfig(
        vm0.network_profile_configuration.network_interface_configurations, prefix.id
    )
    done = cmp.virtual_machine_scale_set_vms.begin_update(rg, pool.vmss_name, "0", vm0).result()
    assert done.latest_model_applied is True
    assert (
        cmp.virtual_machine_scale_set_vms.get(rg, pool.vmss_name, "1").latest_model_applied is False
    )
    nic = net.network_interfaces.get_virtual_machine_scale_set_network_interface(
        rg, pool.vmss_name, "0", pool.vmss_name
    )
    by_name = {c.name: c for c in nic.ip_configurations}
    assert by_name["ipconfig1"].primary is True
    assert by_name["egressgateway-uid"].private_ip_address.startswith("10.224.")
    assert by_name["egressgateway-uid"].public_ip_address is not None
    pips = list(
        net.public_ip_addresses.list_virtual_machine_scale_set_public_ip_addresses(
            rg, pool.vmss_name
        )
    )
    assert [p.ip_address for p in pips] == [prefix.ip_prefix.split("/")[0]]
    assert [a.id for a in net.public_ip_prefixes.get(rg, prefix.name).public_ip_addresses] == [
        pips[0].id
    ]
    # Upgrading instance 1 through the scale set applies the model there too.
    cmp.virtual_machine_scale_sets.begin_update_instances(
        rg, pool.vmss_name, VirtualMachineScaleSetVMInstanceRequiredIDs(instance_ids=["1"])
    ).result()
    assert cmp.virtual_machine_scale_set_vms.get(rg, pool.vmss_name, "1").latest_model_applied
    all_nics = list(
        net.network_interfaces.list_virtual_machine_scale_set_network_interfaces(rg, pool.vmss_name)
    )
    secondaries = [
        c.private_ip_address
        for n in all_nics
        for c in n.ip_configurations
        if c.name == "egressgateway-uid"
    ]
    assert len(secondaries) == 2 and len(set(secondaries)) == 2
    # The /31 prefix now serves both instances, so it refuses deletion.
    assert len(net.public_ip_prefixes.get(rg, prefix.name).public_ip_addresses) == 2
    with pytest.raises(HttpResponseError) as err:
        net.public_ip_prefixes.begin_delete(rg, prefix.name).result()
    assert err.value.error.code == "InUsePublicIpPrefixCannotBeDeleted"


def test_etag_match_condition_and_failed_instance_state(
    cmp: ComputeManagementClient, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    pool = t.vmss_pools[0]
    rg = t.resource_group
    vmss = cmp.virtual_machine_scale_sets.get(rg, pool.vmss_name)
    cmp.virtual_machine_scale_sets.begin_create_or_update(
        rg, pool.vmss_name, vmss, etag=vmss.etag, match_condition=MatchConditions.IfNotModified
    ).result()
    with pytest.raises(ResourceModifiedError):
        cmp.virtual_machine_scale_sets.begin_create_or_update(
            rg, pool.vmss_name, vmss, etag=vmss.etag, match_condition=MatchConditions.IfNotModified
        ).result()
    vm = cmp.virtual_machine_scale_set_vms.get(rg, pool.vmss_name, "1")
    arm_emulator.set_provisioning_state(str(vm.id), "Failed")
    assert cmp.virtual_machine_scale_set_vms.get(rg, pool.vmss_name, "1").provisioning_state == (
        "Failed"
    )
    repaired = cmp.virtual_machine_scale_set_vms.begin_update(rg, pool.vmss_name, "1", vm).result()
    assert repaired.provisioning_state == "Succeeded"


def test_scale_out_and_in_and_instance_delete(
    cmp: ComputeManagementClient, net: NetworkManagementClient, arm_topology: Topology
) -> None:
    t = arm_topology
    pool = t.vmss_pools[0]
    rg = t.resource_group
    vmss = cmp.virtual_machine_scale_sets.get(rg, pool.vmss_name)
    vmss.sku.capacity = 4
    cmp.virtual_machine_scale_sets.begin_create_or_update(rg, pool.vmss_name, vmss).result()
    vms = list(cmp.virtual_machine_scale_set_vms.list(rg, pool.vmss_name))
    assert [v.instance_id for v in vms] == ["0", "1", "2", "3"]
    assert vms[3].os_profile.computer_name == pool.computer_name(3)
    cmp.virtual_machine_scale_set_vms.begin_delete(rg, pool.vmss_name, "1").result()
    with pytest.raises(ResourceNotFoundError):
        cmp.virtual_machine_scale_set_vms.get(rg, pool.vmss_name, "1")
    assert cmp.virtual_machine_scale_sets.get(rg, pool.vmss_name).sku.capacity == 3
    nics = list(
        net.network_interfaces.list_virtual_machine_scale_set_network_interfaces(rg, pool.vmss_name)
    )
    assert len(nics) == 3
    addresses = {c.private_ip_address for n in nics for c in n.ip_configurations}
    assert len(addresses) == 3


def test_vm_pool_vms_and_nics(
    cmp: ComputeManagementClient, net: NetworkManagementClient, arm_topology: Topology
) -> None:
    t = arm_topology
    vm_pool = t.vm_pools[0]
    vms = list(cmp.virtual_machines.list(t.resource_group))
    assert sorted(v.name for v in vms) == [vm_pool.vm_name(i) for i in range(vm_pool.vm_count)]
    vm = cmp.virtual_machines.get(t.resource_group, vm_pool.vm_name(0))
    assert vm.tags["aks-managed-poolName"] == vm_pool.pool_name
    nic_id = vm.network_profile.network_interfaces[0].id
    assert nic_id.endswith(vm_pool.nic_name(0))
    nic = net.network_interfaces.get(t.resource_group, vm_pool.nic_name(0))
    assert nic.virtual_machine.id.lower() == vm.id.lower()
    tagged = [
        n.name
        for n in net.network_interfaces.list(t.resource_group)
        if n.tags and "aks-managed-static-gateway-nic" in n.tags
    ]
    assert sorted(tagged) == [vm_pool.nic_name(i) for i in range(vm_pool.vm_count)]


def test_scale_set_patch_merges_and_attached_nic_cannot_be_deleted(
    cmp: ComputeManagementClient, net: NetworkManagementClient, arm_topology: Topology
) -> None:
    t = arm_topology
    pool = t.vmss_pools[0]
    before = cmp.virtual_machine_scale_sets.get(t.resource_group, pool.vmss_name)
    patched = cmp.virtual_machine_scale_sets.begin_update(
        t.resource_group, pool.vmss_name, {"tags": {**before.tags, "extra": "1"}}
    ).result()
    assert patched.tags["extra"] == "1"
    assert patched.unique_id == before.unique_id
    assert patched.sku.capacity == before.sku.capacity
    # Tags are not the VM model: instances still run the latest model.
    vms = cmp.virtual_machine_scale_set_vms.list(t.resource_group, pool.vmss_name)
    assert all(v.latest_model_applied for v in vms)
    with pytest.raises(HttpResponseError) as err:
        net.network_interfaces.begin_delete(t.resource_group, t.vm_pools[0].nic_name(0)).result()
    assert err.value.status_code == 400
    assert err.value.error.code == "NicInUse"
