"""`Watchers`: the controller process's watch loops, started and stopped together.

Each loop feeds list_then_watch events to its handler one at a time. A handler that fails on an
API or Temporal error is retried on the same event with backoff (the watch simply waits), so no
change is skipped while the API server or Temporal is away. Anything else ends the loop's
current watch, is logged with its traceback, and the loop relists after a backoff: one bad
object or a bug in a handler never stops the controller from watching.

Handling one event is a reconcile: it is one span, `reconcile <Kind>` (a no-op unless the
process traces, egressgw/tracing.py), the parent of the Temporal and Kubernetes calls it makes,
so a configuration's trace starts at the change that the watcher saw.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from types import TracebackType

from kubernetes_asyncio.client import ApiClient
from opentelemetry import trace
from opentelemetry.trace import Span
from temporalio.client import Client
from temporalio.service import RPCError

from contracts import kube_names
from contracts.workflow_io import ControllerSettings
from kubeclient.errors import CLIENT_ERRORS, describe_failure
from kubeclient.list_watch import (
    ListWatchSource,
    WatchEvent,
    WatchSettings,
    list_then_watch,
    object_key,
)
from kubeclient.object_cache import ObjectCache
from watchers.node_watcher import NodeWatcher
from watchers.pod_endpoint_watcher import PodEndpointWatcher
from watchers.secret_watcher import SecretWatcher
from watchers.sgc_watcher import SgcWatcher

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

Handler = Callable[[WatchEvent], Awaitable[None]]
_TRANSIENT: tuple[type[BaseException], ...] = (*CLIENT_ERRORS, RPCError)


def describe_error(exc: BaseException) -> str:
    """One line for a log: never an ApiException's str, which dumps headers and bodies."""
    if isinstance(exc, RPCError):
        return f"Temporal {exc.status.name}: {exc.message}"
    return describe_failure(exc)


@dataclass(frozen=True)
class _Loop:
    name: str
    kind: str  # the watched objects' Kind, for span names
    source: Callable[[], ListWatchSource]
    handle: Handler


def reconcile_attributes(kind: str, event: WatchEvent) -> dict[str, str]:
    """A reconcile span's attributes: what changed and how; names only, never the object."""
    metadata = event.object.get("metadata") or {}
    return {
        "egressgw.kind": kind,
        "egressgw.object": object_key(event.object),
        "egressgw.event": str(event.type),
        "k8s.object.uid": str(metadata.get("uid") or ""),
        "k8s.object.generation": str(metadata.get("generation") or ""),
    }


class Watchers:
    def __init__(
        self,
        api_client: ApiClient,
        temporal: Client,
        settings: ControllerSettings,
        *,
        watch_settings: WatchSettings | None = None,
        pod_endpoint_cache: ObjectCache | None = None,
    ) -> None:
        """`pod_endpoint_cache`: filled by the PodEndpoint watch, for the activities of the same
        process (activities/kube/pod_endpoints.py)."""
        self._watch = watch_settings or WatchSettings()
        sgcs = SgcWatcher(api_client, temporal, settings)
        nodes = NodeWatcher(api_client, temporal)
        secrets = SecretWatcher(api_client, temporal, settings)
        pod_endpoints = PodEndpointWatcher(api_client, temporal, cache=pod_endpoint_cache)
        self._pod_endpoints = pod_endpoints
        self._loops = (
            _Loop(
                "staticgatewayconfigurations",
                kube_names.SGC_KIND,
                sgcs.source,
                sgcs.handle,
            ),
            _Loop("gateway nodes", "Node", nodes.source, nodes.handle),
            _Loop("key secrets", "Secret", secrets.source, secrets.handle),
            _Loop(
                "pod endpoints",
                kube_names.POD_ENDPOINT_KIND,
                pod_endpoints.source,
                pod_endpoints.handle,
            ),
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self._tasks:
            raise RuntimeError("watchers already started")
        self._tasks = [
            asyncio.create_task(self._run(loop), name=f"watch {loop.name}") for loop in self._loops
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._pod_endpoints.close()  # its coalesced signals still on their way

    async def __aenter__(self) -> Watchers:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run(self, loop: _Loop) -> None:
        failures = 0
        while True:
            try:
                async with aclosing(list_then_watch(loop.source(), self._watch)) as events:
                    async for event in events:
                        await self._handle(loop, event)
                        failures = 0
            except Exception:
                failures += 1
                log.exception("watching %s failed; restarting (attempt %d)", loop.name, failures)
                await asyncio.sleep(self._watch.backoff(failures))

    async def _handle(self, loop: _Loop, event: WatchEvent) -> None:
        with _tracer.start_as_current_span(
            f"reconcile {loop.kind}", attributes=reconcile_attributes(loop.kind, event)
        ) as span:
            await self._handle_until_done(loop, event, span)

    async def _handle_until_done(self, loop: _Loop, event: WatchEvent, span: Span) -> None:
        failures = 0
        while True:
            try:
                await loop.handle(event)
                return
            except _TRANSIENT as exc:
                failures += 1
                span.add_event("retrying", {"attempt": failures, "error": describe_error(exc)})
                log.warning(
                    "%s: %s %s not handled yet (attempt %d): %s",
                    loop.name,
                    event.type,
                    object_key(event.object),
                    failures,
                    describe_error(exc),
                )
                await asyncio.sleep(self._watch.backoff(failures))
