"""`meta.k8s.io/v1 Table` rendering for `kubectl get`: printer columns of CRDs and built-ins."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from typing import Any

from sim.kube.objectmeta import parse_time
from sim.kube.resources import PrinterColumn, ResourceType

Obj = dict[str, Any]
Column = dict[str, Any]

_NAME_COLUMN: Column = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}


def _column(
    name: str, type_: str = "string", description: str = "", priority: int = 0, fmt: str = ""
) -> Column:
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


def human_duration(seconds: float) -> str:
    """The apimachinery HumanDuration format kubectl users know (5s, 3m20s, 2d4h, ...)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(timestamp: Any) -> str:
    when = parse_time(str(timestamp)) if timestamp else None
    if when is None:
        return "<unknown>"
    return human_duration((datetime.datetime.now(datetime.UTC) - when).total_seconds())


# --- a small JSONPath subset, enough for additionalPrinterColumns ---------------------------

_SEGMENT = re.compile(
    r"\.([A-Za-z0-9_\-/]+)|\[\?\(@\.([A-Za-z0-9_.]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]|\[(\*|-?\d+)\]|\['([^']*)'\]"
)


def jsonpath(obj: Any, path: str) -> list[Any]:
    expr = path.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    if expr.startswith("$"):
        expr = expr[1:]
    if expr and not expr.startswith((".", "[")):
        expr = "." + expr
    current = [obj]
    pos = 0
    while pos < len(expr):
        m = _SEGMENT.match(expr, pos)
        if not m:
            return []
        pos = m.end()
        nxt: list[Any] = []
        for value in current:
            if m.group(1) is not None or m.group(5) is not None:
                key = m.group(1) if m.group(1) is not None else m.group(5)
                if isinstance(value, dict) and key in value:
                    nxt.append(value[key])
            elif m.group(2) is not None:
                if isinstance(value, list):
                    for item in value:
                        probe = jsonpath(item, "." + m.group(2))
                        if probe and str(probe[0]) == m.group(3):
                            nxt.append(item)
            elif isinstance(value, list):
                index = m.group(4)
                if index == "*":
                    nxt.extend(value)
                elif -len(value) <= int(index) < len(value):
                    nxt.append(value[int(index)])
            elif isinstance(value, dict) and m.group(4) == "*":
                nxt.extend(value.values())
        current = nxt
    return current


def _cell(column: PrinterColumn, obj: Obj) -> Any:
    values = jsonpath(obj, column.json_path)
    if not values:
        return None
    value = values[0]
    if column.type == "date":
        return age(value)
    if column.type == "integer" and isinstance(value, int | float):
        return int(value)
    if column.type == "number" and isinstance(value, int | float):
        return value
    if column.type == "boolean" and isinstance(value, bool):
        return value
    if len(values) > 1:
        return ",".join(v if isinstance(v, str) else json.dumps(v) for v in values)
    return value if isinstance(value, str) else json.dumps(value)


# --- built-in kinds -----------------------------------------------------------------------------


def _meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _node_status(obj: Obj) -> str:
    conditions = (obj.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    status = (
        "Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")
    )
    if (obj.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    return status


def _node_roles(obj: Obj) -> str:
    roles = sorted(
        key.split("/", 1)[1]
        for key in (_meta(obj).get("labels") or {})
        if key.startswith("node-role.kubernetes.io/")
    )
    return ",".join(r for r in roles if r) or "<none>"


def _pod_row(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    phase = "Terminating" if _meta(obj).get("deletionTimestamp") else status.get("phase", "Pending")
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    return [
        _meta(obj).get("name"),
        f"{ready}/{len(spec.get('containers') or [])}",
        phase,
        restarts,
        age(_meta(obj).get("creationTimestamp")),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
    ]


def _event_row(obj: Obj) -> list[Any]:
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    last = obj.get("lastTimestamp") or obj.get("eventTime") or _meta(obj).get("creationTimestamp")
    return [
        age(last),
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        obj.get("message") or obj.get("note") or "",
    ]


_BUILTIN: dict[str, tuple[list[Column], Callable[[Obj], list[Any]]]] = {
    "Namespace": (
        [_NAME_COLUMN, _column("Status"), _column("Age")],
        lambda o: [
            _meta(o).get("name"),
            (o.get("status") or {}).get("phase", ""),
            age(_meta(o).get("creationTimestamp")),
        ],
    ),
    "Node": (
        [_NAME_COLUMN, _column("Status"), _column("Roles"), _column("Age"), _column("Version")],
        lambda o: [
            _meta(o).get("name"),
            _node_status(o),
            _node_roles(o),
            age(_meta(o).get("creationTimestamp")),
            ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", ""),
        ],
    ),
    "Pod": (
        [
            _NAME_COLUMN,
            _column("Ready"),
            _column("Status"),
            _column("Restarts", "integer"),
            _column("Age"),
            _column("IP", priority=1),
            _column("Node", priority=1),
        ],
        _pod_row,
    ),
    "Secret": (
        [_NAME_COLUMN, _column("Type"), _column("Data", "integer"), _column("Age")],
        lambda o: [
            _meta(o).get("name"),
            o.get("type", ""),
            len(o.get("data") or {}),
            age(_meta(o).get("creationTimestamp")),
        ],
    ),
    "ConfigMap": (
        [_NAME_COLUMN, _column("Data", "integer"), _column("Age")],
        lambda o: [
            _meta(o).get("name"),
            len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            age(_meta(o).get("creationTimestamp")),
        ],
    ),
    "Event": (
        [
            _column("Last Seen"),
            _column("Type"),
            _column("Reason"),
            _column("Object"),
            _column("Message"),
        ],
        _event_row,
    ),
    "Lease": (
        [_NAME_COLUMN, _column("Holder"), _column("Age")],
        lambda o: [
            _meta(o).get("name"),
            (o.get("spec") or {}).get("holderIdentity", ""),
            age(_meta(o).get("creationTimestamp")),
        ],
    ),
    "CustomResourceDefinition": (
        [_NAME_COLUMN, _column("Created At", "date")],
        lambda o: [_meta(o).get("name"), _meta(o).get("creationTimestamp")],
    ),
}


def columns_and_rows(rt: ResourceType, objects: list[Obj]) -> tuple[list[Column], list[list[Any]]]:
    if not rt.custom and rt.kind in _BUILTIN:
        columns, row = _BUILTIN[rt.kind]
        return columns, [row(o) for o in objects]
    if rt.printer_columns:
        columns = [_NAME_COLUMN] + [
            _column(c.name, c.type, c.description, c.priority, c.format) for c in rt.printer_columns
        ]
        rows = [[_meta(o).get("name")] + [_cell(c, o) for c in rt.printer_columns] for o in objects]
        return columns, rows
    columns = [
        _NAME_COLUMN,
        _column(
            "Age",
            "date",
            "The server time when this object was created.",
        ),
    ]
    return columns, [
        [_meta(o).get("name"), age(_meta(o).get("creationTimestamp"))] for o in objects
    ]


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": _meta(obj)}


def table(
    rt: ResourceType,
    objects: list[Obj],
    *,
    resource_version: str = "",
    continue_token: str = "",
    include_object: str = "",
    headers: bool = True,
) -> Obj:
    columns, rows = columns_and_rows(rt, objects)
    metadata: dict[str, Any] = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    out_rows = []
    for obj, cells in zip(objects, rows, strict=True):
        row: dict[str, Any] = {"cells": cells}
        included = _row_object(obj, include_object or "Metadata")
        if included is not None:
            row["object"] = included
        out_rows.append(row)
    result: Obj = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "rows": out_rows,
    }
    result["columnDefinitions"] = columns if headers else []
    return result
