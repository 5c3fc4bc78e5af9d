"""core/v1 Events on a StaticGatewayConfiguration, aggregated as `kubectl describe` shows them.

An event's name is derived from what makes it "the same event" (object uid, type, reason,
message), as client-go's correlator keys them; a repeat bumps `count` and `lastTimestamp` on the
existing Event instead of adding a line. Retrying an attempt may count one occurrence twice,
which is what a repeated event means to a reader anyway.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any, Final

from kubernetes_asyncio.client import ApiClient, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kube.errors import CONFLICT_ERROR, activity_error
from contracts import kube_names
from contracts.activity_io import RECORD_SGC_EVENT, EventInput
from contracts.conditions import format_kube_time
from kubeclient.errors import is_conflict, is_not_found
from kubeclient.patch_types import MERGE_PATCH

log = logging.getLogger(__name__)

EVENT_SOURCE_COMPONENT: Final = "egressgw-controller"
_MAX_MESSAGE: Final = 1024  # events.k8s.io's limit on a note; longer text goes in conditions
_MAX_NAME: Final = 253


def event_name(event: EventInput) -> str:
    """`<sgc name>.<16 hex digits>`: stable for one (uid, type, reason, message)."""
    key = "\0".join((event.sgc.uid, event.type, event.reason, _message(event)))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    # A cut name may end in "." or "-", which may not precede the "." of a DNS subdomain.
    head = event.sgc.name[: _MAX_NAME - len(digest) - 1].rstrip(".-")
    return f"{head}.{digest}"


def _message(event: EventInput) -> str:
    return event.message[:_MAX_MESSAGE]


def event_body(event: EventInput, now: datetime) -> dict[str, Any]:
    stamp = format_kube_time(now)
    sgc = event.sgc
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(event), "namespace": sgc.namespace},
        "involvedObject": {
            "apiVersion": kube_names.GROUP_VERSION,
            "kind": kube_names.SGC_KIND,
            "name": sgc.name,
            "namespace": sgc.namespace,
            "uid": sgc.uid,
        },
        "reason": event.reason,
        "message": _message(event),
        "type": event.type,
        "source": {"component": EVENT_SOURCE_COMPONENT},
        "reportingComponent": EVENT_SOURCE_COMPONENT,
        "reportingInstance": EVENT_SOURCE_COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventActivities:
    def __init__(self, api_client: ApiClient) -> None:
        self._core = CoreV1Api(api_client)

    @activity.defn(name=RECORD_SGC_EVENT)
    async def record_sgc_event(self, event: EventInput) -> None:
        namespace = event.sgc.namespace
        name = event_name(event)
        now = datetime.now(UTC)
        try:
            existing = await self._core.read_namespaced_event(name, namespace)
        except ApiException as exc:
            if not is_not_found(exc):
                raise activity_error(exc, f"read Event {namespace}/{name}") from None
            existing = None
        if existing is None:
            try:
                body: Any = event_body(event, now)
                await self._core.create_namespaced_event(namespace, body)
            except ApiException as exc:
                if is_not_found(exc):
                    return  # the namespace is gone, and with it the object the event was about
                if is_conflict(exc):
                    # Another attempt created it in between; the retry counts this occurrence.
                    raise ApplicationError(
                        f"Event {namespace}/{name} was created concurrently", type=CONFLICT_ERROR
                    ) from None
                raise activity_error(exc, f"create Event {namespace}/{name}") from None
            return
        patch = {
            "metadata": {"resourceVersion": existing.metadata.resource_version},
            "count": (existing.count or 1) + 1,
            "lastTimestamp": format_kube_time(now),
        }
        try:
            await self._core.patch_namespaced_event(name, namespace, patch, **MERGE_PATCH)
        except ApiException as exc:
            if is_not_found(exc):
                # Expired (events have a TTL) between the read and the write: the retry creates it.
                raise ApplicationError(
                    f"Event {namespace}/{name} expired while being updated", type=CONFLICT_ERROR
                ) from None
            raise activity_error(exc, f"update Event {namespace}/{name}") from None
