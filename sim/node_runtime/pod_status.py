"""A pod's status from what the runtime knows of it: phase (the kubelet's getPhase), conditions,
IPs, start time and container statuses. Pure; pod_worker.py writes the result back with a merge
patch of `status` when it changed."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from sim.node_runtime.container_states import ContainerRecord, Running, Terminated, Waiting
from sim.node_runtime.node_object import rfc3339

Json = dict[str, Any]


@dataclass(frozen=True)
class PodView:
    restart_policy: str
    sandbox_ready: bool
    pod_ip: str
    host_ip: str
    start_time: datetime.datetime | None
    init_containers: list[ContainerRecord]
    containers: list[ContainerRecord]
    init_failed: bool  # an init container failed and will not be rerun (restartPolicy Never)
    terminal: bool  # the pod finished (Succeeded/Failed): nothing will run again
    message: str = ""
    reason: str = ""


def init_done(view: PodView) -> bool:
    return all(
        isinstance(c.state, Terminated) and c.state.exit_code == 0 for c in view.init_containers
    )


def phase(view: PodView) -> str:
    if view.init_failed:
        return "Failed"
    running = stopped = succeeded = waiting = 0
    for record in view.containers:
        state = record.state
        if isinstance(state, Running):
            running += 1
        elif isinstance(state, Terminated):
            stopped += 1
            succeeded += state.exit_code == 0
        elif isinstance(state, Waiting):
            if record.last_state is not None:
                stopped += 1
                succeeded += record.last_state.exit_code == 0
            else:
                waiting += 1
    if not init_done(view) or waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if view.terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if view.restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if view.restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> Json:
    out: Json = {"type": kind, "status": "True" if ok else "False"}
    if not ok and reason:
        out["reason"] = reason
    if not ok and message:
        out["message"] = message
    return out


def conditions(view: PodView, pod_phase: str) -> list[Json]:
    """Without transition times (`with_transition_times` adds them)."""
    initialized = init_done(view)
    finished = pod_phase in ("Succeeded", "Failed")
    unready = [c.name for c in view.containers if not c.ready]
    incomplete = [
        c.name
        for c in view.init_containers
        if not (isinstance(c.state, Terminated) and c.state.exit_code == 0)
    ]
    ready = not unready and not finished
    if finished:
        reason, message = "PodCompleted", ""
    else:
        reason, message = (
            "ContainersNotReady",
            f"containers with unready status: [{' '.join(unready)}]",
        )
    return [
        _condition("PodReadyToStartContainers", view.sandbox_ready),
        _condition(
            "Initialized",
            initialized,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]",
        ),
        _condition("Ready", ready, reason, message),
        _condition("ContainersReady", ready, reason, message),
    ]


def with_transition_times(
    new: list[Json], previous: list[Json], now: datetime.datetime
) -> list[Json]:
    """Conditions keep their lastTransitionTime while their status stays the same."""
    before = {c.get("type"): c for c in previous}
    out = []
    for condition in new:
        old = before.get(condition["type"])
        same = old is not None and old.get("status") == condition["status"]
        stamp = old.get("lastTransitionTime") if same and old else None
        out.append(
            {**condition, "lastProbeTime": None, "lastTransitionTime": stamp or rfc3339(now)}
        )
    return out


def pod_status(view: PodView, previous: list[Json], now: datetime.datetime) -> Json:
    """`previous`: the pod's current conditions (PodScheduled, set by the scheduler, is kept)."""
    pod_phase = phase(view)
    ours = with_transition_times(conditions(view, pod_phase), previous, now)
    kept = [c for c in previous if c.get("type") not in {c2["type"] for c2 in ours}]
    status: Json = {
        "phase": pod_phase,
        "conditions": kept + ours,
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "initContainerStatuses": [c.to_status() for c in view.init_containers] or None,
        "containerStatuses": [c.to_status() for c in view.containers],
        "message": view.message or None,
        "reason": view.reason or None,
    }
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    else:
        status["podIP"] = None
        status["podIPs"] = None
    if view.start_time is not None:
        status["startTime"] = rfc3339(view.start_time)
    return status
