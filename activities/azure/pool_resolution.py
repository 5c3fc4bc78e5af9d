"""Which Azure resources make up a configuration's gateway pool: pure decisions over the scale
sets and VMs as listed (docs/upstream-compatibility.md §2.2, §2.3).

- `gatewayVmssProfile`: that scale set; the prefix length comes from the profile.
- `gatewayNodepoolName`: the scale set tagged `aks-managed-poolName` with that name
  (case-insensitive), else the VMs so tagged (a VM pool); the prefix length comes from the tag
  `aks-managed-gatewayIPPrefixSize`, which public mode needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contracts import resource_names
from contracts.azure_state import GatewayPool, PoolKind
from contracts.gateway_config import StaticGatewayConfigurationSpec


class PoolResolutionError(Exception):
    """The spec's pool cannot be used as it is; the message names the pool and the reason."""

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


def tag(resource: Mapping[str, Any], name: str) -> str | None:
    """A tag's value; tag names compare case-insensitively, as ARM does."""
    tags = resource.get("tags") or {}
    for key, value in tags.items():
        if str(key).lower() == name.lower():
            return str(value)
    return None


def in_pool(resource: Mapping[str, Any], pool_name: str) -> bool:
    value = tag(resource, resource_names.TAG_POOL_NAME)
    return value is not None and value.lower() == pool_name.lower()


def prefix_length_from_tag(resource: Mapping[str, Any], pool_name: str, *, required: bool) -> int:
    raw = tag(resource, resource_names.TAG_GATEWAY_IP_PREFIX_SIZE)
    if raw is None:
        if required:
            raise PoolResolutionError(
                f"gateway nodepool {pool_name} has no {resource_names.TAG_GATEWAY_IP_PREFIX_SIZE} "
                "tag, so the size of its public IP prefix is unknown"
            )
        return 0
    try:
        length = int(raw.strip())
    except ValueError:
        raise PoolResolutionError(
            f"gateway nodepool {pool_name} has tag "
            f"{resource_names.TAG_GATEWAY_IP_PREFIX_SIZE}={raw[:40]!r}, which is not a number"
        ) from None
    if not 0 < length <= 32:
        raise PoolResolutionError(
            f"gateway nodepool {pool_name} has tag "
            f"{resource_names.TAG_GATEWAY_IP_PREFIX_SIZE}={length}, not a prefix length in 1-32"
        )
    return length


def _capacity(vmss: Mapping[str, Any]) -> int:
    capacity = (vmss.get("sku") or {}).get("capacity")
    return capacity if isinstance(capacity, int) else 0


def _unique_id(vmss: Mapping[str, Any], what: str) -> str:
    unique_id = (vmss.get("properties") or {}).get("uniqueId")
    if not isinstance(unique_id, str) or not unique_id:
        raise PoolResolutionError(f"{what} has no uniqueId to name its load balancer pool")
    return resource_names.vmss_lb_pool_name(unique_id)


def pool_from_profile(
    vmss: Mapping[str, Any], subscription_id: str, spec: StaticGatewayConfigurationSpec
) -> GatewayPool:
    profile = spec.vmss_profile
    assert profile is not None
    what = f"gateway VMSS {profile.vmss_resource_group}/{profile.vmss_name}"
    return GatewayPool(
        kind=PoolKind.VMSS,
        subscription_id=subscription_id,
        resource_group=profile.vmss_resource_group,
        name=str(vmss.get("name") or profile.vmss_name),
        lb_pool_name=_unique_id(vmss, what),
        prefix_length=profile.public_ip_prefix_size,
        instance_count=_capacity(vmss),
    )


def pool_from_nodepool(
    pool_name: str,
    scale_sets: Sequence[Mapping[str, Any]],
    vms: Sequence[Mapping[str, Any]],
    subscription_id: str,
    resource_group: str,
    *,
    public: bool,
) -> GatewayPool:
    """The pool named by `gatewayNodepoolName` among the resource group's scale sets and VMs."""
    for vmss in scale_sets:
        if in_pool(vmss, pool_name):
            return GatewayPool(
                kind=PoolKind.VMSS,
                subscription_id=subscription_id,
                resource_group=resource_group,
                name=str(vmss.get("name", "")),
                lb_pool_name=_unique_id(vmss, f"gateway nodepool {pool_name}"),
                prefix_length=prefix_length_from_tag(vmss, pool_name, required=public),
                instance_count=_capacity(vmss),
            )
    members = [vm for vm in vms if in_pool(vm, pool_name)]
    if not members:
        raise PoolResolutionError(
            f"gateway nodepool {pool_name} not found: no VMSS or VM in resource group "
            f"{resource_group} has tag {resource_names.TAG_POOL_NAME}={pool_name}",
            not_found=True,
        )
    canonical = tag(members[0], resource_names.TAG_POOL_NAME) or pool_name
    return GatewayPool(
        kind=PoolKind.VM,
        subscription_id=subscription_id,
        resource_group=resource_group,
        name=canonical,
        lb_pool_name=resource_names.vm_pool_lb_pool_name(canonical),
        prefix_length=max(prefix_length_from_tag(vm, pool_name, required=public) for vm in members),
        instance_count=len(members),
    )
