"""Traces as an operator gets them: `egressgw controller` started with the standard OTEL_*
variables pointing at a real OTLP receiver (Jaeger v2, tests/fixtures/trace_receiver.py). One
configuration's provisioning is one trace that links the controller's reconcile, the workflow,
its activities and their Azure and Kubernetes HTTP calls, with no secret in any span."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client import CoreV1Api

from contracts import kube_names, resource_names
from sim.jaeger.query import Span, Trace, find_traces, get_trace, trace_tree
from sim.jaeger.server import Jaeger
from tests.fixtures.controller_stack import ControllerStack
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow

SERVICE = "egressgw-controller"
RECONCILE = f"reconcile {kube_names.SGC_KIND}"
EXPECTED = (
    RECONCILE,
    "SignalWithStartWorkflow:GatewayConfigWorkflow",
    "RunWorkflow:GatewayConfigWorkflow",
    "StartActivity:ensure_gateway_key",
    "RunActivity:ensure_gateway_key",
    "RunActivity:resolve_gateway_pool",
    "RunActivity:ensure_load_balancer_rule",
    "RunWorkflow:LoadBalancerWorkflow",
    "RunActivity:apply_load_balancer",
    "RunActivity:update_sgc_status",
    "ARM GET Microsoft.Compute/virtualMachineScaleSets",
    "ARM PUT Microsoft.Network/loadBalancers",
    "kube GET secrets",
)


def ancestors(trace: Trace, span: Span) -> list[Span]:
    by_id = {s.span_id: s for s in trace.spans}
    chain, current = [], by_id.get(span.parent_id)
    while current is not None:
        chain.append(current)
        current = by_id.get(current.parent_id)
    return chain


def named(trace: Trace, name: str) -> Span:
    spans = [s for s in trace.spans if s.name == name]
    assert spans, f"no span {name!r} in:\n" + "\n".join(trace_tree(trace))
    return spans[0]


async def provisioning_trace(jaeger: Jaeger, sgc: str) -> Trace:
    """The trace of the reconcile that started the configuration's workflow, once it holds every
    span EXPECTED (spans of a trace arrive as their processes finish them)."""
    found: dict[str, Trace] = {}

    async def complete() -> bool:
        traces = await find_traces(
            jaeger.query_url,
            SERVICE,
            {"egressgw.object": sgc, "egressgw.kind": kube_names.SGC_KIND},
        )
        starting = [t for t in traces if "RunWorkflow:GatewayConfigWorkflow" in t.names()]
        if not starting:
            return False
        trace = await get_trace(jaeger.query_url, starting[0].trace_id)
        if trace is None:
            return False
        found["trace"] = trace
        return all(name in trace.names() for name in EXPECTED)

    try:
        await wait_for(complete, 120, f"the trace of {sgc}'s provisioning")
    except AssertionError as err:
        partial = found.get("trace")
        tree = "\n".join(trace_tree(partial)) if partial else "(no trace)"
        raise AssertionError(f"{err}\n{tree}") from None
    return found["trace"]


async def raw_trace(jaeger: Jaeger, trace_id: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{jaeger.query_url}/api/traces/{trace_id}") as answer,
    ):
        return await answer.text()


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_one_configuration_is_one_trace_from_reconcile_to_azure_calls(
    controller_stack: ControllerStack, jaeger: Jaeger, protocol: str
) -> None:
    stack = controller_stack
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(jaeger.otel_environment(grpc=protocol == "grpc"))
    await stack.start_controller(env=env)
    uid = await stack.create_sgc("traced")
    await stack.wait_ready("traced", timeout=120)

    trace = await provisioning_trace(jaeger, f"{stack.namespace}/traced")

    assert trace.services() == {SERVICE}
    reconcile = named(trace, RECONCILE)
    assert reconcile.parent_id == ""  # the trace starts at the change the watcher saw
    assert reconcile.tags["egressgw.event"] == "ADDED"
    assert reconcile.tags["k8s.object.uid"] == uid
    # Workflow, activity and HTTP call hang under the reconcile, through Temporal's headers
    # (a workflow's spans, RunWorkflow among them, are children of the call that started it).
    workflow = named(trace, "RunWorkflow:GatewayConfigWorkflow")
    assert [s.name for s in ancestors(trace, workflow)] == [
        "SignalWithStartWorkflow:GatewayConfigWorkflow",
        RECONCILE,
    ]
    chains = [
        [s.name for s in ancestors(trace, span)]
        for span in trace.spans
        if span.name == "ARM GET Microsoft.Compute/virtualMachineScaleSets"
    ]
    assert [
        "RunActivity:resolve_gateway_pool",
        "StartActivity:resolve_gateway_pool",
        "SignalWithStartWorkflow:GatewayConfigWorkflow",
        RECONCILE,
    ] in chains, chains
    # The load balancer's single writer is started from an activity: its PUT is in this trace.
    lb_put = named(trace, "ARM PUT Microsoft.Network/loadBalancers")
    lb_chain = [s.name for s in ancestors(trace, lb_put)]
    assert lb_chain[:4] == [
        "RunActivity:apply_load_balancer",
        "StartActivity:apply_load_balancer",
        "SignalWithStartWorkflow:LoadBalancerWorkflow",
        "RunActivity:ensure_load_balancer_rule",
    ]
    status_code = lb_put.tags.get("http.status_code", lb_put.tags.get("http.response.status_code"))
    assert str(status_code).startswith("2")

    # No secret in any span: not the gateway's WireGuard private key, not the Azure client
    # secret, and no URL keeps a query string.
    secret = await CoreV1Api(stack.kube).read_namespaced_secret(
        resource_names.gateway_secret_name(uid), stack.secret_namespace
    )
    private_key = base64.b64decode(secret.data[kube_names.SECRET_PRIVATE_KEY]).decode()
    client_secret = json.loads(stack.cloud_config.read_text())["aadClientSecret"]
    text = await raw_trace(jaeger, trace.trace_id)
    assert private_key not in text
    assert client_secret not in text
    urls: list[Any] = [
        value for span in trace.spans for key, value in span.tags.items() if "url" in key
    ]
    assert urls and all("?" not in str(url) for url in urls)
