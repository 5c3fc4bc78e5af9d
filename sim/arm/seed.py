"""Seeding from sim.topology: the resource group, vnet and subnets, VMSS gateway pools with their
instances, and VM gateway pools with pre-created tagged NICs. Creates only what is missing."""

from __future__ import annotations

from collections.abc import Callable

from sim.arm import compute, ids, network
from sim.arm.body import JsonObject
from sim.arm.resource_body import WriteContext
from sim.arm.store import Resource, Transaction
from sim.topology import Topology

VM_SIZE = "Standard_D2s_v3"


def _ensure(
    tx: Transaction,
    resource_id: str,
    body: JsonObject,
    prepare: Callable[[WriteContext], Resource],
) -> None:
    if tx.get(resource_id) is not None:
        return
    path = ids.parse_path(resource_id)
    prepared = prepare(WriteContext(tx, path, body, None))
    prepared.properties["provisioningState"] = "Succeeded"
    tx.put(prepared)


def seed_topology(tx: Transaction, topo: Topology) -> None:
    rg = topo.resource_group_id
    _ensure(tx, rg, {"location": topo.location}, network.prepare_resource_group)
    vnet_id = f"{rg}/providers/Microsoft.Network/virtualNetworks/{topo.vnet_name}"
    node_subnet = f"{vnet_id}/subnets/{topo.node_subnet_name}"
    gateway_subnet = f"{vnet_id}/subnets/{topo.gateway_subnet_name}"
    _ensure(
        tx,
        vnet_id,
        {
            "location": topo.location,
            "properties": {
                "addressSpace": {"addressPrefixes": [topo.vnet_cidr]},
                "subnets": [
                    {
                        "name": topo.node_subnet_name,
                        "properties": {"addressPrefix": topo.node_subnet_cidr},
                    },
                    {
                        "name": topo.gateway_subnet_name,
                        "properties": {"addressPrefix": topo.gateway_subnet_cidr},
                    },
                ],
            },
        },
        network.prepare_vnet,
    )
    for subnet_id, name, cidr in (
        (node_subnet, topo.node_subnet_name, topo.node_subnet_cidr),
        (gateway_subnet, topo.gateway_subnet_name, topo.gateway_subnet_cidr),
    ):
        _ensure(
            tx,
            subnet_id,
            {"name": name, "properties": {"addressPrefix": cidr}},
            network.prepare_subnet,
        )
    for pool in topo.vmss_pools:
        _ensure(
            tx,
            topo.vmss_id(pool),
            {
                "location": topo.location,
                "sku": {"name": VM_SIZE, "tier": "Standard", "capacity": pool.instance_count},
                "tags": {
                    "aks-managed-poolName": pool.pool_name,
                    "aks-managed-gatewayIPPrefixSize": str(pool.ip_prefix_size),
                },
                "properties": {
                    "upgradePolicy": {"mode": "Manual"},
                    "virtualMachineProfile": {
                        "osProfile": {
                            "computerNamePrefix": pool.vmss_name,
                            "adminUsername": "azureuser",
                        },
                        "networkProfile": {
                            "networkInterfaceConfigurations": [
                                {
                                    "name": pool.vmss_name,
                                    "properties": {
                                        "primary": True,
                                        "enableIPForwarding": True,
                                        "ipConfigurations": [
                                            {
                                                "name": "ipconfig1",
                                                "properties": {
                                                    "primary": True,
                                                    "privateIPAddressVersion": "IPv4",
                                                    "subnet": {"id": node_subnet},
                                                },
                                            }
                                        ],
                                    },
                                }
                            ]
                        },
                    },
                },
            },
            compute.prepare_vmss,
        )
    for vm_pool in topo.vm_pools:
        for index in range(vm_pool.vm_count):
            nic_id = f"{rg}/providers/Microsoft.Network/networkInterfaces/{vm_pool.nic_name(index)}"
            _ensure(
                tx,
                nic_id,
                {
                    "location": topo.location,
                    "tags": {
                        "aks-managed-static-gateway-nic": "true",
                        "aks-managed-poolName": vm_pool.pool_name,
                    },
                    "properties": {
                        "enableIPForwarding": True,
                        "ipConfigurations": [
                            {
                                "name": "ipconfig1",
                                "properties": {
                                    "primary": True,
                                    "privateIPAllocationMethod": "Dynamic",
                                    "subnet": {"id": node_subnet},
                                },
                            }
                        ],
                    },
                },
                network.prepare_nic,
            )
            _ensure(
                tx,
                topo.vm_id(vm_pool, index),
                {
                    "location": topo.location,
                    "tags": {
                        "aks-managed-poolName": vm_pool.pool_name,
                        "aks-managed-gatewayIPPrefixSize": str(vm_pool.ip_prefix_size),
                    },
                    "properties": {
                        "hardwareProfile": {"vmSize": VM_SIZE},
                        "osProfile": {
                            "computerName": vm_pool.vm_name(index),
                            "adminUsername": "azureuser",
                        },
                        "networkProfile": {
                            "networkInterfaces": [{"id": nic_id, "properties": {"primary": True}}]
                        },
                    },
                },
                compute.prepare_vm,
            )
