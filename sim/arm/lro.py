"""Long-running operations: when they finish, and what finishing does to the resource."""

from __future__ import annotations

import datetime
import math
from typing import Any

from sim.arm import compute, ids
from sim.arm.store import Operation, Store, Transaction

# Retry-After is whole seconds, as ARM sends it: clients parse it as an integer (Go's azcore
# ignores "1.00" and falls back to its 30-second default; older Python clients raised on it).
MAX_POLL_HINT = 10


def finish(store: Store, op: Operation) -> None:
    """Apply the end of an operation (success or injected failure) to the store."""
    op.done = True
    resource = store.get(op.resource_id)
    if resource is None:
        return
    if op.method == "DELETE" and op.error is None:
        tx = Transaction(store)
        tx.delete_tree(resource.key)
        if resource.type == ids.VMSS_VMS:
            compute.after_instance_delete(tx, ids.parse_path(resource.id))
        tx.commit()
        return
    resource.properties["provisioningState"] = "Failed" if op.error else "Succeeded"


def settle(store: Store, now: float) -> bool:
    """Finish every operation whose time has come; True when anything changed."""
    due = sorted(
        (op for op in store.pending_operations() if op.deadline <= now),
        key=lambda op: op.deadline,
    )
    for op in due:
        finish(store, op)
    return bool(due)


def status_body(op: Operation, now: float) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": op.status_path,
        "name": op.id,
        "startTime": _iso(op.started),
    }
    if not op.done:
        body["status"] = "InProgress"
        return body
    body["endTime"] = _iso(max(op.deadline, op.started))
    if op.error is not None:
        body["status"] = "Failed"
        body["error"] = op.error
    else:
        body["status"] = "Succeeded"
    return body


def poll_hint(op: Operation, now: float) -> str:
    """Retry-After for an operation: 0 when it will be done by the next poll, else the whole
    seconds left (rounded up, at most MAX_POLL_HINT)."""
    remaining = op.deadline - now
    if op.done or remaining <= 0:
        return "0"
    return str(min(MAX_POLL_HINT, math.ceil(remaining)))


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat()
