"""The pure parts of metrics and tracing: what an HTTP call is called (metric labels, span
names), when the OTEL_* variables turn tracing on, which metric names the catalog allows, and
how Jaeger's answer is printed."""

from __future__ import annotations

import pytest

from contracts import metric_catalog as catalog
from egressgw.http_operations import (
    arm_operation,
    http_span_name,
    kube_operation,
    without_query,
)
from egressgw.tracing import GRPC, HTTP_PROTOBUF, TracingSettings, tracing_settings
from sim.jaeger.query import parse_trace, trace_tree

SUB = "/subscriptions/9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b"


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        (
            "put",
            f"{SUB}/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/kubeegressgateway-ilb",
            "PUT Microsoft.Network/loadBalancers",
        ),
        (
            "GET",
            f"{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss"
            "/virtualMachines/3/networkInterfaces/nic",
            "GET Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces",
        ),
        (
            "GET",
            f"{SUB}/providers/Microsoft.Network/locations/westeurope/operations/abc-123",
            "GET Microsoft.Network/locations/operations",
        ),
        (
            "GET",
            f"{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets",
            "GET Microsoft.Compute/virtualMachineScaleSets",
        ),
        (
            "POST",
            f"{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/v"
            "/manualupgrade",
            "POST Microsoft.Compute/virtualMachineScaleSets/manualupgrade",
        ),
        ("GET", f"{SUB}/resourceGroups/rg", "GET subscriptions/resourceGroups"),
        ("GET", "/metadata/instance", "GET other"),
    ],
)
def test_an_arm_call_is_named_by_method_and_resource_type_never_by_name(
    method: str, path: str, operation: str
) -> None:
    assert arm_operation(method, path) == operation


@pytest.mark.parametrize(
    ("method", "path", "query", "operation"),
    [
        ("GET", "/api/v1/namespaces/egressgw-system/secrets/sgw-1234", "", "GET secrets"),
        (
            "PATCH",
            "/apis/egressgateway.kubernetes.azure.com/v1alpha1/namespaces/demo/"
            "staticgatewayconfigurations/public-egress/status",
            "",
            "PATCH staticgatewayconfigurations/status",
        ),
        ("GET", "/api/v1/nodes", "labelSelector=x&watch=true", "WATCH nodes"),
        ("GET", "/api/v1/namespaces/demo", "", "GET namespaces"),
        ("POST", "/api/v1/namespaces/demo/events", "", "POST events"),
        ("GET", "/version", "", "GET other"),
    ],
)
def test_a_kubernetes_call_is_named_by_verb_and_resource(
    method: str, path: str, query: str, operation: str
) -> None:
    assert kube_operation(method, path, query) == operation


def test_span_names_and_urls_keep_nothing_a_url_may_carry() -> None:
    arm = f"https://management.azure.com{SUB}/resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/p?api-version=2024-05-01"
    assert http_span_name("PUT", arm) == "ARM PUT Microsoft.Network/publicIPPrefixes"
    assert http_span_name("GET", "https://10.0.0.1:6443/api/v1/pods?watch=1") == "kube WATCH pods"
    token = "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"
    assert http_span_name("POST", token) == "identity POST token"
    assert http_span_name("GET", "http://169.254.169.254/metadata/instance") == "HTTP GET"
    assert (
        without_query("https://user:pw@example.org:8443/a/b?sig=secret&x=1")
        == "https://example.org:8443/a/b"
    )
    assert without_query("http://[::1]:80/p?q") == "http://[::1]:80/p"


def test_tracing_is_on_only_when_the_otel_variables_ask_for_it() -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert tracing_settings({}) is None  # nothing said: no exporter sending into the void
    assert tracing_settings(endpoint) == TracingSettings(HTTP_PROTOBUF)
    assert tracing_settings({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://h:4318/v1/traces"})
    assert tracing_settings({"OTEL_TRACES_EXPORTER": "otlp"}) == TracingSettings(HTTP_PROTOBUF)
    assert tracing_settings({**endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == (
        TracingSettings(GRPC)
    )
    assert tracing_settings(
        {
            **endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        }
    ) == TracingSettings(HTTP_PROTOBUF)
    assert tracing_settings({**endpoint, "OTEL_TRACES_EXPORTER": "none"}) is None
    assert tracing_settings({**endpoint, "OTEL_SDK_DISABLED": "true"}) is None


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h",
                "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST": "authorization",
            },
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST",
        ),
    ],
)
def test_otel_variables_it_cannot_follow_are_refused_by_name(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        tracing_settings(environ)


def test_the_catalog_keeps_names_unique_upstreams_where_it_has_them_and_labels_bounded() -> None:
    specs = [value for value in vars(catalog).values() if isinstance(value, catalog.MetricSpec)]
    names = [spec.name for spec in specs]
    assert len(names) == len(set(names))
    assert {
        "controller_reconcile_latency",
        "controller_reconcile_fail_count",
        "cnimanager_podendpoint_operation_failures_total",
        "cnimanager_cni_config_operation_failures_total",
        "cnimanager_node_taint_operation_failures_total",
    } <= set(names)
    assert catalog.RECONCILE_LATENCY.buckets[-1] == 1200
    for spec in specs:
        if spec.kind is catalog.MetricKind.HISTOGRAM:
            assert list(spec.buckets) == sorted(spec.buckets) and spec.buckets
        # A pod as a label only where kube-egress-gateway has one.
        assert "pod" not in spec.labels or spec is catalog.PODENDPOINT_FAILURES


def test_a_trace_prints_as_a_tree_in_start_order() -> None:
    raw = {
        "traceID": "t1",
        "processes": {
            "p1": {"serviceName": "egressgw-controller"},
            "p2": {"serviceName": "egressgw-agent"},
        },
        "spans": [
            {"traceID": "t1", "spanID": "c", "operationName": "RunActivity:a", "processID": "p2",
             "startTime": 3000, "duration": 500,
             "references": [{"refType": "CHILD_OF", "traceID": "t1", "spanID": "b"}]},
            {"traceID": "t1", "spanID": "a", "operationName": "reconcile X", "processID": "p1",
             "startTime": 1000, "duration": 9000, "references": []},
            {"traceID": "t1", "spanID": "b", "operationName": "StartActivity:a", "processID": "p1",
             "startTime": 2000, "duration": 0,
             "references": [{"refType": "CHILD_OF", "traceID": "t1", "spanID": "a"}]},
            {"traceID": "t1", "spanID": "d", "operationName": "orphan", "processID": "p1",
             "startTime": 1500, "duration": 1,
             "references": [{"refType": "CHILD_OF", "traceID": "t1", "spanID": "gone"}]},
        ],
    }  # fmt: skip
    trace = parse_trace(raw)
    assert trace.services() == {"egressgw-controller", "egressgw-agent"}
    lines = trace_tree(trace)
    assert [line.split("  ")[-1].strip() for line in lines] == [
        "reconcile X",
        "StartActivity:a",
        "RunActivity:a",
        "orphan",  # its parent never arrived: shown at the top level
    ]
    assert lines[2].startswith("+      2.0 ms       0.5 ms  egressgw-agent")
    assert "    RunActivity:a" in lines[2]
    assert trace_tree(trace, max_lines=2)[-1] == "... (4 spans in all)"
