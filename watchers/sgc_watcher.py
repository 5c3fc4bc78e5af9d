"""StaticGatewayConfigurations in all namespaces → finalizer + delivery to their workflows."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio.client import ApiClient, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException
from temporalio.client import Client

from contracts import kube_names
from contracts.raw_fields import ObjectFormatError
from contracts.workflow_io import ControllerSettings
from kubeclient.errors import api_failure, is_conflict, is_not_found
from kubeclient.kube_source import KubeListWatch
from kubeclient.list_watch import WatchEvent
from kubeclient.patch_types import MERGE_PATCH
from watchers.delivery import (
    DeliveryKey,
    already_delivered,
    deliver_spec,
    delivery_key,
    event_delivery,
)

log = logging.getLogger(__name__)


def finalizer_addition_patch(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """Merge patch adding the controller's finalizer, or None when it is there or the object is
    being deleted (a finalizer can no longer be added then). The resourceVersion makes a second
    controller that read the same version fail with 409 instead of writing a stale list."""
    if metadata.get("deletionTimestamp"):
        return None
    finalizers = [str(item) for item in metadata.get("finalizers") or []]
    if kube_names.SGC_FINALIZER in finalizers:
        return None
    return {
        "metadata": {
            "resourceVersion": metadata.get("resourceVersion"),
            "finalizers": [*finalizers, kube_names.SGC_FINALIZER],
        }
    }


class SgcWatcher:
    def __init__(
        self, api_client: ApiClient, temporal: Client, settings: ControllerSettings
    ) -> None:
        self._custom = CustomObjectsApi(api_client)
        self._temporal = temporal
        self._settings = settings
        self._sent: dict[str, DeliveryKey] = {}  # by "<namespace>/<name>"

    def source(self) -> KubeListWatch:
        return KubeListWatch(
            self._custom.list_cluster_custom_object,
            kube_names.API_GROUP,
            kube_names.API_VERSION,
            kube_names.SGC_PLURAL,
        )

    async def handle(self, event: WatchEvent) -> None:
        try:
            delivery = event_delivery(event)
        except ObjectFormatError as exc:
            log.warning("skipping a StaticGatewayConfiguration that does not parse: %s", exc)
            return
        key = f"{delivery.sgc.namespace}/{delivery.sgc.name}"
        if not delivery.deleting:
            await self._ensure_finalizer(key, event.object)
        if already_delivered(self._sent.get(key), delivery):
            if event.type == "DELETED":
                self._sent.pop(key, None)
            return
        await deliver_spec(self._temporal, self._settings, delivery)
        log.info(
            "delivered %s generation %d%s",
            key,
            delivery.generation,
            " (deleting)" if delivery.deleting else "",
        )
        if event.type == "DELETED":
            self._sent.pop(key, None)
        else:
            self._sent[key] = delivery_key(delivery)

    async def _ensure_finalizer(self, key: str, obj: Mapping[str, Any]) -> None:
        metadata = obj.get("metadata") or {}
        patch = finalizer_addition_patch(metadata)
        if patch is None:
            return
        try:
            await self._custom.patch_namespaced_custom_object(
                kube_names.API_GROUP,
                kube_names.API_VERSION,
                str(metadata.get("namespace") or ""),
                kube_names.SGC_PLURAL,
                str(metadata.get("name") or ""),
                patch,
                **MERGE_PATCH,
            )
        except ApiException as exc:
            if is_conflict(exc) or is_not_found(exc):
                # Someone else changed (or deleted) it first; that change arrives as an event of
                # its own and is handled then.
                log.debug("finalizer for %s not added: HTTP %s", key, api_failure(exc).status)
                return
            raise
        log.info("added finalizer to %s", key)
