"""Removing the controller's finalizer once a configuration's teardown is complete.

(Adding it is the SGC watcher's job: it must be there before any Azure resource exists.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes_asyncio.client import ApiClient, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException
from temporalio import activity

from activities.kube.errors import activity_error
from contracts import kube_names
from contracts.activity_io import REMOVE_SGC_FINALIZER, SgcRef
from kubeclient.errors import is_not_found
from kubeclient.patch_types import MERGE_PATCH

log = logging.getLogger(__name__)


def finalizers_without(finalizers: Sequence[str], finalizer: str) -> list[str] | None:
    """The list with `finalizer` removed, or None when it is not there (nothing to write)."""
    if finalizer not in finalizers:
        return None
    return [item for item in finalizers if item != finalizer]


def finalizer_removal_patch(metadata: Mapping[str, Any], finalizer: str) -> dict[str, Any] | None:
    """Merge patch removing `finalizer`, guarded by the resourceVersion it was computed from."""
    finalizers = metadata.get("finalizers") or []
    remaining = finalizers_without([str(item) for item in finalizers], finalizer)
    if remaining is None:
        return None
    return {
        "metadata": {
            "resourceVersion": metadata.get("resourceVersion"),
            "finalizers": remaining,
        }
    }


class FinalizerActivities:
    def __init__(self, api_client: ApiClient) -> None:
        self._custom = CustomObjectsApi(api_client)

    @activity.defn(name=REMOVE_SGC_FINALIZER)
    async def remove_sgc_finalizer(self, sgc: SgcRef) -> None:
        """Remove the finalizer; done when it is absent, the object is gone or was recreated."""
        where = f"StaticGatewayConfiguration {sgc.namespace}/{sgc.name}"
        args = (
            kube_names.API_GROUP,
            kube_names.API_VERSION,
            sgc.namespace,
            kube_names.SGC_PLURAL,
            sgc.name,
        )
        try:
            obj = await self._custom.get_namespaced_custom_object(*args)
        except ApiException as exc:
            if is_not_found(exc):
                return
            raise activity_error(exc, f"read {where}") from None
        metadata = obj.get("metadata") or {}
        if metadata.get("uid") != sgc.uid:
            return  # a new object under the same name; its own workflow owns its finalizer
        patch = finalizer_removal_patch(metadata, kube_names.SGC_FINALIZER)
        if patch is None:
            return
        try:
            await self._custom.patch_namespaced_custom_object(*args, patch, **MERGE_PATCH)
        except ApiException as exc:
            if is_not_found(exc):
                return
            raise activity_error(exc, f"remove finalizer of {where}") from None
        log.info("removed finalizer of %s", where)
