"""Key Secrets (`sgw-<uid>` with the owner labels) → re-delivery when one is deleted.

A configuration whose Secret disappears while it lives would leave its gateways without a key;
its workflow is told to run a full pass, which recreates the Secret. Secrets the workflow itself
deletes during teardown belong to objects that are being deleted or are gone: those are left
alone. Only metadata is kept from watched Secrets: their keys never enter this process's state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException
from temporalio.client import Client

from contracts import kube_names, resource_names
from contracts.object_meta import ObjectMeta
from contracts.raw_fields import ObjectFormatError
from contracts.resource_names import ObjectKey
from contracts.workflow_io import ControllerSettings
from kubeclient.errors import is_not_found
from kubeclient.kube_source import KubeListWatch
from kubeclient.list_watch import RawObject, WatchEvent
from watchers.delivery import request_resync, spec_delivery

log = logging.getLogger(__name__)


def metadata_only(obj: RawObject) -> RawObject:
    return {key: obj[key] for key in ("apiVersion", "kind", "metadata") if key in obj}


def secret_owner(secret: Mapping[str, Any]) -> tuple[ObjectKey, str] | None:
    """(owning SGC, its uid) of a key Secret, from the owner labels (and annotation) and the
    `sgw-<uid>` name."""
    try:
        meta = ObjectMeta.from_object(secret.get("metadata") or {})
        uid = resource_names.parse_gateway_secret_name(meta.name)
    except (ObjectFormatError, ValueError):
        return None
    namespace = meta.labels.get(kube_names.SECRET_OWNER_NAMESPACE_LABEL, "")
    # A name longer than a label value holds is in the annotation (its label is derived).
    name = meta.annotations.get(kube_names.SECRET_OWNER_NAME_ANNOTATION) or meta.labels.get(
        kube_names.SECRET_OWNER_NAME_LABEL, ""
    )
    if not namespace or not name:
        return None
    return ObjectKey(namespace, name), uid


class SecretWatcher:
    def __init__(
        self, api_client: ApiClient, temporal: Client, settings: ControllerSettings
    ) -> None:
        self._core = CoreV1Api(api_client)
        self._custom = CustomObjectsApi(api_client)
        self._temporal = temporal
        self._settings = settings

    def source(self) -> KubeListWatch:
        return KubeListWatch(
            self._core.list_namespaced_secret,
            self._settings.secret_namespace,
            label_selector=kube_names.SECRET_OWNER_NAME_LABEL,
            keep=metadata_only,
        )

    async def handle(self, event: WatchEvent) -> None:
        if event.type != "DELETED":
            return
        owner = secret_owner(event.object)
        if owner is None:
            return
        key, uid = owner
        try:
            sgc = await self._custom.get_namespaced_custom_object(
                kube_names.API_GROUP,
                kube_names.API_VERSION,
                key.namespace,
                kube_names.SGC_PLURAL,
                key.name,
            )
        except ApiException as exc:
            if is_not_found(exc):
                return  # torn down with its configuration
            raise
        try:
            delivery = spec_delivery(sgc)
        except ObjectFormatError as exc:
            log.warning("key Secret of %s deleted; its object does not parse: %s", key, exc)
            return
        if delivery.sgc.uid != uid or delivery.deleting:
            return
        await request_resync(self._temporal, self._settings, delivery)
        log.info("key Secret of %s was deleted; asked its workflow to recreate it", key)
