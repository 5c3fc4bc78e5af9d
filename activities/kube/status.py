"""Writing a StaticGatewayConfiguration's status: conditions, egress prefix, server profile.

The new status is computed by a pure function from the object's current status; the write goes
through the /status subresource carrying the resourceVersion that was read, so a concurrent
writer makes this attempt fail with a retryable conflict instead of being overwritten.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from kubernetes_asyncio.client import ApiClient, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException
from temporalio import activity

from activities.kube.errors import activity_error
from contracts import kube_names
from contracts.activity_io import UPDATE_SGC_STATUS, StatusUpdate
from contracts.conditions import set_condition
from contracts.gateway_config import GatewayServerProfile, StaticGatewayConfigurationStatus
from contracts.object_meta import ObjectReference
from kubeclient.errors import is_not_found
from kubeclient.patch_types import MERGE_PATCH

log = logging.getLogger(__name__)

_MAX_CONDITION_MESSAGE: Final = 32768  # the CRD's maxLength
_MODELLED_FIELDS: Final = (
    "egressIpPrefix",
    "gatewayServerProfile",
    "conditions",
    "observedGeneration",
)


def _server_profile(
    current: GatewayServerProfile | None, update: StatusUpdate
) -> GatewayServerProfile | None:
    if update.server_ip is None and update.server_port is None and update.key is None:
        return current
    profile = current or GatewayServerProfile()
    if update.server_ip is not None:
        profile = replace(profile, ip=update.server_ip)
    if update.server_port is not None:
        profile = replace(profile, port=update.server_port)
    if update.key is not None:
        reference = ObjectReference(
            api_version="v1",
            kind="Secret",
            name=update.key.secret_name,
            namespace=update.key.secret_namespace,
        )
        profile = replace(
            profile, public_key=update.key.public_key, private_key_secret_ref=reference
        )
    return profile


def status_after(
    current: StaticGatewayConfigurationStatus, update: StatusUpdate, now: datetime
) -> StaticGatewayConfigurationStatus:
    """The status once `update` is applied; unchanged conditions keep lastTransitionTime."""
    conditions = current.conditions
    for change in update.conditions:
        conditions = set_condition(
            conditions,
            change.type,
            change.status,
            change.reason,
            change.message[:_MAX_CONDITION_MESSAGE],
            observed_generation=update.observed_generation,
            now=now,
        )
    return StaticGatewayConfigurationStatus(
        egress_ip_prefix=(
            current.egress_ip_prefix if update.egress_ip_prefix is None else update.egress_ip_prefix
        ),
        gateway_server_profile=_server_profile(current.gateway_server_profile, update),
        conditions=conditions,
        observed_generation=update.observed_generation,
    )


def status_patch(
    current_raw: Mapping[str, Any], new: StaticGatewayConfigurationStatus
) -> dict[str, Any]:
    """Merge patch of `status`: fields the new status no longer has are removed (null), fields
    this project does not model are left alone."""
    patch: dict[str, Any] = dict(new.to_object())
    for key in _MODELLED_FIELDS:
        if key in current_raw and key not in patch:
            patch[key] = None
    return patch


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


class StatusActivities:
    def __init__(self, api_client: ApiClient) -> None:
        self._custom = CustomObjectsApi(api_client)

    @activity.defn(name=UPDATE_SGC_STATUS)
    async def update_sgc_status(self, update: StatusUpdate) -> None:
        """Write the status; no-op when the object is gone or was recreated under a new uid."""
        sgc = update.sgc
        where = f"StaticGatewayConfiguration {sgc.namespace}/{sgc.name}"
        try:
            obj = await self._custom.get_namespaced_custom_object(
                kube_names.API_GROUP,
                kube_names.API_VERSION,
                sgc.namespace,
                kube_names.SGC_PLURAL,
                sgc.name,
            )
        except ApiException as exc:
            if is_not_found(exc):
                return
            raise activity_error(exc, f"read {where}") from None
        metadata = _mapping(obj.get("metadata"))
        if metadata.get("uid") != sgc.uid:
            log.info("%s was recreated; not writing the old object's status", where)
            return
        current = StaticGatewayConfigurationStatus.from_object(_mapping(obj.get("status")))
        new = status_after(current, update, datetime.now(UTC))
        if new == current:
            return
        body = {
            "metadata": {"resourceVersion": metadata.get("resourceVersion")},
            "status": status_patch(_mapping(obj.get("status")), new),
        }
        try:
            await self._custom.patch_namespaced_custom_object_status(
                kube_names.API_GROUP,
                kube_names.API_VERSION,
                sgc.namespace,
                kube_names.SGC_PLURAL,
                sgc.name,
                body,
                **MERGE_PATCH,
            )
        except ApiException as exc:
            if is_not_found(exc):
                return
            raise activity_error(exc, f"update status of {where}") from None
