"""Public IP prefixes: the managed `egressgateway-<uid>` prefix (created, deleted) and a prefix the
user brings (checked). Names and rules: docs/upstream-compatibility.md §2."""

from __future__ import annotations

from typing import Any, cast

from azure.core.exceptions import ResourceNotFoundError
from azure.core.polling import AsyncLROPoller
from azure.mgmt.network.aio import NetworkManagementClient
from temporalio import activity

from activities.azure import errors, long_operations
from activities.azure.arm_json import PublicIpPrefixJson
from activities.azure.arm_payloads import as_object, json_body, raw_json
from contracts import activity_io, resource_names
from contracts.activity_io import (
    ByoPrefixInput,
    DeletePrefixInput,
    DeletePrefixResult,
    EnsurePrefixInput,
)
from contracts.azure_state import PublicPrefix

_PREFIX_TYPE = "microsoft.network/publicipprefixes"
_PUBLIC_IP_TYPE = "microsoft.network/publicipaddresses"
_SPEC_FIELD = "spec.publicIpPrefixId"


def _prefix(doc: PublicIpPrefixJson, *, managed: bool) -> PublicPrefix:
    props = doc.get("properties") or {}
    return PublicPrefix(
        id=str(doc.get("id", "")),
        name=str(doc.get("name", "")),
        cidr=str(props.get("ipPrefix") or ""),
        prefix_length=int(props.get("prefixLength") or 0),
        managed=managed,
    )


def managed_prefix_body(location: str, prefix_length: int) -> dict[str, Any]:
    return {
        "location": location,
        "sku": {"name": "Standard", "tier": "Regional"},
        "properties": {"prefixLength": prefix_length, "publicIPAddressVersion": "IPv4"},
    }


class PublicIpPrefixActivities:
    def __init__(self, network: NetworkManagementClient) -> None:
        self._network = network

    async def _get(self, resource_group: str, name: str) -> PublicIpPrefixJson | None:
        with errors.azure_errors(f"reading public IP prefix {name}"):
            try:
                doc = await self._network.public_ip_prefixes.get(resource_group, name, cls=raw_json)
            except ResourceNotFoundError:
                return None
        return cast(PublicIpPrefixJson, as_object(doc))

    def _put(self, rg: str, name: str, body: object) -> long_operations.Begin[Any]:
        async def begin(token: str | None) -> AsyncLROPoller[Any]:
            return await self._network.public_ip_prefixes.begin_create_or_update(
                rg, name, json_body(body), cls=raw_json, continuation_token=token
            )

        return begin

    def _delete(self, rg: str, name: str) -> long_operations.Begin[None]:
        async def begin(token: str | None) -> AsyncLROPoller[None]:
            return await self._network.public_ip_prefixes.begin_delete(
                rg, name, continuation_token=token
            )

        return begin

    @activity.defn(name=activity_io.ENSURE_MANAGED_PREFIX)
    async def ensure_managed_public_ip_prefix(self, data: EnsurePrefixInput) -> PublicPrefix:
        """The managed prefix, created with the pool's length when missing (or Failed). One
        that exists is returned as it is: a prefix's length cannot change in place, so the
        caller compares `prefix_length` and replaces the prefix if it must."""
        rg = data.scope.resource_group
        prefix_id = resource_names.public_ip_prefix_id(data.scope.subscription_id, rg, data.name)
        key = f"PUT {prefix_id}"
        await long_operations.resume_interrupted(key, self._put(rg, data.name, {}))
        found = await self._get(rg, data.name)
        long_operations.require_settled(f"public IP prefix {data.name}", found)
        state = ((found or {}).get("properties") or {}).get("provisioningState")
        if found is not None and state != "Failed":
            return _prefix(found, managed=True)
        body = managed_prefix_body(data.scope.location, data.prefix_length)
        with errors.azure_errors(f"creating public IP prefix {data.name}"):
            created = await long_operations.run(key, self._put(rg, data.name, body))
        return _prefix(cast(PublicIpPrefixJson, as_object(created)), managed=True)

    @activity.defn(name=activity_io.GET_BYO_PREFIX)
    async def get_byo_public_ip_prefix(self, data: ByoPrefixInput) -> PublicPrefix:
        """The user's prefix, refused unless it is in our subscription and of the pool's length."""
        try:
            parsed = resource_names.parse_arm_resource_id(data.prefix_id)
        except ValueError:
            parsed = None
        if parsed is None or parsed.resource_type.lower() != _PREFIX_TYPE:
            raise errors.refused(
                errors.INVALID_PREFIX,
                f"{_SPEC_FIELD} {data.prefix_id!r} is not the ID of a public IP prefix "
                "(/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/"
                "publicIPPrefixes/<name>)",
            )
        if parsed.subscription.lower() != data.scope.subscription_id.lower():
            raise errors.refused(
                errors.INVALID_PREFIX,
                f"{_SPEC_FIELD} {data.prefix_id} is in subscription {parsed.subscription}, but "
                f"the gateway runs in subscription {data.scope.subscription_id}; the prefix must "
                "be in the same subscription",
            )
        found = await self._get(parsed.resource_group, parsed.name)
        if found is None:
            raise errors.refused(
                errors.INVALID_PREFIX, f"{_SPEC_FIELD} {data.prefix_id} does not exist"
            )
        prefix = _prefix(found, managed=False)
        if prefix.prefix_length != data.prefix_length:
            raise errors.refused(
                errors.INVALID_PREFIX,
                f"{_SPEC_FIELD} {data.prefix_id} is a /{prefix.prefix_length} prefix, but the "
                f"gateway pool needs a /{data.prefix_length} prefix",
            )
        return prefix

    @activity.defn(name=activity_io.DELETE_MANAGED_PREFIX)
    async def delete_managed_public_ip_prefix(self, data: DeletePrefixInput) -> DeletePrefixResult:
        """Delete the managed prefix, after the public IPs carved from it (a prefix in use
        cannot be deleted). Nothing to delete is success."""
        rg = data.scope.resource_group
        prefix_id = resource_names.public_ip_prefix_id(data.scope.subscription_id, rg, data.name)
        key = f"DELETE {prefix_id}"
        await long_operations.resume_interrupted(key, self._delete(rg, data.name))
        found = await self._get(rg, data.name)
        long_operations.require_settled(f"public IP prefix {data.name}", found)
        if found is None:
            return DeletePrefixResult(deleted=False)
        standalone: list[resource_names.ArmResourceId] = []
        instance_ips: list[str] = []
        for ref in (found.get("properties") or {}).get("publicIPAddresses") or []:
            try:
                ip_id = resource_names.parse_arm_resource_id(ref.get("id", ""))
            except ValueError:
                continue
            if ip_id.resource_type.lower() == _PUBLIC_IP_TYPE:
                standalone.append(ip_id)
            else:
                instance_ips.append(str(ip_id))
        if instance_ips:
            # Scale set instance IPs go with their ipConfigs (the pool's update removes them);
            # until then Azure refuses the delete, so wait for it rather than fail for good.
            raise errors.unexpected(
                f"public IP prefix {data.name} is still used by {len(instance_ips)} scale set "
                f"instance IP(s), e.g. {instance_ips[0]}; remove the ipConfigs first"
            )
        deleted_ips: list[str] = []
        for ip_id in standalone:
            if await self._delete_public_ip(ip_id):
                deleted_ips.append(ip_id.name)
        with errors.azure_errors(f"deleting public IP prefix {data.name}"):
            await long_operations.run(key, self._delete(rg, data.name))
        return DeletePrefixResult(deleted=True, deleted_public_ips=tuple(deleted_ips))

    async def _delete_public_ip(self, ip_id: resource_names.ArmResourceId) -> bool:
        async def begin(token: str | None) -> AsyncLROPoller[None]:
            return await self._network.public_ip_addresses.begin_delete(
                ip_id.resource_group, ip_id.name, continuation_token=token
            )

        with errors.azure_errors(f"deleting public IP {ip_id.name}"):
            try:
                await long_operations.run(f"DELETE {ip_id}", begin)
            except ResourceNotFoundError:
                return False
        return True
