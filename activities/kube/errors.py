"""The one place that reads Kubernetes API status codes and turns them into outcomes.

Activities raise `ApplicationError`s built here, so Temporal retries exactly what can succeed on a
later attempt (conflicts, throttling, server errors) and stops on what cannot (other 4xx), with a
message a person can act on. Watchers use `api_error_kind` for their own decisions (410: relist).
Messages carry the API server's Status message, never a request body: a request may hold a key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from enum import Enum
from typing import Any, Final

from temporalio.exceptions import ApplicationError

# Application error types, visible in the Temporal Web UI and to workflow code.
CONFLICT_ERROR: Final = "KubeConflict"
UNAVAILABLE_ERROR: Final = "KubeUnavailable"
REJECTED_ERROR: Final = "KubeRejected"

_MAX_MESSAGE: Final = 400


class ApiErrorKind(Enum):
    NOT_FOUND = "not found"  # 404: for deletes and guards, the desired state
    CONFLICT = "conflict"  # 409: stale resourceVersion or already exists; re-read and retry
    GONE = "gone"  # 410: a watch's resourceVersion was compacted; relist
    UNAVAILABLE = "unavailable"  # 429, 5xx, or no HTTP status at all: retry later
    REJECTED = "rejected"  # any other 4xx: retrying the same request cannot help


def api_error_kind(status: int) -> ApiErrorKind:
    if status == 404:
        return ApiErrorKind.NOT_FOUND
    if status == 409:
        return ApiErrorKind.CONFLICT
    if status == 410:
        return ApiErrorKind.GONE
    if status == 429 or status >= 500 or status < 400:
        return ApiErrorKind.UNAVAILABLE
    return ApiErrorKind.REJECTED


def exception_status(exc: BaseException) -> int:
    """HTTP status of a kubernetes_asyncio ApiException (0 when it carries none)."""
    status = getattr(exc, "status", 0)
    return status if isinstance(status, int) else 0


def is_not_found(exc: BaseException) -> bool:
    return api_error_kind(exception_status(exc)) is ApiErrorKind.NOT_FOUND


def is_conflict(exc: BaseException) -> bool:
    return api_error_kind(exception_status(exc)) is ApiErrorKind.CONFLICT


def status_message(body: bytes | str | None) -> str:
    """The `message` of a metav1.Status body, or "" when the body is not one."""
    if not body:
        return ""
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(parsed, Mapping):
        return ""
    message = parsed.get("message")
    return message[:_MAX_MESSAGE] if isinstance(message, str) else ""


def retry_after(headers: Mapping[str, Any] | None) -> timedelta | None:
    if not headers:
        return None
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = int(str(value))
    except ValueError:
        return None
    return timedelta(seconds=max(seconds, 0))


def activity_error(exc: BaseException, action: str) -> ApplicationError:
    """The ApplicationError an activity raises for a failed API call; `action` says what it did,
    e.g. "update status of StaticGatewayConfiguration ns/name"."""
    status = exception_status(exc)
    kind = api_error_kind(status)
    detail = status_message(getattr(exc, "body", None)) or str(getattr(exc, "reason", "") or "")
    message = f"{action}: HTTP {status}" + (f": {detail}" if detail else "")
    if kind is ApiErrorKind.CONFLICT:
        return ApplicationError(message, type=CONFLICT_ERROR)
    if kind in (ApiErrorKind.REJECTED, ApiErrorKind.GONE, ApiErrorKind.NOT_FOUND):
        return ApplicationError(message, type=REJECTED_ERROR, non_retryable=True)
    return ApplicationError(
        message,
        type=UNAVAILABLE_ERROR,
        next_retry_delay=retry_after(getattr(exc, "headers", None)),
    )
