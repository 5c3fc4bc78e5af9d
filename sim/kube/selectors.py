"""Label and field selectors: parsing (400 on bad input, as the apiserver) and matching."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.kube.errors import ApiError, bad_request

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(
    rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}$"
)
_LABEL_VALUE = re.compile(rf"^({_NAME})?$")


def valid_label_key(key: str) -> bool:
    prefix, _, _ = key.rpartition("/")
    return len(prefix) <= 253 and bool(_LABEL_KEY.match(key))


def valid_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_LABEL_VALUE.match(value))


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if not present:
            return False
        try:
            number = int(value or "")
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.op == "gt" else number < bound


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)


_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|>|<|[^\s!=(),<>]+)")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise bad_request(
                f"unable to parse requirement: unexpected character at {pos} in {text!r}"
            )
        out.append(m.group(1))
        pos = m.end()
    return out


def _label_error(detail: str) -> ApiError:
    return bad_request(f"unable to parse requirement: {detail}")


def parse_label_selector(text: str) -> LabelSelector:
    tokens = _tokens(text)
    requirements: list[Requirement] = []
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(tokens):
            raise _label_error(f"found end of string, expected more in {text!r}")
        token = tokens[i]
        i += 1
        return token

    while i < len(tokens):
        token = take()
        if token == "!":
            key = take()
            requirements.append(Requirement(_check_key(key), "!exists"))
        else:
            key = _check_key(token)
            if i >= len(tokens) or tokens[i] == ",":
                requirements.append(Requirement(key, "exists"))
            else:
                op = take()
                if op in ("=", "=="):
                    requirements.append(Requirement(key, "=", (_check_value(_value(tokens, i)),)))
                    i += 0 if i < len(tokens) and tokens[i] == "," else 1
                elif op == "!=":
                    requirements.append(Requirement(key, "!=", (_check_value(_value(tokens, i)),)))
                    i += 0 if i < len(tokens) and tokens[i] == "," else 1
                elif op in ("in", "notin"):
                    if take() != "(":
                        raise _label_error(f"found '{tokens[i - 1]}', expected: '('")
                    values: list[str] = []
                    expect_value = True
                    while True:
                        item = take()
                        if item == ")":
                            break
                        if item == ",":
                            expect_value = True
                            continue
                        if not expect_value:
                            raise _label_error(f"found '{item}', expected: ',' or ')'")
                        values.append(_check_value(item))
                        expect_value = False
                    if not values:
                        raise _label_error("for 'in', 'notin' operators, values set can't be empty")
                    requirements.append(Requirement(key, op, tuple(values)))
                elif op in (">", "<"):
                    bound = take()
                    if not bound.lstrip("-").isdigit():
                        raise _label_error(
                            f"for 'Gt', 'Lt' operators, the value must be an integer: {bound!r}"
                        )
                    requirements.append(Requirement(key, "gt" if op == ">" else "lt", (bound,)))
                else:
                    raise _label_error(f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")
        if i < len(tokens):
            if tokens[i] != ",":
                raise _label_error(f"found '{tokens[i]}', expected: ',' or 'end of string'")
            i += 1
            if i >= len(tokens):
                raise _label_error(f"found end of string, expected a requirement in {text!r}")
    return LabelSelector(tuple(requirements))


def _value(tokens: list[str], i: int) -> str:
    if i >= len(tokens) or tokens[i] == ",":
        return ""
    return tokens[i]


def _check_key(key: str) -> str:
    if not valid_label_key(key):
        raise _label_error(
            f'key: Invalid value: "{key}": name part must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return key


def _check_value(value: str) -> str:
    if not valid_label_value(value):
        raise _label_error(
            f'values[0][key]: Invalid value: "{value}": a valid label must be an empty string or '
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character"
        )
    return value


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for r in self.requirements:
            equal = field_value(obj, r.field) == r.value
            if equal == r.negate:
                return False
        return True


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, escaped = [], "", False
    for ch in text:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            current += ch
            escaped = True
        elif ch == sep:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_field_selector(text: str, supported: tuple[str, ...]) -> FieldSelector:
    requirements: list[FieldRequirement] = []
    if not text.strip():
        return FieldSelector()
    allowed = {"metadata.name", "metadata.namespace", *supported}
    for part in _split_unescaped(text, ","):
        m = re.match(r"^([^=!]+)(==|!=|=)(.*)$", part.strip())
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = m.group(1).strip(), m.group(2), _unescape(m.group(3).strip())
        if field not in allowed:
            raise bad_request(f"field label not supported: {field}")
        requirements.append(FieldRequirement(field, value, op == "!="))
    return FieldSelector(tuple(requirements))


def field_value(obj: Mapping[str, Any], dotted: str) -> str:
    current: Any = obj
    for part in dotted.split("."):
        if not isinstance(current, Mapping):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    if isinstance(current, Mapping) and dotted == "source":
        return str(current.get("component", ""))
    return str(current)
