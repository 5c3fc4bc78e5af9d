"""Typed access to untrusted JSON request bodies: every shape error becomes a 400, never a crash."""

from __future__ import annotations

from typing import Any

from sim.arm.errors import bad_request

JsonObject = dict[str, Any]


def _wrong(where: str, expected: str) -> Exception:
    return bad_request(
        f"Could not parse the request: property '{where}' must be {expected}.",
        "InvalidRequestFormat",
    )


def obj(parent: JsonObject, key: str, where: str) -> JsonObject:
    """An optional object property; absent or null gives {}."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _wrong(where, "an object")
    return value


def objects(parent: JsonObject, key: str, where: str) -> list[JsonObject]:
    """An optional array of objects; absent or null gives []."""
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _wrong(where, "an array of objects")
    return value


def text(parent: JsonObject, key: str, where: str) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _wrong(where, "a string")
    return value


def strings(parent: JsonObject, key: str, where: str) -> list[str]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _wrong(where, "an array of strings")
    return value


def integer(parent: JsonObject, key: str, where: str) -> int | None:
    value = parent.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(where, "an integer")
    return value


def boolean(parent: JsonObject, key: str, where: str) -> bool | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _wrong(where, "a boolean")
    return value


def tags(parent: JsonObject) -> dict[str, str] | None:
    value = parent.get("tags")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise bad_request("Tags must be an object of string values.", "InvalidTagFormat")
    return dict(value)


def ref_id(parent: JsonObject, key: str, where: str) -> str | None:
    """The `id` of an optional `{"id": ...}` reference property."""
    ref = obj(parent, key, where)
    if not ref:
        return None
    return text(ref, "id", f"{where}.id")


def merge(base: JsonObject, patch: JsonObject) -> JsonObject:
    """Deep-merge `patch` onto `base` (objects merge, everything else replaces; null removes)."""
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
