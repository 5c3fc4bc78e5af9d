// What the trace page shows, kept free of the page itself so that it can be checked on its own
// (node loads this file in the tests): Jaeger's v1 JSON trace into spans, and the spans into the
// rows of a waterfall, each child under its parent, ordered by start time.
(function (exported) {
  "use strict";

  function parseTrace(raw) {
    const services = {};
    for (const [key, process] of Object.entries(raw.processes || {})) {
      services[key] = process.serviceName || "";
    }
    const spans = (raw.spans || []).map((span) => {
      const parent = (span.references || []).find(
        (ref) => ref.refType === "CHILD_OF" && ref.traceID === span.traceID,
      );
      const tags = {};
      for (const tag of span.tags || []) tags[tag.key] = tag.value;
      return {
        spanId: span.spanID,
        parentId: parent ? parent.spanID : "",
        name: span.operationName || "",
        service: services[span.processID] || "",
        start: span.startTime || 0,
        duration: span.duration || 0,
        tags: tags,
        error: tags.error === true || tags["otel.status_code"] === "ERROR",
      };
    });
    return { traceId: raw.traceID || "", spans: spans };
  }

  // Depth-first from the roots; a span whose parent is not in the trace (not yet received, or
  // from another process that did not export) is shown as a root rather than dropped.
  function waterfall(trace) {
    const known = new Set(trace.spans.map((span) => span.spanId));
    const children = new Map();
    const roots = [];
    for (const span of trace.spans) {
      if (span.parentId && known.has(span.parentId)) {
        if (!children.has(span.parentId)) children.set(span.parentId, []);
        children.get(span.parentId).push(span);
      } else {
        roots.push(span);
      }
    }
    const byStart = (a, b) => a.start - b.start || a.name.localeCompare(b.name);
    const { begin, end } = bounds(trace);
    const total = Math.max(end - begin, 1);
    const rows = [];
    const visit = (span, depth) => {
      rows.push({
        span: span,
        depth: depth,
        offsetPercent: (100 * (span.start - begin)) / total,
        widthPercent: (100 * span.duration) / total,
      });
      for (const child of (children.get(span.spanId) || []).sort(byStart)) visit(child, depth + 1);
    };
    for (const root of roots.sort(byStart)) visit(root, 0);
    return rows;
  }

  // When the trace's first span starts and its last one ends (0 and 0 without spans).
  function bounds(trace) {
    if (trace.spans.length === 0) return { begin: 0, end: 0 };
    return {
      begin: Math.min(...trace.spans.map((span) => span.start)),
      end: Math.max(...trace.spans.map((span) => span.start + span.duration)),
    };
  }

  function summary(trace) {
    const rows = waterfall(trace);
    const { begin, end } = bounds(trace);
    return {
      traceId: trace.traceId,
      root: rows.length ? rows[0].span.name : "",
      start: begin,
      duration: end - begin,
      spans: trace.spans.length,
      services: [...new Set(trace.spans.map((s) => s.service))].sort(),
      errors: trace.spans.filter((s) => s.error).length,
    };
  }

  function formatDuration(microseconds) {
    if (microseconds < 1000) return `${microseconds} µs`;
    if (microseconds < 1000000) return `${(microseconds / 1000).toFixed(1)} ms`;
    return `${(microseconds / 1000000).toFixed(2)} s`;
  }

  exported.TraceView = { parseTrace, waterfall, summary, formatDuration };
})(typeof module !== "undefined" ? module.exports : window);
