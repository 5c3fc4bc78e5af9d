"""PodEndpoints → `peers_changed` to the configuration each one names.

The configuration's workflow re-lists its PodEndpoints and brings its gateways' peers in line, so
this watcher sends no payload and a repeated or lost-then-relisted event only costs one re-list.
A PodEndpoint that moves to another configuration tells both. A configuration without a running
workflow has no gateways yet: nothing to tell (its first pass lists the peers anyway).

Signals are coalesced per configuration (watchers/coalesced_signals.py): the handler only marks
the configurations to tell, so a burst of pods neither holds up the watch nor floods a workflow's
history with one signal per pod.

What the watch brings also fills an ObjectCache (kubeclient/object_cache.py) when one is given:
the peer passes of the workflows read their PodEndpoints from it (activities/kube/pod_endpoints.
py) instead of listing them from the API server on every pass. Each event is in the cache before
its signal goes out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from kubernetes_asyncio.client import ApiClient, CustomObjectsApi
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from contracts import kube_names, resource_names
from contracts.workflow_io import PEERS_CHANGED
from kubeclient.kube_source import KubeListWatch
from kubeclient.list_watch import ListWatchSource, RawObject, WatchEvent, object_key
from kubeclient.object_cache import CachingSource, ObjectCache
from watchers.coalesced_signals import DEFAULT_SPACING_SECONDS, CoalescedSignals

log = logging.getLogger(__name__)


def configuration_of(obj: RawObject) -> str | None:
    """`<namespace>/<sgc name>` a PodEndpoint names, or None when it names none."""
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    namespace = metadata.get("namespace")
    name = spec.get("staticGatewayConfiguration") if isinstance(spec, Mapping) else None
    if not isinstance(namespace, str) or not isinstance(name, str) or not namespace or not name:
        return None
    return f"{namespace}/{name}"


def peer_changes(
    configurations: Mapping[str, str], event: WatchEvent
) -> tuple[dict[str, str], tuple[str, ...]]:
    """PodEndpoint key → configuration after `event`, and the configurations to tell."""
    key = object_key(event.object)
    before = configurations.get(key)
    after = None if event.type == "DELETED" else configuration_of(event.object)
    updated = dict(configurations)
    if after is None:
        updated.pop(key, None)
    else:
        updated[key] = after
    return updated, tuple(dict.fromkeys(c for c in (before, after) if c is not None))


def metadata_and_spec(obj: RawObject) -> RawObject:
    """What the watcher and the cache keep of a PodEndpoint: no status, no managed fields."""
    kept = {key: obj[key] for key in ("apiVersion", "kind", "metadata", "spec") if key in obj}
    metadata = kept.get("metadata")
    if isinstance(metadata, Mapping) and "managedFields" in metadata:
        kept["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return kept


class PodEndpointWatcher:
    def __init__(
        self,
        api_client: ApiClient,
        temporal: Client,
        *,
        signal_spacing: float = DEFAULT_SPACING_SECONDS,
        cache: ObjectCache | None = None,
    ) -> None:
        self._custom = CustomObjectsApi(api_client)
        self._temporal = temporal
        self._configurations: dict[str, str] = {}
        self.signals = CoalescedSignals(self._signal, spacing=signal_spacing)
        self._cache = cache

    def source(self) -> ListWatchSource:
        source = KubeListWatch(
            self._custom.list_cluster_custom_object,
            kube_names.API_GROUP,
            kube_names.API_VERSION,
            kube_names.POD_ENDPOINT_PLURAL,
            keep=metadata_and_spec,
        )
        return source if self._cache is None else CachingSource(source, self._cache)

    async def handle(self, event: WatchEvent) -> None:
        if self._cache is not None:
            self._cache.apply(event)
        self._configurations, changed = peer_changes(self._configurations, event)
        for configuration in changed:
            log.debug(
                "PodEndpoint %s changed the peers of %s", object_key(event.object), configuration
            )
            self.signals.mark(configuration)

    async def close(self) -> None:
        await self.signals.close()

    async def _signal(self, configuration: str) -> None:
        namespace, name = configuration.split("/", 1)
        workflow_id = resource_names.gateway_config_workflow_id(namespace, name)
        try:
            await self._temporal.get_workflow_handle(workflow_id).signal(PEERS_CHANGED)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                log.debug(
                    "no running workflow for %s: its peers are listed when it starts", configuration
                )
                return
            raise
        log.info("told %s that its peers changed", configuration)
