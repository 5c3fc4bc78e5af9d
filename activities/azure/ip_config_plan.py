"""Our secondary ipConfigurations on a gateway NIC: a pure function of the NIC's ipConfigurations
as read and the ones wanted (names: docs/upstream-compatibility.md §2.1).

Two shapes share the logic: a VMSS network profile (model or instance), where a public IP comes
from `publicIPAddressConfiguration` naming a prefix, and a standalone NIC of a VM pool, where it is
a `publicIPAddress` resource carved from the prefix. Ours are the `egressgateway-*` ipConfigs:
after the plan they are exactly the wanted ones (name, primary false, IPv4, the primary ipConfig's
subnet, the public IP only when a prefix is given), and the primary ipConfig carries the gateway
backend pool iff any of ours remain. Everything else on the NIC is left alone; an ipConfig that
stays keeps its private address.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from activities.azure.arm_json import IpConfigurationJson, SubResourceJson
from contracts import resource_names
from contracts.activity_io import ResourceChange


class NicShape(StrEnum):
    VMSS_PROFILE = "vmss-profile"  # publicIPAddressConfiguration {name, publicIPPrefix}
    STANDALONE_NIC = "standalone-nic"  # publicIPAddress {id}


@dataclass(frozen=True)
class WantedIpConfig:
    name: str  # egressgateway-<uid>
    public_ip: str  # VMSS: the prefix ID; standalone NIC: the public IP's ID; "" for none


@dataclass(frozen=True)
class IpConfigPlan:
    ip_configurations: list[IpConfigurationJson]
    changes: tuple[ResourceChange, ...]

    @property
    def changed(self) -> bool:
        return bool(self.changes)


class NicShapeError(Exception):
    """The NIC has no primary ipConfiguration with a subnet to copy."""


def _key(value: str) -> str:
    return value.lower()


def _owner(name: str) -> str:
    """The SGC UID an ipConfig of ours (egressgateway-<uid>) belongs to."""
    return resource_names.parse_managed_resource_name(name)


def _ref_id(ref: SubResourceJson | None) -> str:
    return _key(ref.get("id", "")) if ref else ""


def primary_index(configs: Sequence[IpConfigurationJson]) -> int:
    for i, config in enumerate(configs):
        if (config.get("properties") or {}).get("primary") is True:
            return i
    if len(configs) == 1:
        return 0
    raise NicShapeError("the NIC has no primary ipConfiguration")


def expected_ip_config(
    wanted: WantedIpConfig, subnet: SubResourceJson, shape: NicShape
) -> IpConfigurationJson:
    config: IpConfigurationJson = {
        "name": wanted.name,
        "properties": {
            "primary": False,
            "privateIPAddressVersion": "IPv4",
            "subnet": {"id": subnet["id"]},
        },
    }
    props = config["properties"]
    if shape is NicShape.STANDALONE_NIC:
        props["privateIPAllocationMethod"] = "Dynamic"
    if wanted.public_ip:
        if shape is NicShape.VMSS_PROFILE:
            props["publicIPAddressConfiguration"] = {
                "name": wanted.name,
                "properties": {"publicIPPrefix": {"id": wanted.public_ip}},
            }
        else:
            props["publicIPAddress"] = {"id": wanted.public_ip}
    return config


def _public_ip_of(config: IpConfigurationJson, shape: NicShape) -> str:
    props = config.get("properties") or {}
    if shape is NicShape.VMSS_PROFILE:
        pip = props.get("publicIPAddressConfiguration")
        if not pip:
            return ""
        return _ref_id((pip.get("properties") or {}).get("publicIPPrefix"))
    return _ref_id(props.get("publicIPAddress"))


def _differs(
    config: IpConfigurationJson, wanted: WantedIpConfig, subnet: SubResourceJson, shape: NicShape
) -> str | None:
    """Why an existing ipConfig of ours is not what we want (None when it is)."""
    props = config.get("properties") or {}
    if props.get("primary") is True:
        return "it was primary"
    if str(props.get("privateIPAddressVersion", "IPv4")).lower() != "ipv4":
        return "it was not IPv4"
    if _ref_id(props.get("subnet")) != _key(subnet["id"]):
        return "its subnet differed"
    if _public_ip_of(config, shape) != _key(wanted.public_ip):
        return "its public IP differed"
    return None


def plan_ip_configs(
    current: Sequence[IpConfigurationJson],
    wanted: Sequence[WantedIpConfig],
    backend_pool_id: str,
    shape: NicShape,
) -> IpConfigPlan:
    configs = [copy.deepcopy(c) for c in current]
    primary_at = primary_index(configs)
    subnet = (configs[primary_at].get("properties") or {}).get("subnet")
    if not subnet or not subnet.get("id"):
        raise NicShapeError("the primary ipConfiguration has no subnet")
    by_name = {_key(w.name): w for w in wanted}
    changes: list[ResourceChange] = []
    out: list[IpConfigurationJson] = []
    present: set[str] = set()
    for config in configs:
        name = str(config.get("name", ""))
        if not resource_names.is_managed_resource_name(name):
            out.append(config)
            continue
        want = by_name.get(_key(name))
        if want is None:
            changes.append(ResourceChange(f"removed ipConfig {name}", _owner(name)))
            continue
        present.add(_key(name))
        why = _differs(config, want, subnet, shape)
        if why is None:
            out.append(config)
            continue
        replacement = expected_ip_config(want, subnet, shape)
        old_address = (config.get("properties") or {}).get("privateIPAddress")
        if old_address and why != "its subnet differed":
            # Keep the private IP: it is what the node's SNAT rule and the user's status use.
            replacement["properties"]["privateIPAddress"] = old_address
        out.append(replacement)
        changes.append(ResourceChange(f"replaced ipConfig {name} ({why})", _owner(name)))
    for want in wanted:
        if _key(want.name) not in present:
            out.append(expected_ip_config(want, subnet, shape))
            changes.append(ResourceChange(f"added ipConfig {want.name}", _owner(want.name)))

    primary_name = _key(str(configs[primary_at].get("name", "")))
    primary = next((c for c in out if _key(str(c.get("name", ""))) == primary_name), None)
    if primary is None:
        raise NicShapeError("the primary ipConfiguration is one of ours")
    primary_props = primary.setdefault("properties", {})
    pools = list(primary_props.get("loadBalancerBackendAddressPools") or [])
    has_pool = any(_ref_id(p) == _key(backend_pool_id) for p in pools)
    keep_pool = any(resource_names.is_managed_resource_name(str(c.get("name", ""))) for c in out)
    pool_name = backend_pool_id.rsplit("/", 1)[-1]
    if keep_pool and not has_pool:
        primary_props["loadBalancerBackendAddressPools"] = [*pools, {"id": backend_pool_id}]
        changes.append(ResourceChange(f"added backend pool {pool_name} to the primary ipConfig"))
    elif not keep_pool and has_pool:
        primary_props["loadBalancerBackendAddressPools"] = [
            p for p in pools if _ref_id(p) != _key(backend_pool_id)
        ]
        changes.append(
            ResourceChange(f"removed backend pool {pool_name} from the primary ipConfig")
        )
    return IpConfigPlan(out, tuple(changes))


def private_ips(configs: Sequence[IpConfigurationJson]) -> tuple[str, dict[str, str]]:
    """(primary private IP, {ipConfig name lower-cased: private IP}) of a NIC as read."""
    primary = ""
    by_name: dict[str, str] = {}
    for config in configs:
        props = config.get("properties") or {}
        address = props.get("privateIPAddress") or ""
        if props.get("primary") is True or len(configs) == 1:
            primary = address
        if address:
            by_name[_key(str(config.get("name", "")))] = address
    return primary, by_name
