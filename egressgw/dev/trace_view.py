"""`egressgw dev trace NAMESPACE/NAME`: a configuration's trace from the stack's Jaeger
(`dev up --traces`), printed as a tree, with the address of the same trace on the trace page
that Jaeger's query port serves (sim/jaeger/ui).

The trace shown is the one of the reconcile that started the configuration's workflow: Temporal's
tracing interceptor parents every span of a workflow on the call that started it, so later passes
(new generations, drift checks, node changes) add their activities and Azure calls to that same
trace. Each later reconcile by the watcher is also a (small) trace of its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from contracts import kube_names
from contracts.workflow_io import GATEWAY_CONFIG_WORKFLOW
from egressgw.dev.layout import DevStackError, StatePaths

CONTROLLER_SERVICE = "egressgw-controller"


def _query_url(paths: StatePaths) -> str:
    try:
        document = json.loads(paths.endpoints.read_text())
    except (OSError, ValueError):
        raise DevStackError(f"no dev stack has run from {paths.root}") from None
    query = document.get("jaeger_query_url")
    if not query or not document.get("jaeger_pid"):
        raise DevStackError(
            "the dev stack runs without traces; start it with: egressgw dev up --traces"
        )
    return str(query)


async def print_trace(state_dir: Path, configuration: str, out: TextIO, max_lines: int) -> int:
    from sim.jaeger.query import find_traces, get_trace, trace_tree

    namespace, sep, name = configuration.partition("/")
    if not sep or not namespace or not name:
        raise ValueError(f"expected NAMESPACE/NAME, got {configuration!r}")
    query = _query_url(StatePaths(state_dir))
    found = await find_traces(
        query,
        CONTROLLER_SERVICE,
        {"egressgw.object": configuration, "egressgw.kind": kube_names.SGC_KIND},
        limit=100,
    )
    starting = [t for t in found if f"RunWorkflow:{GATEWAY_CONFIG_WORKFLOW}" in t.names()]
    if not starting:
        print(
            f"no trace of {configuration} yet: apply it, or wait a second for the spans "
            f"(query API {query}/api/traces?service={CONTROLLER_SERVICE})",
            file=out,
        )
        return 1
    trace = await get_trace(query, starting[0].trace_id) or starting[0]
    print(
        f"trace {trace.trace_id} of {configuration}: {len(trace.spans)} spans from "
        f"{', '.join(sorted(trace.services()))}",
        file=out,
    )
    print(f"  {query}/?config={configuration}#trace={trace.trace_id}", file=out)
    print("  start         duration      service                span", file=out)
    for line in trace_tree(trace, max_lines=max_lines):
        print(line, file=out)
    others = len(found) - len(starting)
    if others:
        print(
            f"({others} later reconciles of {configuration} are traces of their own; their "
            "workflow work is in the tree above)",
            file=out,
        )
    return 0
