// The trace page: find a service's traces (optionally one configuration's, by its
// egressgw.object tag) through Jaeger's query API on this same origin, and show one as a
// waterfall. ?config=NAMESPACE/NAME opens that configuration's provisioning trace directly.
(function () {
  "use strict";
  const view = window.TraceView;
  const CONTROLLER = "egressgw-controller";
  const byId = (id) => document.getElementById(id);

  function element(tag, text, attributes) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text; // never innerHTML: span tags are data
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    return node;
  }

  function say(text) {
    byId("message").textContent = text;
  }

  async function getJson(path) {
    const answer = await fetch(path);
    if (!answer.ok) throw new Error(`${path}: ${answer.status} ${answer.statusText}`);
    return (await answer.json()).data;
  }

  async function loadServices() {
    const services = (await getJson("api/services")) || [];
    const select = byId("service");
    select.replaceChildren(...services.sort().map((name) => element("option", name)));
    if (services.includes(CONTROLLER)) select.value = CONTROLLER;
  }

  async function find() {
    const params = new URLSearchParams({
      service: byId("service").value || CONTROLLER,
      limit: byId("limit").value || "20",
      lookback: "2h",
    });
    const config = byId("config").value.trim();
    if (config) params.set("tags", JSON.stringify({ "egressgw.object": config }));
    say("searching…");
    const traces = ((await getJson(`api/traces?${params}`)) || []).map(view.parseTrace);
    const summaries = traces.map(view.summary).sort((a, b) => b.start - a.start);
    const table = element("table");
    const head = element("tr");
    for (const title of ["started", "root span", "duration", "spans", "errors", "services"]) {
      head.append(element("th", title));
    }
    table.append(head);
    for (const found of summaries) {
      const row = element("tr", undefined, { class: "found" });
      row.append(
        element("td", new Date(found.start / 1000).toLocaleString()),
        element("td", found.root),
        element("td", view.formatDuration(found.duration)),
        element("td", String(found.spans)),
        element("td", String(found.errors)),
        element("td", found.services.join(", ")),
      );
      row.addEventListener("click", () => (location.hash = `trace=${found.traceId}`));
      table.append(row);
    }
    byId("traces").replaceChildren(table);
    say(`${summaries.length} trace(s)${config ? ` of ${config}` : ""}`);
    return traces;
  }

  function tagsRow(span) {
    const row = element("tr");
    const cell = element("td", undefined, { colspan: "4", class: "tags" });
    const lines = Object.entries(span.tags).map(([key, value]) => `${key} = ${JSON.stringify(value)}`);
    cell.textContent = [`span ${span.spanId}`, ...lines].join("\n");
    cell.style.whiteSpace = "pre-wrap";
    row.append(cell);
    return row;
  }

  async function show(traceId) {
    const raw = await getJson(`api/traces/${encodeURIComponent(traceId)}`);
    const trace = view.parseTrace(raw[0]);
    const about = view.summary(trace);
    const table = element("table");
    const head = element("tr");
    for (const title of ["span", "service", "duration", "timeline"]) head.append(element("th", title));
    table.append(head);
    for (const row of view.waterfall(trace)) {
      const line = element("tr", undefined, { class: "span" });
      const name = element("td", row.span.name, { class: "name", title: row.span.name });
      name.style.paddingLeft = `${6 + 16 * row.depth}px`;
      const bar = element("div", undefined, { class: row.span.error ? "error" : "" });
      bar.style.left = `${row.offsetPercent}%`;
      bar.style.width = `${Math.max(row.widthPercent, 0.2)}%`;
      const barCell = element("td", undefined, { class: "bar" });
      barCell.append(bar);
      line.append(
        name,
        element("td", row.span.service),
        element("td", view.formatDuration(row.span.duration)),
        barCell,
      );
      let details = null;
      line.addEventListener("click", () => {
        if (details) {
          details.remove();
          details = null;
        } else {
          details = tagsRow(row.span);
          line.after(details);
        }
      });
      table.append(line);
    }
    const title = element(
      "h2",
      `trace ${about.traceId}: ${about.spans} spans, ${view.formatDuration(about.duration)}`,
    );
    byId("trace").replaceChildren(title, table);
  }

  async function route() {
    const match = /^#trace=([0-9a-fA-F]+)$/.exec(location.hash);
    if (match) await show(match[1]);
  }

  async function start() {
    await loadServices();
    const config = new URLSearchParams(location.search).get("config");
    if (config) byId("config").value = config;
    byId("search").addEventListener("submit", (event) => {
      event.preventDefault();
      find().catch((err) => say(String(err)));
    });
    window.addEventListener("hashchange", () => route().catch((err) => say(String(err))));
    const traces = await find();
    if (config && !location.hash) {
      // The trace that started the configuration's workflow holds its whole provisioning.
      const starting = traces.find((t) => t.spans.some((s) => s.name.startsWith("RunWorkflow:")));
      if (starting) location.hash = `trace=${starting.traceId}`;
    }
    await route();
  }

  start().catch((err) => say(String(err)));
})();
