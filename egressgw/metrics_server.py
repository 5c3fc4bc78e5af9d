"""`/metrics` in the Prometheus text format, one registry per process.

Each process (controller, agent, CNI manager) keeps its own `CollectorRegistry` rather than
prometheus_client's global one, so nothing a library registers globally leaks in and two
processes' metrics never mix in one interpreter (tests run several).
"""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest

from egressgw.listen_address import ListenAddress
from egressgw.telemetry import PlainHttpServer

METRICS_PATH: Final = "/metrics"
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# No `<name>_created` series beside every counter: kube-egress-gateway's Go client exposes none,
# and they double what a scrape carries.
disable_created_metrics()  # type: ignore[no-untyped-call]


class MetricsServer(PlainHttpServer):
    def __init__(self, address: ListenAddress, registry: CollectorRegistry) -> None:
        super().__init__(address)
        self.registry = registry

    def routes(self, app: web.Application) -> None:
        app.router.add_get(METRICS_PATH, self._metrics)

    async def _metrics(self, _request: web.Request) -> web.Response:
        # Collecting drains Temporal's metric buffer: off the event loop, it may take a while.
        body = await asyncio.to_thread(generate_latest, self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
