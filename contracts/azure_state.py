"""The Azure facts workflows reason about, as plain data (never SDK models across Temporal)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class AzureScope:
    """Where the controller works, from the cloud config (no credentials: those stay in files)."""

    subscription_id: str
    location: str
    resource_group: str  # gateway nodes' resource group: nodepool lookups, managed prefixes
    load_balancer_resource_group: str
    load_balancer_name: str
    vnet_resource_group: str
    vnet_name: str
    subnet_name: str  # the internal load balancer's frontends take their IPs from here


class PoolKind(StrEnum):
    VMSS = "vmss"  # a VM scale set: public or private mode
    VM = "vm"  # standalone VMs with pre-created tagged NICs: private mode


@dataclass(frozen=True)
class GatewayPool:
    """A resolved gateway node pool."""

    kind: PoolKind
    subscription_id: str
    resource_group: str
    name: str  # VMSS name, or the AKS pool name for VM pools
    lb_pool_name: str  # frontend and backend pool name on the ILB (VMSS uniqueId / MD5 UUID)
    prefix_length: int  # from the profile or the aks-managed-gatewayIPPrefixSize tag; 0: none
    instance_count: int


@dataclass(frozen=True)
class PublicPrefix:
    id: str
    name: str
    cidr: str  # "" until Azure allocated it
    prefix_length: int
    managed: bool  # created by us (egressgateway-<uid>) rather than brought by the user


@dataclass(frozen=True)
class NodeAddress:
    """One gateway node's addresses for one configuration."""

    node_name: str  # computer name (VMSS) or NIC name's VM (VM pools), as the Node is named
    primary_ip: str
    secondary_ip: str
