"""The world the dev stack seeds: one Azure subscription and the Kubernetes nodes that live in it.

Both emulators are seeded from the same description so that Node names, VMSS instance computer
names, NIC names and provider IDs agree, as they do on a real AKS cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VmssPool:
    """An AKS gateway node pool backed by a virtual machine scale set (public IP mode)."""

    pool_name: str
    vmss_name: str
    instance_count: int
    ip_prefix_size: int  # tag aks-managed-gatewayIPPrefixSize

    def computer_name(self, instance_id: int) -> str:
        # AKS names VMSS instances <vmss name><6-digit base-36 instance id>.
        return f"{self.vmss_name}{_base36(instance_id).rjust(6, '0')}"


@dataclass(frozen=True)
class VmPool:
    """An AKS gateway node pool of standalone VMs with pre-created tagged NICs (private IP mode)."""

    pool_name: str
    vm_count: int
    ip_prefix_size: int

    def vm_name(self, index: int) -> str:
        return f"aks-{self.pool_name}-{index}"

    def nic_name(self, index: int) -> str:
        return f"aks-{self.pool_name}-{index}-nic"


@dataclass(frozen=True)
class Topology:
    subscription_id: str = "9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b"
    tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    location: str = "westeurope"
    resource_group: str = "egressgw-dev"
    vnet_name: str = "aks-vnet"
    vnet_cidr: str = "10.224.0.0/12"
    node_subnet_name: str = "aks-subnet"
    node_subnet_cidr: str = "10.224.0.0/16"
    gateway_subnet_name: str = "gateway-subnet"  # ILB frontends are allocated from here
    gateway_subnet_cidr: str = "10.225.0.0/24"
    vmss_pools: tuple[VmssPool, ...] = field(
        default_factory=lambda: (
            VmssPool(
                pool_name="gwpool",
                vmss_name="aks-gwpool-12345678-vmss",
                instance_count=2,
                ip_prefix_size=31,
            ),
        )
    )
    vm_pools: tuple[VmPool, ...] = field(
        default_factory=lambda: (VmPool(pool_name="gwvmpool", vm_count=2, ip_prefix_size=31),)
    )
    kube_namespace: str = "egressgw-demo"

    @property
    def resource_group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"

    def vmss_id(self, pool: VmssPool) -> str:
        return (
            f"{self.resource_group_id}/providers/Microsoft.Compute/virtualMachineScaleSets/"
            f"{pool.vmss_name}"
        )

    def vm_id(self, pool: VmPool, index: int) -> str:
        return (
            f"{self.resource_group_id}/providers/Microsoft.Compute/virtualMachines/"
            f"{pool.vm_name(index)}"
        )


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    if value == 0:
        return "0"
    out = ""
    while value:
        value, rem = divmod(value, 36)
        out = digits[rem] + out
    return out
