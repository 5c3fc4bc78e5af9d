"""Typed reads of raw Kubernetes JSON: each reader checks the value's JSON type and names the
offending field path when it is wrong, so a malformed object fails loudly at the boundary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ObjectFormatError(ValueError):
    """A raw object does not have the shape its schema promises."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(value: object) -> str:
    return type(value).__name__


def read_str(raw: Mapping[str, Any], key: str, path: str, default: str = "") -> str:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ObjectFormatError(_join(path, key), f"expected a string, got {_type_name(value)}")
    return value


def read_int(raw: Mapping[str, Any], key: str, path: str, default: int = 0) -> int:
    value = raw.get(key)
    if value is None:
        return default
    # bool is an int subclass in Python but a distinct JSON type.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ObjectFormatError(_join(path, key), f"expected an integer, got {_type_name(value)}")
    return value


def read_bool(raw: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ObjectFormatError(_join(path, key), f"expected a boolean, got {_type_name(value)}")
    return value


def read_optional_bool(raw: Mapping[str, Any], key: str, path: str) -> bool | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ObjectFormatError(_join(path, key), f"expected a boolean, got {_type_name(value)}")
    return value


def read_optional_str(raw: Mapping[str, Any], key: str, path: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ObjectFormatError(_join(path, key), f"expected a string, got {_type_name(value)}")
    return value


def read_map(raw: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ObjectFormatError(_join(path, key), f"expected an object, got {_type_name(value)}")
    return value


def read_maps(raw: Mapping[str, Any], key: str, path: str) -> list[Mapping[str, Any]]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ObjectFormatError(_join(path, key), f"expected a list, got {_type_name(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ObjectFormatError(
                f"{_join(path, key)}[{index}]", f"expected an object, got {_type_name(item)}"
            )
    return value


def read_strs(raw: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ObjectFormatError(_join(path, key), f"expected a list, got {_type_name(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ObjectFormatError(
                f"{_join(path, key)}[{index}]", f"expected a string, got {_type_name(item)}"
            )
    return tuple(value)


def read_str_map(raw: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    value = read_map(raw, key, path)
    if value is None:
        return {}
    for item_key, item in value.items():
        if not isinstance(item, str):
            raise ObjectFormatError(
                f"{_join(path, key)}[{item_key}]", f"expected a string, got {_type_name(item)}"
            )
    return dict(value)
