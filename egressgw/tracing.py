"""OpenTelemetry traces, exported over OTLP when the standard `OTEL_*` variables say so.

Tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set or
`OTEL_TRACES_EXPORTER=otlp`, and `OTEL_SDK_DISABLED` is not `true`; `OTEL_TRACES_EXPORTER=none`
turns it off. The protocol is `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`, `http/protobuf` (default) or
`grpc`. Everything else the SDK reads itself: endpoint, headers, timeout, certificates
(`OTEL_EXPORTER_OTLP_*`), batching (`OTEL_BSP_*`), sampling (`OTEL_TRACES_SAMPLER`), the service
name and resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`).

What becomes a span: each watcher reconcile (watchers/supervisor.py); Temporal's client calls,
workflows and activities (Temporal's `TracingInterceptor` on the client, so on every worker built
from it); and every HTTP request of the aiohttp clients, which is every ARM and Kubernetes API
call, named by http_operations.http_span_name. Span attributes carry IDs and names, never a
payload: URLs lose their query string, and HTTP headers (they carry tokens) are never recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.client import Interceptor

log = logging.getLogger(__name__)

HTTP_PROTOBUF: Final = "http/protobuf"
GRPC: Final = "grpc"
# Variables that would copy HTTP headers into spans; ours carry bearer tokens.
HEADER_CAPTURE_VARIABLES: Final = (
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE",
)
# How long a stopping process waits for its last spans to leave.
SHUTDOWN_TIMEOUT_MILLIS: Final = 5000


@dataclass(frozen=True)
class TracingSettings:
    protocol: str  # HTTP_PROTOBUF or GRPC


def tracing_settings(environ: Mapping[str, str]) -> TracingSettings | None:
    """Whether to trace, from the OTEL_* variables; ValueError names a variable it cannot
    follow."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if exporter == "none":
        return None
    if exporter not in ("", "otlp"):
        raise ValueError(f"OTEL_TRACES_EXPORTER={exporter!r}: egressgw exports traces over otlp")
    if not exporter and not endpoint:
        # The specification's default would send to localhost:4318 whether or not anything
        # listens there: without a word from the operator, no tracing.
        return None
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or HTTP_PROTOBUF
    ).strip()
    if protocol not in (HTTP_PROTOBUF, GRPC):
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use {HTTP_PROTOBUF} or {GRPC}")
    for variable in HEADER_CAPTURE_VARIABLES:
        if environ.get(variable):
            raise ValueError(
                f"{variable} is set: egressgw never records HTTP headers in spans (they carry "
                "the Kubernetes and Azure tokens); unset it"
            )
    return TracingSettings(protocol=protocol)


def _rename_http_span(span: Any, params: Any) -> None:
    from egressgw.http_operations import http_span_name

    if span is not None and span.is_recording():
        span.update_name(http_span_name(str(params.method), str(params.url)))


def _url_without_query(url: Any) -> str:
    from egressgw.http_operations import without_query

    return without_query(str(url))


class Tracing:
    """The process's tracer provider with its OTLP exporter, the aiohttp client instrumentation,
    and `interceptor` for Temporal clients. Start it before any client is made: the aiohttp
    sessions made earlier are not traced."""

    def __init__(
        self, settings: TracingSettings, service_name: str, attributes: Mapping[str, str]
    ) -> None:
        import os

        from opentelemetry import trace
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from temporalio.contrib.opentelemetry import TracingInterceptor

        named = bool(os.environ.get("OTEL_SERVICE_NAME")) or "service.name=" in os.environ.get(
            "OTEL_RESOURCE_ATTRIBUTES", ""
        )
        ours = dict(attributes) if named else {SERVICE_NAME: service_name, **attributes}
        self.resource = Resource.create(ours)
        self.provider: TracerProvider = TracerProvider(resource=self.resource)
        self.provider.add_span_processor(BatchSpanProcessor(_exporter(settings)))
        trace.set_tracer_provider(self.provider)
        self._instrumentor = AioHttpClientInstrumentor()
        self._instrumentor.instrument(
            tracer_provider=self.provider,
            request_hook=_rename_http_span,
            url_filter=_url_without_query,
        )
        self.interceptor: Interceptor = TracingInterceptor(self.provider.get_tracer("egressgw"))
        self.service_name = str(self.resource.attributes.get(SERVICE_NAME, service_name))

    def shutdown(self) -> None:
        """Send what is still buffered (bounded wait), then stop exporting."""
        self.provider.force_flush(SHUTDOWN_TIMEOUT_MILLIS)
        self.provider.shutdown()
        self._instrumentor.uninstrument()


def _exporter(settings: TracingSettings) -> Any:
    if settings.protocol == GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter()


def start_tracing(
    settings: TracingSettings | None, service_name: str, attributes: Mapping[str, str]
) -> Tracing | None:
    """Tracing as `settings` ask (None: off), announced in the log without the endpoint's
    headers."""
    if settings is None:
        return None
    tracing = Tracing(settings, service_name, attributes)
    log.info("tracing on: OTLP over %s as service %s", settings.protocol, tracing.service_name)
    return tracing
