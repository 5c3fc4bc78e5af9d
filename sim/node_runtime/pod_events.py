"""Events the runtime records on pods (core/v1, source component `kubelet` as kubectl describe
shows them): FailedCreatePodSandBox, Failed, BackOff, Started, Killing, ..."""

from __future__ import annotations

import datetime
import logging
import uuid
from typing import Any

from sim.node_runtime.api_client import ApiClient, ApiError
from sim.node_runtime.node_object import rfc3339

log = logging.getLogger(__name__)
Json = dict[str, Any]


def pod_event(
    pod: Json,
    node_name: str,
    kind: str,
    reason: str,
    message: str,
    now: datetime.datetime,
    field_path: str = "",
) -> Json:
    meta = pod["metadata"]
    involved: Json = {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
    }
    if field_path:
        involved["fieldPath"] = field_path
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
            "namespace": meta["namespace"],
        },
        "involvedObject": involved,
        "reason": reason,
        "message": message[:1024],
        "type": kind,
        "source": {"component": "kubelet", "host": node_name},
        "reportingComponent": "kubelet",
        "reportingInstance": node_name,
        "firstTimestamp": rfc3339(now),
        "lastTimestamp": rfc3339(now),
        "count": 1,
    }


class EventRecorder:
    def __init__(self, api: ApiClient, node_name: str) -> None:
        self.api = api
        self.node_name = node_name

    async def record(
        self, pod: Json, kind: str, reason: str, message: str, field_path: str = ""
    ) -> None:
        """Best effort: an event that cannot be posted is logged, never raised."""
        now = datetime.datetime.now(datetime.UTC)
        body = pod_event(pod, self.node_name, kind, reason, message, now, field_path)
        namespace = pod["metadata"]["namespace"]
        try:
            await self.api.create(f"/api/v1/namespaces/{namespace}/events", body)
        except ApiError as err:
            log.warning(
                "event %s on %s/%s not recorded: %s",
                reason,
                namespace,
                pod["metadata"]["name"],
                err,
            )
