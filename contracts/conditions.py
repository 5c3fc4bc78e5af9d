"""Status conditions shaped like metav1.Condition, and the pure function that sets one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from contracts.kube_json import ConditionJson
from contracts.raw_fields import ObjectFormatError, read_int, read_str


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Condition:
    type: str
    status: ConditionStatus
    reason: str
    message: str
    last_transition_time: str  # RFC 3339 in UTC, seconds precision like metav1.Time
    observed_generation: int = 0

    @classmethod
    def from_object(cls, raw: Mapping[str, Any], path: str = "condition") -> Condition:
        status = read_str(raw, "status", path)
        try:
            parsed_status = ConditionStatus(status)
        except ValueError:
            raise ObjectFormatError(
                f"{path}.status", f"expected True, False or Unknown, got {status!r}"
            ) from None
        return cls(
            type=read_str(raw, "type", path),
            status=parsed_status,
            reason=read_str(raw, "reason", path),
            message=read_str(raw, "message", path),
            last_transition_time=read_str(raw, "lastTransitionTime", path),
            observed_generation=read_int(raw, "observedGeneration", path),
        )

    def to_object(self) -> ConditionJson:
        out: ConditionJson = {
            "type": self.type,
            "status": self.status.value,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": self.last_transition_time,
        }
        if self.observed_generation:
            out["observedGeneration"] = self.observed_generation
        return out


def format_kube_time(moment: datetime) -> str:
    """RFC 3339 as the API server writes metav1.Time: UTC, whole seconds, `Z` suffix."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous; pass an aware one (e.g. workflow.now())")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find_condition(conditions: Iterable[Condition], condition_type: str) -> Condition | None:
    return next((c for c in conditions if c.type == condition_type), None)


def set_condition(
    conditions: Iterable[Condition],
    condition_type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    observed_generation: int,
    now: datetime,
) -> tuple[Condition, ...]:
    """Set or replace the condition of `condition_type`, keeping the others in their order.

    lastTransitionTime only moves when the status changes, as meta.SetStatusCondition does:
    readers use it to tell how long a configuration has been (not) Ready.
    """
    existing = tuple(conditions)
    previous = find_condition(existing, condition_type)
    if previous is None:
        new = Condition(
            type=condition_type,
            status=status,
            reason=reason,
            message=message,
            last_transition_time=format_kube_time(now),
            observed_generation=observed_generation,
        )
        return (*existing, new)
    transition_time = (
        previous.last_transition_time if previous.status == status else format_kube_time(now)
    )
    updated = replace(
        previous,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition_time,
        observed_generation=observed_generation,
    )
    return tuple(updated if c.type == condition_type else c for c in existing)
