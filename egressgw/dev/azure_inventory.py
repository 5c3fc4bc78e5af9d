"""Reads back from Azure what the Kubernetes seed needs: each node's primary private IP.

It goes through the same cloud config and credential path as the controller, so a dev stack that
seeds successfully has also proven that path works against the emulator.
"""

from __future__ import annotations

import os
from pathlib import Path

from contracts.resource_names import parse_arm_resource_id
from egressgw.azure_credential import azure_clients_from_config
from egressgw.cloud_config import load_cloud_config
from sim.topology import Topology


def _primary_ip(ip_configurations: list[object] | None) -> str | None:
    for ip_config in ip_configurations or []:
        if getattr(ip_config, "primary", False):
            address = getattr(ip_config, "private_ip_address", None)
            return address if isinstance(address, str) else None
    return None


async def node_ips(topology: Topology, azure_config: Path, ca: Path) -> dict[str, str]:
    """Node name → primary private IP for every seeded VMSS instance (gateway and regular
    pools) and gateway pool VM."""
    config = load_cloud_config(azure_config, environ=dict(os.environ)).config
    ips: dict[str, str] = {}
    async with azure_clients_from_config(
        config, connection_verify=str(ca), polling_interval=0
    ) as clients:
        network = clients.network
        for vmss_pool in topology.scale_sets:
            nics = network.network_interfaces.list_virtual_machine_scale_set_network_interfaces(
                topology.resource_group, vmss_pool.vmss_name
            )
            async for nic in nics:
                vm_id = nic.virtual_machine.id if nic.virtual_machine else None
                address = _primary_ip(nic.ip_configurations)
                if vm_id and address:
                    instance_id = int(parse_arm_resource_id(vm_id).name)
                    ips[vmss_pool.computer_name(instance_id)] = address
        for vm_pool in topology.vm_pools:
            for index in range(vm_pool.vm_count):
                nic = await network.network_interfaces.get(
                    topology.resource_group, vm_pool.nic_name(index)
                )
                address = _primary_ip(nic.ip_configurations)
                if address:
                    ips[vm_pool.vm_name(index)] = address
    return ips


def _ip_configuration_names(ip_configurations: list[object] | None) -> list[str]:
    return [str(getattr(ip, "name", "")) for ip in ip_configurations or []]


async def resource_inventory(azure_config: Path, ca: Path) -> list[str]:
    """Every resource and sub-resource of the stack's resource group that egressgw writes, one
    path-like name each (`loadBalancers/<lb>/probes/<name>`, `virtualMachineScaleSets/<vmss>/
    model/<nic>/ipConfigurations/<name>`, ...), in Azure's order and with repeats kept: a
    caller comparing it with what it expects sees leaks, missing items and duplicates."""
    config = load_cloud_config(azure_config, environ=dict(os.environ)).config
    group = config.resource_group
    found: list[str] = []
    async with azure_clients_from_config(
        config, connection_verify=str(ca), polling_interval=0
    ) as clients:
        network, compute = clients.network, clients.compute
        found += [
            f"publicIPPrefixes/{p.name}" async for p in network.public_ip_prefixes.list(group)
        ]
        found += [
            f"publicIPAddresses/{a.name}" async for a in network.public_ip_addresses.list(group)
        ]
        async for lb in network.load_balancers.list(group):
            found.append(f"loadBalancers/{lb.name}")
            for kind in (
                "frontend_ip_configurations",
                "backend_address_pools",
                "load_balancing_rules",
                "probes",
            ):
                arm_kind = "".join(w.capitalize() for w in kind.split("_"))
                arm_kind = arm_kind[0].lower() + arm_kind[1:]
                found += [
                    f"loadBalancers/{lb.name}/{arm_kind}/{item.name}"
                    for item in getattr(lb, kind) or []
                ]
        async for vmss in compute.virtual_machine_scale_sets.list(group):
            vmss_name = str(vmss.name)
            profile = vmss.virtual_machine_profile
            nic_configs = (
                profile.network_profile.network_interface_configurations if profile else []
            )
            for nic_config in nic_configs or []:
                found += [
                    f"virtualMachineScaleSets/{vmss_name}/model/{nic_config.name}"
                    f"/ipConfigurations/{name}"
                    for name in _ip_configuration_names(nic_config.ip_configurations)
                ]
            nics = network.network_interfaces.list_virtual_machine_scale_set_network_interfaces(
                group, vmss_name
            )
            async for nic in nics:
                vm_id = nic.virtual_machine.id if nic.virtual_machine else ""
                instance = parse_arm_resource_id(vm_id).name if vm_id else "?"
                found += [
                    f"virtualMachineScaleSets/{vmss_name}/virtualMachines/{instance}"
                    f"/networkInterfaces/{nic.name}/ipConfigurations/{name}"
                    for name in _ip_configuration_names(nic.ip_configurations)
                ]
        async for nic in network.network_interfaces.list(group):
            found += [
                f"networkInterfaces/{nic.name}/ipConfigurations/{name}"
                for name in _ip_configuration_names(nic.ip_configurations)
            ]
    return found
