"""`x-kubernetes-validations` rules, evaluated with cel-python plus the Kubernetes CEL libraries.

Rules are compiled once per rule text. The rule result decides; `messageExpression`, `message`,
`reason` and `fieldPath` shape the cause exactly as the apiserver reports it.
"""

from __future__ import annotations

import ipaddress
import json
import re
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import celpy
from celpy import celtypes
from celpy.evaluation import CELEvalError

from sim.kube import errors
from sim.kube.errors import Cause
from sim.kube.schema import Schema, child, json_type

CelValue = Any


# --- Kubernetes CEL library types -----------------------------------------------------------------


class IPValue(celtypes.StringType):
    """An `ip(...)` value; it behaves as its canonical string where a string is expected."""


class CIDRValue(celtypes.StringType):
    """A `cidr(...)` value, stored as the prefix the user wrote."""


class URLValue(celtypes.StringType):
    """A `url(...)` value."""


def _fail(message: str) -> CELEvalError:
    return CELEvalError(message)


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if "%" in text:
        raise ValueError("IP address with zone value is not allowed")
    return ipaddress.ip_address(text)


def _ip(arg: CelValue) -> CelValue:
    if isinstance(arg, CIDRValue):
        return IPValue(str(ipaddress.ip_interface(str(arg)).ip))
    try:
        return IPValue(str(_parse_ip(str(arg))))
    except ValueError as exc:
        return _fail(f"IP Address {str(arg)!r} parse error during conversion from string: {exc}")


def _is_ip(arg: CelValue) -> CelValue:
    try:
        _parse_ip(str(arg))
    except ValueError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _cidr(arg: CelValue) -> CelValue:
    try:
        ipaddress.ip_interface(str(arg))
    except ValueError as exc:
        return _fail(
            f"network address {str(arg)!r} parse error during conversion from string: {exc}"
        )
    if "/" not in str(arg):
        return _fail(f"network address {str(arg)!r} parse error: no prefix length")
    return CIDRValue(str(arg))


def _is_cidr(arg: CelValue) -> CelValue:
    text = str(arg)
    try:
        ipaddress.ip_interface(text)
    except ValueError:
        return celtypes.BoolType(False)
    return celtypes.BoolType("/" in text)


def _network(arg: CelValue) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_interface(str(arg)).network


def _contains_ip(cidr: CelValue, ip: CelValue) -> CelValue:
    try:
        return celtypes.BoolType(_parse_ip(str(ip)) in _network(cidr))
    except ValueError as exc:
        return _fail(str(exc))


def _contains_cidr(cidr: CelValue, other: CelValue) -> CelValue:
    try:
        inner, outer = _network(other), _network(cidr)
    except ValueError as exc:
        return _fail(str(exc))
    if inner.version != outer.version:
        return celtypes.BoolType(False)
    return celtypes.BoolType(inner.subnet_of(outer))  # type: ignore[arg-type]


def _prefix_length(cidr: CelValue) -> CelValue:
    return celtypes.IntType(_network(cidr).prefixlen)


def _masked(cidr: CelValue) -> CelValue:
    return CIDRValue(str(_network(cidr)))


def _family(ip: CelValue) -> CelValue:
    return celtypes.IntType(_parse_ip(str(ip)).version)


def _ip_predicate(attr: str) -> Callable[[CelValue], CelValue]:
    def check(ip: CelValue) -> CelValue:
        addr = _parse_ip(str(ip))
        if attr == "is_global_unicast":
            ok = not (
                addr.is_multicast or addr.is_loopback or addr.is_link_local or addr.is_unspecified
            )
            ok = ok and str(addr) != "255.255.255.255"
            return celtypes.BoolType(ok)
        if attr == "is_link_local_multicast":
            net = "ff02::/16" if addr.version == 6 else "224.0.0.0/24"
            return celtypes.BoolType(addr in ipaddress.ip_network(net))
        if attr == "is_link_local_unicast":
            return celtypes.BoolType(addr.is_link_local and not addr.is_multicast)
        return celtypes.BoolType(bool(getattr(addr, attr)))

    return check


def _url(arg: CelValue) -> CelValue:
    parsed = urllib.parse.urlsplit(str(arg))
    if not parsed.scheme and not str(arg).startswith("/"):
        return _fail(f"URL {str(arg)!r} parse error during conversion from string: invalid URI")
    return URLValue(str(arg))


def _is_url(arg: CelValue) -> CelValue:
    parsed = urllib.parse.urlsplit(str(arg))
    return celtypes.BoolType(bool(parsed.scheme) or str(arg).startswith("/"))


def _url_part(part: str) -> Callable[[CelValue], CelValue]:
    def get(url: CelValue) -> CelValue:
        parsed = urllib.parse.urlsplit(str(url))
        if part == "scheme":
            return celtypes.StringType(parsed.scheme)
        if part == "host":
            return celtypes.StringType(parsed.netloc.rsplit("@", 1)[-1])
        if part == "hostname":
            return celtypes.StringType(parsed.hostname or "")
        if part == "port":
            return celtypes.StringType(str(parsed.port) if parsed.port else "")
        if part == "path":
            return celtypes.StringType(parsed.path)
        if part == "query":
            query: dict[CelValue, CelValue] = {}
            for key, val in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
                query.setdefault(celtypes.StringType(key), celtypes.ListType()).append(
                    celtypes.StringType(val)
                )
            return celtypes.MapType(query)
        return celtypes.StringType("")

    return get


# --- string and list extensions -------------------------------------------------------------------


def _index_of(target: CelValue, item: CelValue, *start: CelValue) -> CelValue:
    if isinstance(target, celtypes.ListType):
        for i, elem in enumerate(target):
            if elem == item:
                return celtypes.IntType(i)
        return celtypes.IntType(-1)
    offset = int(start[0]) if start else 0
    return celtypes.IntType(str(target).find(str(item), offset))


def _last_index_of(target: CelValue, item: CelValue) -> CelValue:
    if isinstance(target, celtypes.ListType):
        for i in range(len(target) - 1, -1, -1):
            if target[i] == item:
                return celtypes.IntType(i)
        return celtypes.IntType(-1)
    return celtypes.IntType(str(target).rfind(str(item)))


def _split(text: CelValue, sep: CelValue, *limit: CelValue) -> CelValue:
    parts = (
        str(text).split(str(sep))
        if not limit
        else str(text).split(str(sep), max(int(limit[0]) - 1, 0))
    )
    if str(sep) == "":
        parts = list(str(text))
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _join(items: CelValue, *sep: CelValue) -> CelValue:
    return celtypes.StringType((str(sep[0]) if sep else "").join(str(i) for i in items))


def _substring(text: CelValue, start: CelValue, *end: CelValue) -> CelValue:
    s = str(text)
    return celtypes.StringType(s[int(start) : int(end[0])] if end else s[int(start) :])


def _replace(text: CelValue, old: CelValue, new: CelValue, *count: CelValue) -> CelValue:
    n = int(count[0]) if count else -1
    return celtypes.StringType(str(text).replace(str(old), str(new), n))


def _char_at(text: CelValue, index: CelValue) -> CelValue:
    s = str(text)
    i = int(index)
    return celtypes.StringType(s[i] if i < len(s) else "")


def _find(text: CelValue, pattern: CelValue) -> CelValue:
    m = re.search(str(pattern), str(text))
    return celtypes.StringType(m.group(0) if m else "")


def _find_all(text: CelValue, pattern: CelValue, *limit: CelValue) -> CelValue:
    found = [m.group(0) for m in re.finditer(str(pattern), str(text))]
    if limit and int(limit[0]) >= 0:
        found = found[: int(limit[0])]
    return celtypes.ListType([celtypes.StringType(f) for f in found])


def _is_sorted(items: CelValue) -> CelValue:
    values = list(items)
    return celtypes.BoolType(all(values[i] <= values[i + 1] for i in range(len(values) - 1)))


def _sum(items: CelValue) -> CelValue:
    values = list(items)
    if not values:
        return celtypes.IntType(0)
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


def _min(items: CelValue, *rest: CelValue) -> CelValue:
    values = [items, *rest] if rest else list(items)
    if not values:
        return _fail("min called on an empty list")
    return min(values)


def _max(items: CelValue, *rest: CelValue) -> CelValue:
    values = [items, *rest] if rest else list(items)
    if not values:
        return _fail("max called on an empty list")
    return max(values)


def _string(value: CelValue) -> CelValue:
    if isinstance(value, celtypes.BoolType):
        return celtypes.StringType("true" if value else "false")
    return celtypes.StringType(str(value))


FUNCTIONS: dict[str, Callable[..., CelValue]] = {
    "ip": _ip,
    "isIP": _is_ip,
    "cidr": _cidr,
    "isCIDR": _is_cidr,
    "containsIP": _contains_ip,
    "containsCIDR": _contains_cidr,
    "prefixLength": _prefix_length,
    "masked": _masked,
    "family": _family,
    "isUnspecified": _ip_predicate("is_unspecified"),
    "isLoopback": _ip_predicate("is_loopback"),
    "isLinkLocalMulticast": _ip_predicate("is_link_local_multicast"),
    "isLinkLocalUnicast": _ip_predicate("is_link_local_unicast"),
    "isGlobalUnicast": _ip_predicate("is_global_unicast"),
    "url": _url,
    "isURL": _is_url,
    "getScheme": _url_part("scheme"),
    "getHost": _url_part("host"),
    "getHostname": _url_part("hostname"),
    "getPort": _url_part("port"),
    "getEscapedPath": _url_part("path"),
    "getQuery": _url_part("query"),
    "lowerAscii": lambda s: celtypes.StringType(str(s).lower()),
    "upperAscii": lambda s: celtypes.StringType(str(s).upper()),
    "trim": lambda s: celtypes.StringType(str(s).strip()),
    "charAt": _char_at,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "split": _split,
    "join": _join,
    "substring": _substring,
    "replace": _replace,
    "find": _find,
    "findAll": _find_all,
    "isSorted": _is_sorted,
    "sum": _sum,
    "min": _min,
    "max": _max,
    "string": _string,
}


# --- compilation and evaluation -------------------------------------------------------------------


_ENV = celpy.Environment()
_PROGRAMS: dict[str, Any] = {}


def _program(expression: str) -> Any:
    program = _PROGRAMS.get(expression)
    if program is None:
        program = _ENV.program(_ENV.compile(expression), functions=FUNCTIONS)
        _PROGRAMS[expression] = program
    return program


def compile_error(expression: str) -> str | None:
    """The parse error of a rule, or None when it compiles."""
    try:
        _program(expression)
    except Exception as exc:  # noqa: BLE001 - celpy raises several unrelated types on bad input
        return str(exc).splitlines()[0]
    return None


def to_cel(value: Any) -> CelValue:
    return celpy.json_to_cel(value)  # type: ignore[attr-defined]


def evaluate(expression: str, activation: Mapping[str, Any]) -> tuple[CelValue, str]:
    """Evaluate; return (value, "") or (None, error message)."""
    try:
        result = _program(expression).evaluate(dict(activation))
    except CELEvalError as exc:
        return None, str(exc.args[0]) if exc.args else str(exc)
    except Exception as exc:  # noqa: BLE001 - library functions raise Python errors on bad input
        return None, str(exc)
    if isinstance(result, CELEvalError):
        return None, str(result.args[0]) if result.args else str(result)
    return result, ""


_MISSING = object()


def check_rules(schema: Schema, value: Any, old: Any = _MISSING, path: str = "") -> list[Cause]:
    """Evaluate every `x-kubernetes-validations` rule reachable in `value`."""
    causes: list[Cause] = []
    _walk(schema, value, old, path, causes)
    return causes


def _walk(schema: Schema, value: Any, old: Any, path: str, causes: list[Cause]) -> None:
    if value is None:
        return
    rules = schema.get("x-kubernetes-validations")
    if rules:
        _apply_rules(schema, rules, value, old, path, causes)
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        old_map = old if isinstance(old, dict) else {}
        for key, item in value.items():
            sub = properties.get(key)
            sub_path = child(path, key)
            if sub is None and isinstance(additional, Mapping):
                sub, sub_path = additional, f"{path}[{key}]"
            if sub is not None:
                _walk(sub, item, old_map.get(key, _MISSING), sub_path, causes)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        items_schema = schema["items"]
        # Only list-type=map entries correlate with old entries (by key), as in the apiserver.
        old_by_key: dict[str, Any] = {}
        keys = schema.get("x-kubernetes-list-map-keys") or []
        if schema.get("x-kubernetes-list-type") == "map" and isinstance(old, list):
            old_by_key = {repr([o.get(k) for k in keys]): o for o in old if isinstance(o, dict)}
        for i, item in enumerate(value):
            prior = _MISSING
            if old_by_key and isinstance(item, dict):
                prior = old_by_key.get(repr([item.get(k) for k in keys]), _MISSING)
            _walk(items_schema, item, prior, f"{path}[{i}]", causes)


def _type_name(schema: Schema, value: Any) -> str:
    return str(schema.get("type") or json_type(value))


# Rules are pure functions of (self, oldSelf): remember recent verdicts, because celpy's tree
# interpreter costs milliseconds per rule and controllers rewrite the same specs over and over.
_VERDICTS: OrderedDict[tuple[str, str, str], str | None] = OrderedDict()
_VERDICTS_MAX = 8192


def _verdict(rule: Mapping[str, Any], value: Any, old: Any) -> str | None:
    """None when the rule holds, else the failure message (prefixed "!" for evaluation errors)."""
    expression = rule.get("rule", "")
    transition = "oldSelf" in expression
    key = (
        json.dumps(rule, sort_keys=True),
        json.dumps(value, sort_keys=True),
        json.dumps(old, sort_keys=True) if transition and old is not _MISSING else "",
    )
    if key in _VERDICTS:
        _VERDICTS.move_to_end(key)
        return _VERDICTS[key]
    try:
        scope: dict[str, Any] = {"self": to_cel(value)}
        if transition:
            scope["oldSelf"] = to_cel(old) if old is not _MISSING else None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. integers beyond int64
        return f"!{exc} evaluating rule: {expression}"
    result, error = evaluate(expression, scope)
    verdict: str | None
    if error:
        verdict = f"!{error} evaluating rule: {expression}"
    elif not isinstance(result, celtypes.BoolType | bool):
        verdict = f"!rule evaluated to a non-bool value: {expression}"
    elif bool(result):
        verdict = None
    else:
        verdict = _message(rule, scope, expression)
    _VERDICTS[key] = verdict
    if len(_VERDICTS) > _VERDICTS_MAX:
        _VERDICTS.popitem(last=False)
    return verdict


def _apply_rules(
    schema: Schema,
    rules: list[Mapping[str, Any]],
    value: Any,
    old: Any,
    path: str,
    causes: list[Cause],
) -> None:
    for rule in rules:
        if "oldSelf" in rule.get("rule", "") and old is _MISSING:
            continue  # transition rules only run on updates that have an old value here
        verdict = _verdict(rule, value, old)
        if verdict is None:
            continue
        field_path = path + _field_path_suffix(rule.get("fieldPath", ""))
        if verdict.startswith("!"):
            causes.append(errors.invalid(field_path, _type_name(schema, value), verdict[1:]))
            continue
        reason = rule.get("reason", "FieldValueInvalid")
        causes.append(_cause(reason, field_path, _type_name(schema, value), verdict))


def _message(rule: Mapping[str, Any], scope: Mapping[str, Any], expression: str) -> str:
    fallback = rule.get("message") or f"failed rule: {expression}"
    message_expression = rule.get("messageExpression")
    if message_expression:
        text, error = evaluate(message_expression, scope)
        if not error and isinstance(text, str) and text.strip():
            return str(text)
    return str(fallback)


def _field_path_suffix(field_path: str) -> str:
    if not field_path:
        return ""
    # fieldPath is a JSONPath relative to the rule's node: ".a.b" or "['a'].b".
    out = re.sub(r"\['([^']*)'\]", r".\1", field_path)
    return out if out.startswith((".", "[")) else "." + out


def _cause(reason: str, path: str, type_name: str, message: str) -> Cause:
    if reason == "FieldValueRequired":
        return errors.required(path, message)
    if reason == "FieldValueForbidden":
        return errors.forbidden(path, message)
    if reason == "FieldValueDuplicate":
        return errors.duplicate(path, message)
    return errors.invalid(path, type_name, message)


def rule_errors(schema: Schema, path: str = "") -> list[Cause]:
    """Compile-check every rule in a schema (used when a CRD is created or updated)."""
    causes: list[Cause] = []
    for index, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        for key in ("rule", "messageExpression"):
            text = rule.get(key)
            if text:
                problem = compile_error(text)
                if problem:
                    causes.append(
                        errors.invalid(
                            f"{path}.x-kubernetes-validations[{index}].{key}",
                            text,
                            f"compilation failed: {problem}",
                        )
                    )
    for key, sub in (schema.get("properties") or {}).items():
        causes.extend(rule_errors(sub, f"{path}.properties[{key}]"))
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, Mapping):
            causes.extend(rule_errors(sub, f"{path}.{key}"))
    return causes
