"""The world the dev stack seeds: one Azure subscription and the Kubernetes nodes that live in it.

Both emulators are seeded from the same description so that Node names, VMSS instance computer
names, NIC names and provider IDs agree, as they do on a real AKS cluster: a VMSS instance's
computer name is its Node name, its provider ID `azure://<VMSS ID>/virtualMachines/<instance ID>`;
a pool VM's name is its Node name, its provider ID `azure://<VM ID>`.

Besides the gateway pools, the cluster has a regular (user) pool whose nodes run ordinary pods, and
the outbound public IP AKS gives a cluster's standard load balancer: a pod without the egress
annotation leaves with that address (sim/fabric SNATs the regular nodes' traffic to it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The tag AKS puts on the public IPs it creates for the cluster's outbound traffic.
OUTBOUND_IP_TAG = "aks-managed-type"
OUTBOUND_IP_TAG_VALUE = "aks-slb-managed-outbound-ip"


@dataclass(frozen=True)
class VmssPool:
    """An AKS gateway node pool backed by a virtual machine scale set (public IP mode)."""

    pool_name: str
    vmss_name: str
    instance_count: int
    ip_prefix_size: int  # tag aks-managed-gatewayIPPrefixSize

    def computer_name(self, instance_id: int) -> str:
        return vmss_computer_name(self.vmss_name, instance_id)


@dataclass(frozen=True)
class UserVmssPool:
    """A regular AKS node pool (mode User) on a virtual machine scale set: no gateway tags, so the
    controller never takes it for a gateway pool; its nodes run the cluster's ordinary pods."""

    pool_name: str
    vmss_name: str
    instance_count: int

    def computer_name(self, instance_id: int) -> str:
        return vmss_computer_name(self.vmss_name, instance_id)


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
    user_pools: tuple[UserVmssPool, ...] = field(
        default_factory=lambda: (
            UserVmssPool(
                pool_name="nodepool1", vmss_name="aks-nodepool1-31415926-vmss", instance_count=2
            ),
        )
    )
    # AKS names the outbound public IP of the cluster's load balancer with a GUID; "" seeds none.
    outbound_ip_name: str = "6d1c4b0e-3f2a-4e57-9b8c-2a7f5e0d9c31"
    kube_namespace: str = "egressgw-demo"

    @property
    def resource_group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"

    def vmss_id(self, pool: VmssPool | UserVmssPool) -> str:
        return (
            f"{self.resource_group_id}/providers/Microsoft.Compute/virtualMachineScaleSets/"
            f"{pool.vmss_name}"
        )

    def vm_id(self, pool: VmPool, index: int) -> str:
        return (
            f"{self.resource_group_id}/providers/Microsoft.Compute/virtualMachines/"
            f"{pool.vm_name(index)}"
        )

    @property
    def scale_sets(self) -> tuple[VmssPool | UserVmssPool, ...]:
        """Every VMSS pool: the gateway pools, then the regular ones."""
        return (*self.vmss_pools, *self.user_pools)

    def vmss_provider_id(self, pool: VmssPool | UserVmssPool, instance_id: int) -> str:
        """The Node's spec.providerID for a VMSS instance, as the Azure cloud provider sets it."""
        return f"azure://{self.vmss_id(pool)}/virtualMachines/{instance_id}"

    def vm_provider_id(self, pool: VmPool, index: int) -> str:
        return f"azure://{self.vm_id(pool, index)}"

    @property
    def outbound_ip_id(self) -> str:
        return (
            f"{self.resource_group_id}/providers/Microsoft.Network/publicIPAddresses/"
            f"{self.outbound_ip_name}"
        )


def vmss_computer_name(vmss_name: str, instance_id: int) -> str:
    """AKS names VMSS instances <vmss name><6-digit base-36 instance id>."""
    return f"{vmss_name}{_base36(instance_id).rjust(6, '0')}"


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    if value == 0:
        return "0"
    out = ""
    while value:
        value, rem = divmod(value, 36)
        out = digits[rem] + out
    return out
