"""What a (re)started runtime makes of a pod it may have run before: container records from the
pod's stored status (restart counts, finished init containers, containers that completed for
good), with the processes it left running adopted, and those that died while it was away counted
as exited with an unknown code (as the kubelet reports a container it lost:
ContainerStatusUnknown, 137). Pure; pod_worker.py acts on the result.
"""

from __future__ import annotations

import datetime
from typing import Any, Final

from sim.node_runtime.container_states import ContainerRecord, Running, Terminated
from sim.node_runtime.pod_state_dir import ProcessRecord

Json = dict[str, Any]
UNKNOWN_EXIT: Final = 137
UNKNOWN_REASON: Final = "ContainerStatusUnknown"
UNKNOWN_MESSAGE: Final = "the container's process ended while the node runtime was not running"


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _terminated(raw: Json, now: datetime.datetime) -> Terminated:
    return Terminated(
        exit_code=int(raw.get("exitCode", 0)),
        reason=str(raw.get("reason", "")),
        finished_at=parse_time(raw.get("finishedAt")) or now,
        started_at=parse_time(raw.get("startedAt")),
        message=str(raw.get("message", "")),
    )


def recover_record(
    container: Json,
    stored: Json | None,
    process: ProcessRecord | None,
    now: datetime.datetime,
) -> ContainerRecord:
    """`stored`: the container's entry in the pod's status; `process`: the process record of a
    process that still runs (already checked by pid and start time)."""
    record = ContainerRecord(name=str(container["name"]), image=str(container.get("image", "")))
    if stored is None and process is None:
        return record
    stored = stored or {}
    record.restart_count = int(stored.get("restartCount", 0))
    last = (stored.get("lastState") or {}).get("terminated")
    if last:
        record.last_state = _terminated(last, now)
    state = stored.get("state") or {}
    if process is not None:
        record.restart_count = process.restart_count
        record.state = Running(parse_time(process.started_at) or now)
        record.ready = not process.init
    elif "terminated" in state:
        record.state = _terminated(state["terminated"], now)
    elif "running" in state:
        record.state = Terminated(
            exit_code=UNKNOWN_EXIT,
            reason=UNKNOWN_REASON,
            finished_at=now,
            started_at=parse_time(state["running"].get("startedAt")),
            message=UNKNOWN_MESSAGE,
        )
    return record


def recover_records(
    pod: Json, running: dict[str, ProcessRecord], now: datetime.datetime
) -> tuple[list[ContainerRecord], list[ContainerRecord]]:
    """(init container records, container records) in spec order."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}

    def by_name(field: str) -> dict[str, Json]:
        return {str(s.get("name")): s for s in status.get(field) or []}

    init_stored, stored = by_name("initContainerStatuses"), by_name("containerStatuses")
    init = [
        recover_record(c, init_stored.get(c["name"]), running.get(c["name"]), now)
        for c in spec.get("initContainers") or []
    ]
    main = [
        recover_record(c, stored.get(c["name"]), running.get(c["name"]), now)
        for c in spec.get("containers") or []
    ]
    return init, main
