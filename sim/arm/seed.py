"""Seeding from sim.topology: the resource group, vnet and subnets, VMSS gateway pools with their
instances, VM gateway pools with pre-created tagged NICs, the regular (user) VMSS pools, and the
cluster's outbound public IP.

Creates only what is missing, so seeding the state of an older dev stack adds what is new and
leaves everything else (addresses included) as it was. Gateway pools come first: on a fresh state
their nodes get the node subnet's first addresses, as before there were regular pools.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.arm import compute, ids, network
from sim.arm.body import JsonObject
from sim.arm.resource_body import WriteContext
from sim.arm.store import Resource, Transaction
from sim.topology import OUTBOUND_IP_TAG, OUTBOUND_IP_TAG_VALUE, Topology

VM_SIZE = "Standard_D2s_v3"
KUBERNETES_VERSION = "1.33.2"


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
        tags = {
            "aks-managed-poolName": pool.pool_name,
            "aks-managed-gatewayIPPrefixSize": str(pool.ip_prefix_size),
        }
        _ensure(
            tx,
            topo.vmss_id(pool),
            _vmss_body(topo, pool.vmss_name, pool.instance_count, tags, node_subnet),
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
    for user_pool in topo.user_pools:
        # What AKS tags a user pool's scale set with; no gateway tag, so no SGC resolves to it.
        suffix = user_pool.vmss_name.removesuffix("-vmss").rsplit("-", 1)[-1]
        tags = {
            "aks-managed-poolName": user_pool.pool_name,
            "aks-managed-orchestrator": f"Kubernetes:{KUBERNETES_VERSION}",
            "aks-managed-creationSource": f"vmssclient-{user_pool.vmss_name}",
            "aks-managed-resourceNameSuffix": suffix,
        }
        _ensure(
            tx,
            topo.vmss_id(user_pool),
            _vmss_body(topo, user_pool.vmss_name, user_pool.instance_count, tags, node_subnet),
            compute.prepare_vmss,
        )
    if topo.outbound_ip_name:
        _ensure(
            tx,
            topo.outbound_ip_id,
            {
                "location": topo.location,
                "sku": {"name": "Standard", "tier": "Regional"},
                "tags": {OUTBOUND_IP_TAG: OUTBOUND_IP_TAG_VALUE},
                "properties": {
                    "publicIPAllocationMethod": "Static",
                    "publicIPAddressVersion": "IPv4",
                },
            },
            network.prepare_public_ip,
        )


def _vmss_body(
    topo: Topology, vmss_name: str, capacity: int, tags: dict[str, str], subnet_id: str
) -> JsonObject:
    """A scale set as AKS creates a node pool's: one NIC per instance in the node subnet, IP
    forwarding on, instances named after the scale set."""
    return {
        "location": topo.location,
        "sku": {"name": VM_SIZE, "tier": "Standard", "capacity": capacity},
        "tags": tags,
        "properties": {
            "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "osProfile": {"computerNamePrefix": vmss_name, "adminUsername": "azureuser"},
                "networkProfile": {
                    "networkInterfaceConfigurations": [
                        {
                            "name": vmss_name,
                            "properties": {
                                "primary": True,
                                "enableIPForwarding": True,
                                "ipConfigurations": [
                                    {
                                        "name": "ipconfig1",
                                        "properties": {
                                            "primary": True,
                                            "privateIPAddressVersion": "IPv4",
                                            "subnet": {"id": subnet_id},
                                        },
                                    }
                                ],
                            },
                        }
                    ]
                },
            },
        },
    }
