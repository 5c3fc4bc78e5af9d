"""VM gateway pools: standalone VMs whose gateway NICs were created beforehand and tagged
`aks-managed-static-gateway-nic` + `aks-managed-poolName` (docs/upstream-compatibility.md §2.2).
Each NIC is written whole (PUT with If-Match); ipConfigs that stay keep their private IPs."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, cast

from azure.core.exceptions import ResourceNotFoundError
from azure.core.polling import AsyncLROPoller
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient

from activities.azure import errors, long_operations
from activities.azure.arm_json import IpConfigurationJson, NetworkInterfaceJson
from activities.azure.arm_payloads import as_object, json_body, raw_json, raw_json_list
from activities.azure.ip_config_plan import (
    NicShape,
    NicShapeError,
    WantedIpConfig,
    plan_ip_configs,
    private_ips,
)
from activities.azure.pool_resolution import in_pool, tag
from activities.azure.vmss import backend_pool_id
from contracts import resource_names
from contracts.activity_io import (
    MemberAddresses,
    PoolIpConfig,
    PoolMember,
    ReconcileMemberInput,
    ResourceChange,
)
from contracts.azure_state import GatewayPool


def is_gateway_nic(nic: dict[str, Any], pool_name: str) -> bool:
    return tag(nic, resource_names.TAG_STATIC_GATEWAY_NIC) is not None and in_pool(nic, pool_name)


def public_ip_name(prefix_id: str, nic_name: str) -> str:
    prefix_name = resource_names.parse_arm_resource_id(prefix_id).name
    return resource_names.vm_pool_public_ip_name(prefix_name, nic_name)


def wanted_on_nic(
    ip_configs: Sequence[PoolIpConfig], pool: GatewayPool, nic_name: str
) -> list[WantedIpConfig]:
    """The ipConfigs for one NIC; a public IP `<prefix>-<fnv(nic)>` only when a prefix is given."""
    return [
        WantedIpConfig(
            c.ip_config_name,
            resource_names.public_ip_address_id(
                pool.subscription_id,
                pool.resource_group,
                public_ip_name(c.public_ip_prefix_id, nic_name),
            )
            if c.public_ip_prefix_id
            else "",
        )
        for c in ip_configs
    ]


def _public_ip_ref(config: IpConfigurationJson) -> str:
    ref = (config.get("properties") or {}).get("publicIPAddress")
    return ref["id"] if ref else ""


def released_public_ips(
    before: Sequence[IpConfigurationJson], after: Sequence[IpConfigurationJson], nic_name: str
) -> list[str]:
    """IDs of the per-NIC public IPs our ipConfigs no longer use (ours: `<prefix>-<fnv(nic)>`)."""
    still = {_public_ip_ref(c).lower() for c in after}
    out: list[str] = []
    for config in before:
        if not resource_names.is_managed_resource_name(str(config.get("name", ""))):
            continue
        ref = _public_ip_ref(config)
        if not ref or ref.lower() in still:
            continue
        try:
            parsed = resource_names.parse_vm_pool_public_ip_name(
                resource_names.parse_arm_resource_id(ref).name
            )
        except ValueError:
            continue
        if parsed.belongs_to(nic_name):
            out.append(ref)
    return out


async def list_members(
    network: NetworkManagementClient, compute: ComputeManagementClient, pool: GatewayPool
) -> list[PoolMember]:
    rg = pool.resource_group
    with errors.azure_errors(f"listing the gateway NICs of VM pool {pool.name}"):
        nics = [
            as_object(n)
            async for n in network.network_interfaces.list(rg, cls=raw_json_list)
            if is_gateway_nic(as_object(n), pool.name)
        ]
    computer_names: dict[str, str] = {}
    with errors.azure_errors(f"listing the VMs of VM pool {pool.name}"):
        async for item in compute.virtual_machines.list(rg, cls=raw_json_list):
            vm = as_object(item)
            os_profile = (vm.get("properties") or {}).get("osProfile") or {}
            computer_names[str(vm.get("id", "")).lower()] = str(os_profile.get("computerName", ""))
    members: list[PoolMember] = []
    for nic in sorted(nics, key=lambda n: str(n.get("name", ""))):
        vm_ref = str(((nic.get("properties") or {}).get("virtualMachine") or {}).get("id", ""))
        node = computer_names.get(vm_ref.lower(), "")
        if not node and vm_ref:
            node = vm_ref.rsplit("/", 1)[-1]
        members.append(PoolMember(id=str(nic.get("name", "")), node_name=node or str(nic["name"])))
    return members


class _NicWriter:
    def __init__(self, network: NetworkManagementClient, pool: GatewayPool) -> None:
        self.network = network
        self.pool = pool

    async def ensure_public_ip(self, ip_id: str, prefix_id: str, location: str) -> bool:
        """Create the NIC's public IP from the prefix when missing; True when it wrote."""
        name = resource_names.parse_arm_resource_id(ip_id).name
        rg = self.pool.resource_group
        with errors.azure_errors(f"reading public IP {name}"):
            try:
                found = as_object(
                    await self.network.public_ip_addresses.get(rg, name, cls=raw_json)
                )
            except ResourceNotFoundError:
                found = None
        if found is not None:
            props = found.get("properties") or {}
            prefix = str((props.get("publicIPPrefix") or {}).get("id", ""))
            if prefix.lower() == prefix_id.lower() and props.get("provisioningState") != "Failed":
                return False
        body = {
            "location": location,
            "sku": {"name": "Standard", "tier": "Regional"},
            "properties": {
                "publicIPAllocationMethod": "Static",
                "publicIPAddressVersion": "IPv4",
                "publicIPPrefix": {"id": prefix_id},
            },
        }

        async def begin(token: str | None) -> AsyncLROPoller[Any]:
            return await self.network.public_ip_addresses.begin_create_or_update(
                rg, name, json_body(body), cls=raw_json, continuation_token=token
            )

        with errors.azure_errors(f"creating public IP {name}"):
            await long_operations.run(f"PUT {ip_id}", begin)
        return True

    async def delete_public_ip(self, ip_id: str) -> None:
        parsed = resource_names.parse_arm_resource_id(ip_id)

        async def begin(token: str | None) -> AsyncLROPoller[None]:
            return await self.network.public_ip_addresses.begin_delete(
                parsed.resource_group, parsed.name, continuation_token=token
            )

        with errors.azure_errors(f"deleting public IP {parsed.name}"):
            try:
                await long_operations.run(f"DELETE {ip_id}", begin)
            except ResourceNotFoundError:
                return

    def nic_key(self, name: str) -> str:
        nic_id = resource_names.network_interface_id(
            self.pool.subscription_id, self.pool.resource_group, name
        )
        return f"PUT {nic_id}"

    def put_nic_operation(
        self, name: str, body: object, headers: dict[str, str]
    ) -> long_operations.Begin[Any]:
        async def begin(token: str | None) -> AsyncLROPoller[Any]:
            return await self.network.network_interfaces.begin_create_or_update(
                self.pool.resource_group,
                name,
                json_body(body),
                headers=headers,
                cls=raw_json,
                continuation_token=token,
            )

        return begin

    async def put_nic(self, nic: NetworkInterfaceJson) -> NetworkInterfaceJson:
        name = str(nic.get("name", ""))
        etag = nic.get("etag")
        headers = {"If-Match": etag} if etag else {}
        with errors.azure_errors(f"updating gateway NIC {name}"):
            written = await long_operations.run(
                self.nic_key(name), self.put_nic_operation(name, nic, headers)
            )
        return cast(NetworkInterfaceJson, as_object(written))


async def reconcile_nic(
    network: NetworkManagementClient, data: ReconcileMemberInput
) -> MemberAddresses:
    pool, nic_name = data.pool, data.member.id
    writer = _NicWriter(network, pool)
    await long_operations.resume_interrupted(
        writer.nic_key(nic_name), writer.put_nic_operation(nic_name, {}, {})
    )
    with errors.azure_errors(f"reading gateway NIC {nic_name}"):
        try:
            nic = cast(
                NetworkInterfaceJson,
                as_object(
                    await network.network_interfaces.get(
                        pool.resource_group, nic_name, cls=raw_json
                    )
                ),
            )
        except ResourceNotFoundError:
            raise errors.unexpected(
                f"gateway NIC {nic_name} of VM pool {pool.name} no longer exists"
            ) from None
    long_operations.require_settled(f"gateway NIC {nic_name}", nic)
    location = str(nic.get("location", ""))
    wanted = wanted_on_nic(data.ip_configs, pool, nic_name)
    changes: list[ResourceChange] = []
    by_uid = {c.ip_config_name.lower(): c for c in data.ip_configs}
    for want in wanted:
        if want.public_ip:
            prefix_id = by_uid[want.name.lower()].public_ip_prefix_id
            if await writer.ensure_public_ip(want.public_ip, prefix_id, location):
                changes.append(
                    ResourceChange(
                        f"NIC {nic_name}: created public IP {want.public_ip.rsplit('/', 1)[-1]}",
                        resource_names.parse_managed_resource_name(want.name),
                    )
                )
    current: list[IpConfigurationJson] = list(
        (nic.get("properties") or {}).get("ipConfigurations") or []
    )
    try:
        plan = plan_ip_configs(
            current, wanted, backend_pool_id(data.scope, pool), NicShape.STANDALONE_NIC
        )
    except NicShapeError as err:
        raise errors.refused(errors.INVALID_POOL, f"gateway NIC {nic_name}: {err}") from None
    changes += [c.on(f"NIC {nic_name}") for c in plan.changes]
    failed = (nic.get("properties") or {}).get("provisioningState") == "Failed"
    primary, by_name = private_ips(current)
    complete = bool(primary) and all(w.name.lower() in by_name for w in wanted)
    if plan.changed or failed or not complete:
        if failed:
            changes.append(ResourceChange(f"updated NIC {nic_name} (was Failed)"))
        body = copy.deepcopy(nic)
        body.setdefault("properties", {})["ipConfigurations"] = plan.ip_configurations
        nic = await writer.put_nic(body)
        for released in released_public_ips(current, plan.ip_configurations, nic_name):
            await writer.delete_public_ip(released)
            changes.append(
                ResourceChange(f"NIC {nic_name}: deleted public IP {released.rsplit('/', 1)[-1]}")
            )
    primary, by_name = private_ips((nic.get("properties") or {}).get("ipConfigurations") or [])
    missing = [w.name for w in wanted if w.name.lower() not in by_name]
    if not primary or missing:
        raise errors.unexpected(f"failed to find the private IPs of gateway NIC {nic_name}")
    return MemberAddresses(
        member=data.member,
        primary_ip=primary,
        secondary_ips=tuple(
            (c.owner_uid, by_name[c.ip_config_name.lower()]) for c in data.ip_configs
        ),
        changes=tuple(changes),
    )
