"""Structural OpenAPI v3 schemas: pruning, defaulting and validation as the apiserver does them.

All functions are pure: they return new values and lists of causes, never mutate their input.
Paths are rendered like the apiserver's field paths (`spec.items[0].name`, `spec.labels[key]`).
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from sim.kube import errors
from sim.kube.coreschemas import OBJECT_META_FIELDS
from sim.kube.errors import Cause

Schema = Mapping[str, Any]

PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
EMBEDDED = "x-kubernetes-embedded-resource"
_ROOT_KEYS = frozenset({"apiVersion", "kind", "metadata"})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        # Go decodes integers outside int64 as float64, so the apiserver sees a "number".
        return "integer" if _INT64_MIN <= value <= _INT64_MAX else "number"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# --- pruning -------------------------------------------------------------------------------------


def prune(
    schema: Schema, value: Any, path: str = "", *, root: bool = True
) -> tuple[Any, list[str]]:
    """Drop fields the schema does not specify; return the new value and the pruned paths."""
    pruned: list[str] = []
    return _prune(schema, value, path, root, pruned), pruned


def _prune(schema: Schema, value: Any, path: str, root: bool, pruned: list[str]) -> Any:
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        keep_unknown = bool(schema.get(PRESERVE)) or additional is True
        embedded = root or bool(schema.get(EMBEDDED))
        out: dict[str, Any] = {}
        for key, item in value.items():
            if embedded and key in _ROOT_KEYS:
                out[key] = (
                    _prune_meta(item, child(path, key), pruned) if key == "metadata" else item
                )
            elif key in properties:
                out[key] = _prune(properties[key], item, child(path, key), False, pruned)
            elif isinstance(additional, Mapping):
                out[key] = _prune(additional, item, f"{path}[{key}]", False, pruned)
            elif keep_unknown:
                out[key] = item
            else:
                pruned.append(child(path, key))
        return out
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            return [
                _prune(items, item, _index(path, i), False, pruned) for i, item in enumerate(value)
            ]
    return value


def _prune_meta(meta: Any, path: str, pruned: list[str]) -> Any:
    if not isinstance(meta, dict):
        return meta
    out = {}
    for key, item in meta.items():
        if key in OBJECT_META_FIELDS:
            out[key] = item
        else:
            pruned.append(child(path, key))
    return out


# --- defaulting ----------------------------------------------------------------------------------


def apply_defaults(schema: Schema, value: Any) -> Any:
    """Apply `default:` at every level; nulls of non-nullable fields are defaulted or dropped."""
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = properties.get(key)
            if sub is None and isinstance(additional, Mapping):
                sub = additional
            if sub is not None and item is None and not sub.get("nullable"):
                if "default" in sub:
                    out[key] = apply_defaults(sub, copy.deepcopy(sub["default"]))
                continue
            out[key] = apply_defaults(sub, item) if sub is not None else item
        for key, sub in properties.items():
            if key not in out and "default" in sub and key not in value:
                out[key] = apply_defaults(sub, copy.deepcopy(sub["default"]))
        return out
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            return [apply_defaults(items, item) for item in value]
    return value


# --- validation ----------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _is_date_time(text: str) -> bool:
    try:
        datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return "T" in text.upper() or " " in text


def _is_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return "/" in text


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _is_byte(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$"
)
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$")

_FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": _is_date_time,
    "datetime": _is_date_time,
    "date": _is_date,
    "ipv4": _is_ipv4,
    "ipv6": _is_ipv6,
    "cidr": _is_cidr,
    "uuid": _is_uuid,
    "byte": _is_byte,
    "hostname": lambda t: bool(_HOSTNAME.match(t)),
    "mac": lambda t: bool(_MAC.match(t)),
    "uri": lambda t: bool(_URI.match(t)),
}


def _type_ok(expected: str, value: Any) -> bool:
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        return json_type(value) == "integer" or (isinstance(value, float) and value.is_integer())
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


def validate(schema: Schema, value: Any, path: str = "") -> list[Cause]:
    """Validate `value` against a structural schema; return every violation found."""
    causes: list[Cause] = []
    _validate(schema, value, path, causes)
    return causes


def _name(path: str) -> str:
    return path or "<root>"


def _validate(schema: Schema, value: Any, path: str, causes: list[Cause]) -> None:
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            causes.append(
                errors.type_invalid(
                    path, "null", f'{_name(path)} in body must be of type {schema["type"]}: "null"'
                )
            )
        return
    expected = schema.get("type", "")
    if schema.get(INT_OR_STRING):
        if not (isinstance(value, str) or _type_ok("integer", value)):
            causes.append(
                errors.type_invalid(
                    path,
                    json_type(value),
                    f'{_name(path)} in body must be of type integer,string: "{json_type(value)}"',
                )
            )
            return
    elif expected and not _type_ok(expected, value):
        causes.append(
            errors.type_invalid(
                path,
                json_type(value),
                f'{_name(path)} in body must be of type {expected}: "{json_type(value)}"',
            )
        )
        return
    if "enum" in schema and value not in schema["enum"]:
        causes.append(errors.not_supported(path, value, list(schema["enum"])))
    if isinstance(value, str):
        _validate_string(schema, value, path, causes)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(schema, value, path, causes)
    elif isinstance(value, list):
        _validate_array(schema, value, path, causes)
    elif isinstance(value, dict):
        _validate_object(schema, value, path, causes)
    _validate_combinators(schema, value, path, causes)


def _validate_string(schema: Schema, value: str, path: str, causes: list[Cause]) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        causes.append(
            errors.invalid(
                path,
                value,
                f"{_name(path)} in body should be at least {schema['minLength']} chars long",
            )
        )
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        causes.append(errors.too_long(path, schema["maxLength"]))
    pattern = schema.get("pattern")
    if pattern:
        try:
            matched = _regex(pattern).search(value) is not None
        except re.error:
            matched = True
        if not matched:
            causes.append(
                errors.invalid(path, value, f"{_name(path)} in body should match '{pattern}'")
            )
    fmt = schema.get("format", "")
    check = _FORMATS.get(fmt)
    if check is not None and not check(value):
        causes.append(
            errors.invalid(path, value, f'{_name(path)} in body must be of type {fmt}: "{value}"')
        )


def _validate_number(schema: Schema, value: float, path: str, causes: list[Cause]) -> None:
    if "minimum" in schema:
        low = schema["minimum"]
        if value < low or (schema.get("exclusiveMinimum") and value == low):
            word = "greater than" if schema.get("exclusiveMinimum") else "greater than or equal to"
            causes.append(
                errors.invalid(path, value, f"{_name(path)} in body should be {word} {low}")
            )
    if "maximum" in schema:
        high = schema["maximum"]
        if value > high or (schema.get("exclusiveMaximum") and value == high):
            word = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
            causes.append(
                errors.invalid(path, value, f"{_name(path)} in body should be {word} {high}")
            )
    multiple = schema.get("multipleOf")
    if multiple and (value / multiple) != int(value / multiple):
        causes.append(
            errors.invalid(path, value, f"{_name(path)} in body should be a multiple of {multiple}")
        )


def _validate_array(schema: Schema, value: list[Any], path: str, causes: list[Cause]) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        causes.append(
            errors.invalid(
                path,
                len(value),
                f"{_name(path)} in body should have at least {schema['minItems']} items",
            )
        )
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        causes.append(errors.too_many(path, len(value), schema["maxItems"]))
    list_type = schema.get("x-kubernetes-list-type")
    if schema.get("uniqueItems") or list_type == "set":
        seen: list[Any] = []
        for i, item in enumerate(value):
            if item in seen:
                causes.append(errors.duplicate(_index(path, i), item))
            seen.append(item)
    if list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen_keys: set[str] = set()
        for i, item in enumerate(value):
            if isinstance(item, dict):
                ident = repr([item.get(k) for k in keys])
                if ident in seen_keys:
                    causes.append(errors.duplicate(_index(path, i), {k: item.get(k) for k in keys}))
                seen_keys.add(ident)
    items = schema.get("items")
    if isinstance(items, Mapping):
        for i, item in enumerate(value):
            _validate(items, item, _index(path, i), causes)


def _validate_object(schema: Schema, value: dict[str, Any], path: str, causes: list[Cause]) -> None:
    for key in schema.get("required") or []:
        if key not in value:
            causes.append(errors.required(child(path, key)))
    properties: Mapping[str, Any] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for key, item in value.items():
        if key in properties:
            if path == "" and key == "metadata":
                continue
            _validate(properties[key], item, child(path, key), causes)
        elif isinstance(additional, Mapping):
            _validate(additional, item, f"{path}[{key}]", causes)
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        causes.append(
            errors.invalid(
                path,
                len(value),
                f"{_name(path)} in body should have at least {schema['minProperties']} properties",
            )
        )
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        causes.append(errors.too_many(path, len(value), schema["maxProperties"]))


def _validate_combinators(schema: Schema, value: Any, path: str, causes: list[Cause]) -> None:
    for sub in schema.get("allOf") or []:
        _validate(sub, value, path, causes)
    any_of = schema.get("anyOf")
    if any_of and not any(not validate(sub, value, path) for sub in any_of):
        causes.append(
            errors.invalid(
                path, value, f'"{_name(path)}" must validate at least one schema (anyOf)'
            )
        )
    one_of = schema.get("oneOf")
    if one_of and sum(1 for sub in one_of if not validate(sub, value, path)) != 1:
        causes.append(
            errors.invalid(
                path, value, f'"{_name(path)}" must validate one and only one schema (oneOf)'
            )
        )
    negated = schema.get("not")
    if isinstance(negated, Mapping) and not validate(negated, value, path):
        causes.append(
            errors.invalid(path, value, f'"{_name(path)}" must not validate the schema (not)')
        )


def has_type_errors(causes: list[Cause]) -> bool:
    return any(c.reason in ("FieldValueTypeInvalid", "FieldValueNotSupported") for c in causes)
