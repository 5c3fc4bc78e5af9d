"""API errors and the `Status` objects the apiserver answers them with.

Messages copy the apiserver's wording because clients and users match on them (kubectl prints
`message` verbatim; controllers branch on `reason` and `code`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cause:
    """One field error: `reason` is a FieldValue* cause type, `message` the text after the field."""

    reason: str
    field: str
    message: str

    def text(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def go_value(value: Any) -> str:
    """Render a value the way Go's field errors print it (%q for strings, JSON-ish otherwise)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(json.dumps(value, separators=(",", ":"), sort_keys=True))


def invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", path, f"Invalid value: {go_value(value)}: {detail}")


def type_invalid(path: str, type_name: str, detail: str) -> Cause:
    return Cause("FieldValueTypeInvalid", path, f"Invalid value: {go_value(type_name)}: {detail}")


def required(path: str, detail: str = "") -> Cause:
    return Cause(
        "FieldValueRequired", path, f"Required value: {detail}" if detail else "Required value"
    )


def not_supported(path: str, value: Any, allowed: list[Any]) -> Cause:
    supported = ", ".join(go_value(a) for a in allowed)
    return Cause(
        "FieldValueNotSupported",
        path,
        f"Unsupported value: {go_value(value)}: supported values: {supported}",
    )


def forbidden(path: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", path, f"Forbidden: {detail}")


def duplicate(path: str, value: Any) -> Cause:
    return Cause("FieldValueDuplicate", path, f"Duplicate value: {go_value(value)}")


def too_many(path: str, actual: int, limit: int) -> Cause:
    return Cause("FieldValueTooMany", path, f"Too many: {actual}: must have at most {limit} items")


def too_long(path: str, limit: int) -> Cause:
    return Cause("FieldValueTooLong", path, f"Too long: may not be more than {limit} bytes")


@dataclass
class ApiError(Exception):
    """An error that becomes a `Status` response."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def success_status(name: str, group: str, kind: str, uid: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": group, "kind": kind, "uid": uid},
    }


def _resource_details(name: str, group: str, plural: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return details


def qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{qualified(plural, group)} "{name}" not found',
        _resource_details(name, group, plural),
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(plural, group)} "{name}" already exists',
        _resource_details(name, group, plural),
    )


def conflict(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        _resource_details(name, group, plural),
    )


def unprocessable(kind: str, group: str, name: str, causes: list[Cause]) -> ApiError:
    group_kind = f"{kind}.{group}" if group else kind
    texts = [c.text() for c in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes],
    }
    if group:
        details["group"] = group
    return ApiError(422, "Invalid", f'{group_kind} "{name}" is invalid: {joined}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed() -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def unsupported_media_type(content_type: str, accepted: tuple[str, ...]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)} (got {content_type!r})",
    )


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def too_large() -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", "the request is too large")


def forbidden_error(message: str, name: str, group: str, plural: str) -> ApiError:
    return ApiError(403, "Forbidden", message, _resource_details(name, group, plural))
