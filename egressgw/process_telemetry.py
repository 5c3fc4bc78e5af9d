"""What one long-running process exports, started and stopped together: its /metrics server
(with Temporal's metric buffer drained in the background) and its tracing.

Each process builds its registry in a module of its own (egressgw/controller_metrics.py,
agent_metrics.py, cni_manager_metrics.py) and hands it here with the listen address and the
tracing settings it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from egressgw.listen_address import ListenAddress
from egressgw.metrics_server import METRICS_PATH, MetricsServer
from egressgw.temporal_metrics import TemporalMetrics
from egressgw.tracing import Tracing, TracingSettings, start_tracing

if TYPE_CHECKING:
    from temporalio.client import Interceptor
    from temporalio.runtime import Runtime

log = logging.getLogger(__name__)


class ProcessTelemetry:
    def __init__(
        self,
        address: ListenAddress | None,
        registry: CollectorRegistry | None,
        temporal: TemporalMetrics | None = None,
    ) -> None:
        """`address` None: no /metrics (and the registry is not served)."""
        self._server = (
            MetricsServer(address, registry)
            if address is not None and registry is not None
            else None
        )
        self.temporal = temporal
        self.tracing: Tracing | None = None
        self._stop = asyncio.Event()
        self._drain: asyncio.Task[None] | None = None

    @property
    def runtime(self) -> Runtime | None:
        """The Temporal runtime to connect with, so that its metrics reach /metrics."""
        return self.temporal.runtime if self.temporal is not None else None

    @property
    def interceptors(self) -> Sequence[Interceptor]:
        return [self.tracing.interceptor] if self.tracing is not None else []

    async def start(
        self,
        tracing: TracingSettings | None,
        service_name: str,
        attributes: Mapping[str, str],
    ) -> None:
        self.tracing = start_tracing(tracing, service_name, attributes)
        if self._server is not None:
            await self._server.start()
            log.info("metrics on port %d: %s", self._server.port, METRICS_PATH)
        if self.temporal is not None:
            self._drain = asyncio.create_task(
                self.temporal.drain_until(self._stop), name="temporal metrics"
            )

    async def stop(self) -> None:
        self._stop.set()
        if self._drain is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
        if self._server is not None:
            await self._server.stop()
        tracing, self.tracing = self.tracing, None
        if tracing is not None:
            await asyncio.to_thread(tracing.shutdown)
