"""A container's state as the runtime tracks it (waiting / running / terminated, last state,
restarts) and its JSON form in a pod's `containerStatuses`."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from sim.node_runtime.node_object import rfc3339

Json = dict[str, Any]


@dataclass(frozen=True)
class Waiting:
    reason: str
    message: str = ""


@dataclass(frozen=True)
class Running:
    started_at: datetime.datetime


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    reason: str
    finished_at: datetime.datetime
    started_at: datetime.datetime | None = None
    message: str = ""
    signal: int | None = None


State = Waiting | Running | Terminated


def exit_reason(exit_code: int) -> str:
    return "Completed" if exit_code == 0 else "Error"


@dataclass
class ContainerRecord:
    """One container of a pod (init or regular) on this node."""

    name: str
    image: str
    state: State = field(default_factory=lambda: Waiting("ContainerCreating"))
    last_state: Terminated | None = None
    restart_count: int = 0
    ready: bool = False
    # Back-off steps taken in a row (restart.py); reset when the container ran long enough.
    backoff_steps: int = 0

    @property
    def container_id(self) -> str:
        return f"egressgw://{self.name}-{self.restart_count}"

    def to_status(self) -> Json:
        status: Json = {
            "name": self.name,
            "image": self.image,
            "imageID": f"egressgw-sim://{self.image}",
            "state": state_json(self.state),
            "lastState": state_json(self.last_state) if self.last_state else {},
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": isinstance(self.state, Running),
        }
        if not isinstance(self.state, Waiting) or self.last_state is not None:
            status["containerID"] = self.container_id
        return status


def state_json(state: State) -> Json:
    if isinstance(state, Waiting):
        waiting: Json = {"reason": state.reason}
        if state.message:
            waiting["message"] = state.message
        return {"waiting": waiting}
    if isinstance(state, Running):
        return {"running": {"startedAt": rfc3339(state.started_at)}}
    terminated: Json = {
        "exitCode": state.exit_code,
        "reason": state.reason,
        "finishedAt": rfc3339(state.finished_at),
    }
    if state.started_at is not None:
        terminated["startedAt"] = rfc3339(state.started_at)
    if state.message:
        terminated["message"] = state.message
    if state.signal is not None:
        terminated["signal"] = state.signal
    return {"terminated": terminated}
