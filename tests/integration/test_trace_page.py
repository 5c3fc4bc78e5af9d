"""The trace page `egressgw dev up --traces` serves on Jaeger's query port (sim/jaeger/ui), in
place of Jaeger's own web UI: the page and its scripts are served, and the script that lays a
trace out (static/trace-view.js, run here by node) puts a real stored trace's spans under their
parents in time order."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from sim.jaeger.server import UI_DIR, Jaeger
from tests.fixtures.waiting import wait_for

SERVICE = "trace-page-test"
VIEW_SCRIPT = UI_DIR / "static" / "trace-view.js"


def export_trace(jaeger: Jaeger) -> tuple[str, str]:
    """A reconcile whose workflow runs two activities (the later-named one first), and a span
    whose parent was never exported; the trace ID and the orphan's trace ID."""
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{jaeger.otlp_http_endpoint}/v1/traces"))
    )
    tracer = provider.get_tracer(__name__)
    with tracer.start_as_current_span("reconcile") as root:
        time.sleep(0.002)
        with tracer.start_as_current_span("RunWorkflow"):
            with tracer.start_as_current_span("RunActivity:b"):
                time.sleep(0.002)
            time.sleep(0.002)
            with tracer.start_as_current_span("RunActivity:a"):
                time.sleep(0.002)
    missing_parent = SpanContext(
        trace_id=0x5EED, span_id=0xABC, is_remote=True, trace_flags=TraceFlags(1)
    )
    with tracer.start_span(
        "orphan", context=trace.set_span_in_context(NonRecordingSpan(missing_parent))
    ):
        pass
    provider.shutdown()
    return f"{root.get_span_context().trace_id:032x}", f"{0x5EED:032x}"


async def stored(jaeger: Jaeger, trace_id: str, spans: int) -> dict[str, Any]:
    url = f"{jaeger.query_url}/api/traces/{trace_id}"
    found: dict[str, Any] = {}

    async def complete() -> bool:
        async with aiohttp.ClientSession() as session, session.get(url) as answer:
            if answer.status != 200:
                return False
            data = (await answer.json())["data"]
        if not data or len(data[0]["spans"]) < spans:
            return False
        found.update(data[0])
        return True

    await wait_for(complete, timeout=30, what=f"{spans} spans of trace {trace_id}")
    return found


def lay_out(raw: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node is missing: scripts/system-packages.sh installs nodejs"
    source = tmp_path / "trace.json"
    source.write_text(json.dumps(raw))
    program = (
        f"const v = require({json.dumps(str(VIEW_SCRIPT))}).TraceView;"
        f"const t = v.parseTrace(require({json.dumps(str(source))}));"
        "console.log(JSON.stringify({summary: v.summary(t), rows: v.waterfall(t).map(r => ("
        "{name: r.span.name, depth: r.depth, offset: r.offsetPercent, width: r.widthPercent}))}));"
    )
    done = subprocess.run([node, "-e", program], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def test_the_trace_page_is_served_in_place_of_jaegers_ui(jaeger: Jaeger) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{jaeger.query_url}/?config=default/sgc") as page:
            assert page.status == 200
            html = await page.text()
        for script in ("static/trace-view.js", "static/trace-ui.js", "static/trace-ui.css"):
            assert script in html
            async with session.get(f"{jaeger.query_url}/{script}") as asset:
                assert asset.status == 200, script
                assert (await asset.read()) == (UI_DIR / script).read_bytes()


async def test_the_page_lays_a_stored_trace_out_as_a_waterfall(
    jaeger: Jaeger, tmp_path: Path
) -> None:
    trace_id, orphan_trace_id = export_trace(jaeger)

    laid_out = lay_out(await stored(jaeger, trace_id, 4), tmp_path)

    rows = laid_out["rows"]
    assert [(r["name"], r["depth"]) for r in rows] == [
        ("reconcile", 0),
        ("RunWorkflow", 1),
        ("RunActivity:b", 2),
        ("RunActivity:a", 2),
    ]
    assert rows[0]["offset"] == 0 and rows[0]["width"] == pytest.approx(100)
    assert 0 < rows[1]["offset"] <= rows[2]["offset"] < rows[3]["offset"] < 100
    assert all(0 < r["width"] <= 100 for r in rows)
    assert laid_out["summary"] | {"start": 0, "duration": 0} == {
        "traceId": trace_id,
        "root": "reconcile",
        "start": 0,
        "duration": 0,
        "spans": 4,
        "services": [SERVICE],
        "errors": 0,
    }
    # A span whose parent never arrived is shown at the top, not dropped.
    orphan = lay_out(await stored(jaeger, orphan_trace_id, 1), tmp_path)
    assert [(r["name"], r["depth"]) for r in orphan["rows"]] == [("orphan", 0)]
