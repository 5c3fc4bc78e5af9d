"""What `egressgw status` says about each StaticGatewayConfiguration, decided from what was read:
the object (status, conditions), its GatewayConfigWorkflow (phase, nodes, retrying activities)
and the nodes' GatewayStatus objects. Pure functions; `egressgw/status/sources.py` reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from contracts import kube_names
from contracts.conditions import ConditionStatus, find_condition
from contracts.gateway_config import StaticGatewayConfiguration
from contracts.workflow_io import NodeProblem

RUNNING: Final = "Running"
NO_WORKFLOW: Final = "NoWorkflow"
UNKNOWN: Final = "Unknown"
# Phases in which the workflow's own message is the error to show.
_FAILED_PHASES: Final = frozenset({"Degraded", "Invalid"})
COLUMNS: Final = ("NAMESPACE", "NAME", "PHASE", "EGRESS-IP", "NODES", "LAST-ERROR", "WORKFLOW-URL")
_MAX_TABLE_ERROR: Final = 100  # the table cuts long errors; -o json has them whole


@dataclass(frozen=True)
class WorkflowFacts:
    """One configuration's workflow as Temporal describes it (and, when a worker answered, as
    its `status` query reports it)."""

    workflow_id: str
    found: bool
    execution_status: str = ""  # Running, Completed, Failed, Terminated, ... ("" if not found)
    phase: str = ""  # the query's phase, else the EgressgwPhase search attribute
    message: str = ""  # the query's status message
    nodes: tuple[str, ...] | None = None  # the pool's nodes; None when the query did not answer
    node_problems: tuple[NodeProblem, ...] = ()
    retrying: str = ""  # "<activity>: <last failure>" of an activity being retried
    unanswered: str = ""  # why the query did not answer ("" when it did)
    unreadable: str = ""  # why Temporal could not be asked at all ("" when it could)


@dataclass(frozen=True)
class StatusRow:
    namespace: str
    name: str
    uid: str
    phase: str
    egress_ip: str
    # Gateway nodes whose agent reports this configuration; None when they could not be read.
    nodes_configured: tuple[str, ...] | None
    nodes_total: int | None  # the pool's nodes, None when unknown
    node_problems: tuple[NodeProblem, ...]
    last_error: str
    workflow_id: str
    workflow_status: str
    workflow_url: str | None  # None without a Web UI to link to

    @property
    def nodes(self) -> str:
        total = "?" if self.nodes_total is None else str(self.nodes_total)
        configured = "?" if self.nodes_configured is None else str(len(self.nodes_configured))
        return f"{configured}/{total}"

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "phase": self.phase,
            "egressIp": self.egress_ip,
            "nodes": {
                "configured": None
                if self.nodes_configured is None
                else list(self.nodes_configured),
                "total": self.nodes_total,
                "problems": [{"node": p.node_name, "reason": p.reason} for p in self.node_problems],
            },
            "lastError": self.last_error,
            "workflow": {
                "id": self.workflow_id,
                "status": self.workflow_status,
                "url": self.workflow_url,
            },
        }


def workflow_url(ui_url: str | None, temporal_namespace: str, workflow_id: str) -> str | None:
    """The Web UI's page of a workflow's latest run: `<ui>/namespaces/<ns>/workflows/<id>`, the
    ID as one path segment (its slashes escaped, as the UI's own links have them); None when
    there is no Web UI."""
    if ui_url is None:
        return None
    return (
        f"{ui_url.rstrip('/')}/namespaces/{quote(temporal_namespace, safe='')}"
        f"/workflows/{quote(workflow_id, safe='')}"
    )


def configured_nodes(gateway_statuses: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, ...]]:
    """`<namespace>/<name>` -> the nodes whose GatewayStatus lists that configuration's gateway
    as ready (a GatewayStatus is named after its node)."""
    found: dict[str, set[str]] = {}
    for raw in gateway_statuses:
        node = str((raw.get("metadata") or {}).get("name", ""))
        spec = raw.get("spec") or {}
        for entry in spec.get("readyGatewayConfigurations") or []:
            key = str(entry.get("staticGatewayConfiguration", ""))
            if key and node:
                found.setdefault(key, set()).add(node)
    return {key: tuple(sorted(nodes)) for key, nodes in found.items()}


def _degraded_message(sgc: StaticGatewayConfiguration) -> str:
    condition = find_condition(sgc.status.conditions, kube_names.CONDITION_DEGRADED)
    if condition is None or condition.status != ConditionStatus.TRUE:
        return ""
    return condition.message


def last_error(sgc: StaticGatewayConfiguration, facts: WorkflowFacts) -> str:
    """The one problem a user should look at first, or "" when there is none."""
    if facts.unreadable:
        return f"cannot read the workflow: {facts.unreadable}"
    if not facts.found:
        return "no workflow: no controller has picked this configuration up yet"
    if facts.execution_status != RUNNING:
        return f"the workflow is {facts.execution_status.lower()}"
    if facts.phase in _FAILED_PHASES:
        return facts.message or _degraded_message(sgc)
    if facts.retrying:
        return f"retrying {facts.retrying}"
    return ""


def phase_of(facts: WorkflowFacts) -> str:
    if facts.unreadable:
        return UNKNOWN
    if not facts.found:
        return NO_WORKFLOW
    return facts.phase or UNKNOWN


def status_row(
    sgc: StaticGatewayConfiguration,
    facts: WorkflowFacts,
    configured: Mapping[str, tuple[str, ...]] | None,
    ui_url: str | None,
    temporal_namespace: str,
) -> StatusRow:
    meta = sgc.metadata
    return StatusRow(
        namespace=meta.namespace,
        name=meta.name,
        uid=meta.uid,
        phase=phase_of(facts),
        egress_ip=sgc.status.egress_ip_prefix,
        nodes_configured=None if configured is None else configured.get(meta.key, ()),
        nodes_total=None if facts.nodes is None else len(facts.nodes),
        node_problems=facts.node_problems,
        last_error=last_error(sgc, facts),
        workflow_id=facts.workflow_id,
        workflow_status=facts.execution_status or (UNKNOWN if facts.unreadable else NO_WORKFLOW),
        workflow_url=workflow_url(ui_url, temporal_namespace, facts.workflow_id),
    )


def _cell(text: str, limit: int | None = None) -> str:
    one_line = " ".join(text.split()) or "-"
    if limit is not None and len(one_line) > limit:
        return one_line[: limit - 3] + "..."
    return one_line


def render_table(rows: Sequence[StatusRow]) -> str:
    """kubectl-style columns, one configuration per line."""
    lines = [
        (
            row.namespace,
            row.name,
            row.phase,
            _cell(row.egress_ip),
            row.nodes,
            _cell(row.last_error, _MAX_TABLE_ERROR),
            row.workflow_url or "-",
        )
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in (COLUMNS, *lines)) for i in range(len(COLUMNS))]
    out = []
    for cells in (COLUMNS, *lines):
        padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths, strict=False)]
        out.append("   ".join([*padded, cells[-1]]).rstrip())
    return "\n".join(out) + "\n"


def render_json(rows: Sequence[StatusRow]) -> str:
    return json.dumps({"items": [row.to_json() for row in rows]}, indent=2) + "\n"
