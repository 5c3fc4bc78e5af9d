"""The chaos suite's verdicts (tests/chaos/): an inventory with a leak, a missing item or a
duplicate is told apart from an exact one; a retry sooner than Retry-After is caught; a secret
inside a history's base64 payload is found."""

from __future__ import annotations

import base64
import json

from tests.chaos.history_checks import find_secrets, history_texts
from tests.chaos.inventory import compare, normalized
from tests.chaos.scenarios import fault_rules, retry_after_violations
from tests.chaos.suite import kill_plan

UID = "2d0c64a8-4c4e-4b8e-9d1e-5a8f3b6c7d10"
EXPECTED = ["loadBalancers/ilb", "loadBalancers/ilb/probes/<uid>", "publicIPPrefixes/p-<uid>"]


def test_inventory_verdicts() -> None:
    actual = [f"publicIPPrefixes/p-{UID}", f"loadBalancers/ilb/probes/{UID}", "loadBalancers/ilb"]
    assert compare(EXPECTED, normalized(actual, {UID: "<uid>"})).exact

    check = compare(EXPECTED, ["loadBalancers/ilb", "loadBalancers/ilb", "publicIPPrefixes/x"])
    assert check.leaked == ["publicIPPrefixes/x"]
    assert check.missing == ["loadBalancers/ilb/probes/<uid>", "publicIPPrefixes/p-<uid>"]
    assert check.duplicated == ["loadBalancers/ilb"]


def entry(method: str, status: int, at: float) -> dict[str, object]:
    return {"method": method, "path": "/lb", "status": status, "timestamp": at}


def test_retry_sooner_than_retry_after_is_a_violation() -> None:
    honoured = [entry("PUT", 429, 10.0), entry("GET", 200, 10.5), entry("PUT", 201, 12.0)]
    assert retry_after_violations(honoured, 2) == []

    early = [entry("PUT", 503, 10.0), entry("PUT", 201, 11.0)]
    assert len(retry_after_violations(early, 2)) == 1


def test_fault_rules_share_the_requests() -> None:
    rules = fault_rules(0.2, 2)
    assert {r["effect"] for r in rules} == {
        "throttle",
        "error",
        "conflict",
        "fail-operation",
        "drop",
    }
    answered = 1.0
    for rule in rules:
        answered *= 1 - rule["probability"]
    assert abs((1 - answered) - 0.2) < 1e-9


def test_secret_in_a_payload_is_found() -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    payload = base64.b64encode(json.dumps({"note": f"key={key}"}).encode()).decode()
    history = {"events": [{"input": {"payloads": [{"metadata": {}, "data": payload}]}}]}
    assert find_secrets(history_texts(history), {"wg": key, "other": "x" * 20}) == ["wg"]

    as_hex = {"events": [{"details": f"raw {bytes(range(32)).hex()}"}]}
    assert find_secrets(history_texts(as_hex), {"wg": key}) == ["wg"]
    assert find_secrets(history_texts({"events": []}), {"wg": key}) == []


def test_every_kind_is_killed_in_every_phase() -> None:
    kinds = ("controller", "agent", "temporal", "api-server", "node-runtime")
    assert len(set(kill_plan(kinds, 15))) == 15
    assert [k for k, _ in kill_plan(kinds, 5)] == list(kinds)
