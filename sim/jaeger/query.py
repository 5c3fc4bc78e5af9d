"""Jaeger's query API (the v1 JSON API its web UI uses): find traces by service and span tags,
fetch one, and print it as an indented tree of spans with their durations and services."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Span:
    span_id: str
    parent_id: str  # "" for a root
    name: str
    service: str
    start_us: int
    duration_us: int
    tags: Mapping[str, Any]


@dataclass(frozen=True)
class Trace:
    trace_id: str
    spans: tuple[Span, ...]

    def services(self) -> set[str]:
        return {span.service for span in self.spans}

    def names(self) -> list[str]:
        return [span.name for span in self.spans]


def parse_trace(raw: Mapping[str, Any]) -> Trace:
    processes = {
        key: str(value.get("serviceName", ""))
        for key, value in (raw.get("processes") or {}).items()
    }
    spans = []
    for span in raw.get("spans") or []:
        parents = [
            ref["spanID"]
            for ref in span.get("references") or []
            if ref.get("refType") == "CHILD_OF" and ref.get("traceID") == span.get("traceID")
        ]
        spans.append(
            Span(
                span_id=str(span["spanID"]),
                parent_id=str(parents[0]) if parents else "",
                name=str(span.get("operationName", "")),
                service=processes.get(str(span.get("processID", "")), ""),
                start_us=int(span.get("startTime", 0)),
                duration_us=int(span.get("duration", 0)),
                tags={str(t["key"]): t.get("value") for t in span.get("tags") or []},
            )
        )
    return Trace(trace_id=str(raw.get("traceID", "")), spans=tuple(spans))


async def _get(url: str, params: Mapping[str, str] | None = None) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as answer:
        answer.raise_for_status()
        return await answer.json()


async def find_traces(
    query_url: str,
    service: str,
    tags: Mapping[str, str] | None = None,
    *,
    limit: int = 20,
    lookback: str = "2h",
) -> list[Trace]:
    """Traces with a span of `service` that carries every tag in `tags`."""
    params = {"service": service, "limit": str(limit), "lookback": lookback}
    if tags:
        params["tags"] = json.dumps(dict(tags))
    found = await _get(f"{query_url}/api/traces", params)
    return [parse_trace(raw) for raw in found.get("data") or []]


async def get_trace(query_url: str, trace_id: str) -> Trace | None:
    found = await _get(f"{query_url}/api/traces/{trace_id}")
    data = found.get("data") or []
    return parse_trace(data[0]) if data else None


def trace_tree(trace: Trace, *, max_lines: int = 400) -> list[str]:
    """One line per span, children under their parent in start order:
    `+  12.3 ms  1.5 ms  egressgw-controller  reconcile StaticGatewayConfiguration`
    (start after the trace's first span, duration, service, name)."""
    if not trace.spans:
        return []
    known = {span.span_id for span in trace.spans}
    children: dict[str, list[Span]] = {}
    for span in trace.spans:
        parent = span.parent_id if span.parent_id in known else ""
        children.setdefault(parent, []).append(span)
    for group in children.values():
        group.sort(key=lambda s: (s.start_us, s.name))
    origin = min(span.start_us for span in trace.spans)
    lines: list[str] = []

    def walk(spans: Sequence[Span], depth: int) -> None:
        for span in spans:
            if len(lines) >= max_lines:
                return
            lines.append(
                f"+{(span.start_us - origin) / 1000:9.1f} ms {span.duration_us / 1000:9.1f} ms  "
                f"{span.service:<22} {'  ' * depth}{span.name}"
            )
            walk(children.get(span.span_id, []), depth + 1)

    walk(children.get("", []), 0)
    if len(lines) >= max_lines:
        lines.append(f"... ({len(trace.spans)} spans in all)")
    return lines
