"""Who uses what: scans over stored resources that back allocation and computed back-references."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from sim.arm import ids
from sim.arm.store import Resource, ResourceView

NIC_TYPES = (ids.NETWORK_INTERFACES, ids.VMSS_VM_NICS)


def _ref(props: dict[str, Any], key: str) -> str | None:
    value = props.get(key)
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _items(props: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = props.get(key)
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, dict)]


def ip_configurations(resource: Resource) -> Iterator[tuple[str, dict[str, Any]]]:
    """(ipConfiguration ID, properties) of a NIC, or of a load balancer's frontends."""
    key = "frontendIPConfigurations" if resource.type == ids.LOAD_BALANCERS else "ipConfigurations"
    for item in _items(resource.properties, key):
        props = item.get("properties")
        if isinstance(props, dict) and isinstance(item.get("id"), str):
            yield str(item["id"]), props


def _ip_holders(view: ResourceView) -> Iterator[Resource]:
    for type_ in (*NIC_TYPES, ids.LOAD_BALANCERS):
        yield from view.of_type(type_)


def private_ip_owners(view: ResourceView, subnet_key: str, exclude_key: str) -> dict[str, str]:
    """Private addresses taken in a subnet -> owning ipConfiguration ID, except `exclude_key`'s."""
    out: dict[str, str] = {}
    for res in _ip_holders(view):
        if res.key == exclude_key:
            continue
        for config_id, props in ip_configurations(res):
            subnet = _ref(props, "subnet")
            address = props.get("privateIPAddress")
            if subnet and subnet.lower() == subnet_key and isinstance(address, str):
                out[address] = config_id
    return out


def subnet_users(view: ResourceView, subnet_key: str) -> list[str]:
    return sorted(
        config_id
        for res in _ip_holders(view)
        for config_id, props in ip_configurations(res)
        if (_ref(props, "subnet") or "").lower() == subnet_key
    )


def pool_members(view: ResourceView, pool_id: str) -> list[str]:
    """ipConfiguration IDs (plain and VMSS instance NICs) that join a backend pool."""
    wanted = pool_id.lower()
    out: list[str] = []
    for type_ in NIC_TYPES:
        for res in view.of_type(type_):
            for config_id, props in ip_configurations(res):
                pools = _items(props, "loadBalancerBackendAddressPools")
                if any(str(p.get("id", "")).lower() == wanted for p in pools):
                    out.append(config_id)
    return sorted(out)


def public_ip_records(view: ResourceView) -> list[Resource]:
    return view.of_type(ids.PUBLIC_IP_ADDRESSES) + view.of_type(ids.VMSS_VM_PUBLIC_IPS)


def public_ips_in_use(view: ResourceView, exclude_key: str) -> set[str]:
    return {
        str(r.properties["ipAddress"])
        for r in public_ip_records(view)
        if r.key != exclude_key and isinstance(r.properties.get("ipAddress"), str)
    }


def prefix_users(view: ResourceView, prefix_key: str) -> list[Resource]:
    return [
        r
        for r in public_ip_records(view)
        if (_ref(r.properties, "publicIPPrefix") or "").lower() == prefix_key
    ]


def taken_prefixes(view: ResourceView, exclude_key: str) -> list[ipaddress.IPv4Network]:
    out = []
    for res in view.of_type(ids.PUBLIC_IP_PREFIXES):
        value = res.properties.get("ipPrefix")
        if res.key != exclude_key and isinstance(value, str):
            out.append(ipaddress.IPv4Network(value))
    return out


def public_ip_attachment(view: ResourceView, pip_key: str) -> str | None:
    """The NIC ipConfiguration a public IP address is attached to."""
    for res in view.of_type(ids.NETWORK_INTERFACES):
        for config_id, props in ip_configurations(res):
            if (_ref(props, "publicIPAddress") or "").lower() == pip_key:
                return config_id
    return None


def nic_owner_vm(view: ResourceView, nic_key: str) -> str | None:
    for vm in view.of_type(ids.VIRTUAL_MACHINES):
        network = vm.properties.get("networkProfile")
        if not isinstance(network, dict):
            continue
        for nic in _items(network, "networkInterfaces"):
            if str(nic.get("id", "")).lower() == nic_key:
                return vm.id
    return None


def vmss_using_prefix(view: ResourceView, prefix_key: str) -> list[str]:
    """Scale sets whose model asks for public IPs from the prefix."""
    out = []
    for vmss in view.of_type(ids.VMSS):
        profile = vmss.properties.get("virtualMachineProfile") or {}
        configs = (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []
        for nic in configs:
            for ipc in (nic.get("properties") or {}).get("ipConfigurations") or []:
                pip = (ipc.get("properties") or {}).get("publicIPAddressConfiguration") or {}
                prefix = _ref(pip.get("properties") or {}, "publicIPPrefix")
                if prefix and prefix.lower() == prefix_key:
                    out.append(vmss.id)
    return sorted(set(out))
