"""Fault injection: rules that pick requests (method, resource type, probability or count) and
answer them with throttling, server errors, conflicts, failed operations or a dropped connection:
before the request is handled ("drop": nothing reached ARM) or after ("drop-after-accept": the
write was accepted and its operation runs, but the client never reads the answer)."""

from __future__ import annotations

import random
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from sim.arm.errors import ArmError, bad_request

EFFECTS = ("throttle", "error", "conflict", "fail-operation", "drop", "drop-after-accept")
DROPS = frozenset({"drop", "drop-after-accept"})


@dataclass
class FaultRule:
    effect: str  # one of EFFECTS
    method: str | None = None  # e.g. "PUT"; None matches any
    resource_type: str | None = None  # "Microsoft.Network/loadBalancers" or "loadBalancers"
    probability: float = 1.0
    count: int | None = None  # matches left; None = unlimited
    status: int | None = None  # for "error": 500 or 503 (default 500)
    retry_after: int | None = None  # seconds, for "throttle" (default 1) and "error"
    code: str | None = None
    message: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    hits: int = 0

    def matches(self, method: str, resource_type: str | None, rng: random.Random) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.resource_type:
            if resource_type is None:
                return False
            wanted = self.resource_type.lower()
            actual = resource_type.lower()
            if wanted != actual and wanted != actual.split("/", 1)[-1]:
                return False
        return self.probability >= 1.0 or rng.random() < self.probability

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def error(self) -> ArmError:
        """The response this rule answers with (for the status-code effects)."""
        if self.effect == "throttle":
            after = self.retry_after if self.retry_after is not None else 1
            return ArmError(
                429,
                self.code or "TooManyRequests",
                self.message or "The request is being throttled.",
                headers={"Retry-After": str(after)},
            )
        if self.effect == "conflict":
            return ArmError(
                409,
                self.code or "Conflict",
                self.message or "The request conflicts with the current state of the resource.",
            )
        status = self.status or 500
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        return ArmError(
            status,
            self.code or ("ServiceUnavailable" if status == 503 else "InternalServerError"),
            self.message or "Injected server error.",
            headers=headers,
        )

    def operation_error(self) -> dict[str, Any]:
        return {
            "code": self.code or "InternalServerError",
            "message": self.message or "Injected failure of the long-running operation.",
        }


def rule_from_json(data: object) -> FaultRule:
    if not isinstance(data, dict):
        raise bad_request("A fault rule must be a JSON object.")
    effect = data.get("effect")
    if effect not in EFFECTS:
        raise bad_request(f"effect must be one of {', '.join(EFFECTS)}.")
    kwargs: dict[str, Any] = {"effect": effect}
    for key, kind in (
        ("method", str),
        ("resource_type", str),
        ("code", str),
        ("message", str),
        ("count", int),
        ("status", int),
        ("retry_after", int),
    ):
        value = data.get(key)
        if value is not None:
            if not isinstance(value, kind) or isinstance(value, bool):
                raise bad_request(f"Fault rule field '{key}' has the wrong type.")
            kwargs[key] = value
    probability = data.get("probability", 1.0)
    if isinstance(probability, bool) or not isinstance(probability, int | float):
        raise bad_request("Fault rule field 'probability' must be a number.")
    if not 0.0 <= float(probability) <= 1.0:
        raise bad_request("Fault rule field 'probability' must be within 0..1.")
    kwargs["probability"] = float(probability)
    if effect == "error" and kwargs.get("status", 500) not in (500, 502, 503, 504):
        raise bad_request("An error fault's status must be 500, 502, 503 or 504.")
    return FaultRule(**kwargs)


class Faults:
    """The active rules; the first matching rule wins and uses up one of its `count`."""

    def __init__(self, seed: int | None = None) -> None:
        self.rules: list[FaultRule] = []
        self._rng = random.Random(seed)

    def add(self, rule: FaultRule | None = None, /, **fields: Any) -> FaultRule:
        if rule is None:
            rule = rule_from_json(fields)
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def clear(self) -> None:
        self.rules.clear()

    def pick(self, method: str, resource_type: str | None, *, lro: bool) -> FaultRule | None:
        """The rule that fires for this request, if any (consuming one count)."""
        for rule in self.rules:
            if rule.effect in ("fail-operation", "drop-after-accept") and not lro:
                continue
            if rule.matches(method, resource_type, self._rng):
                rule.hits += 1
                if rule.count is not None:
                    rule.count -= 1
                return rule
        return None
