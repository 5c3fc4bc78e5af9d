"""ARM calls by operation and status on the controller's /metrics.

An azure-core pipeline policy placed after the retry and rate limit policies of the controller's
management clients (egressgw/azure_credential.py): it sees every HTTP request that leaves the
process, long-running operation polls included, and times it until ARM answered.
"""

from __future__ import annotations

import time
from typing import Final
from urllib.parse import urlsplit

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy
from azure.core.rest import AsyncHttpResponse, HttpRequest
from prometheus_client import CollectorRegistry

from contracts import metric_catalog as catalog
from egressgw import prometheus_catalog
from egressgw.http_operations import arm_operation

NO_ANSWER: Final = "error"  # the status label when the request got no HTTP answer


class ArmRequestMetrics(AsyncHTTPPolicy[HttpRequest, AsyncHttpResponse]):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._requests = prometheus_catalog.counter(catalog.ARM_REQUESTS, registry)
        self._duration = prometheus_catalog.histogram(catalog.ARM_REQUEST_DURATION, registry)

    async def send(
        self, request: PipelineRequest[HttpRequest]
    ) -> PipelineResponse[HttpRequest, AsyncHttpResponse]:
        http = request.http_request
        operation = arm_operation(http.method, urlsplit(http.url).path)
        started = time.monotonic()
        status = NO_ANSWER
        try:
            response = await self.next.send(request)
            status = str(response.http_response.status_code)
            return response
        finally:
            self._requests.labels(operation, status).inc()
            self._duration.labels(operation).observe(time.monotonic() - started)
