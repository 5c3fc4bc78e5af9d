"""The one place that reads Kubernetes API status codes: every failed call becomes an `ApiFailure`.

`api_error_kind` maps an HTTP status to what a caller can do about it; `api_failure` reads a
kubernetes_asyncio `ApiException`, an aiohttp response error or a transport error into the same
typed value. Callers decide by `kind` (activities: retry or stop, activities/kube/errors.py;
watchers: relist on GONE; the agent: missing Secret, lost race) and never look at a status
themselves. Messages carry the API server's Status `message`, never a request body: a request
may hold a key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any, Final

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

_MAX_MESSAGE: Final = 400


class ApiErrorKind(Enum):
    NOT_FOUND = "not found"  # 404: for deletes and guards, the desired state
    CONFLICT = "conflict"  # 409: stale resourceVersion or already exists; re-read and retry
    GONE = "gone"  # 410: a watch's resourceVersion was compacted; relist
    UNAVAILABLE = "unavailable"  # 429, 5xx, or no HTTP status at all: retry later
    # 401, 403: for seconds after an API server starts, before its RBAC caches are filled (or
    # while a token is rotated); missing permissions get fixed by an admin: retry with backoff.
    DENIED = "denied"
    REJECTED = "rejected"  # any other 4xx: retrying the same request cannot help


@dataclass(frozen=True)
class ApiFailure:
    """A failed API call as callers see it."""

    kind: ApiErrorKind
    status: int  # the HTTP status; 0 when the call got no response
    reason: str  # the HTTP reason phrase, or what broke the connection
    message: str  # the API server's Status message ("" when there is none), capped
    retry_after: timedelta | None = None  # the server's Retry-After, when it sent one

    def describe(self) -> str:
        """One line for a log or an error: `HTTP <status>[: <Status message>]`."""
        return f"HTTP {self.status}" + (f": {self.message}" if self.message else "")


# What a call raises when the connection to the API server fails or times out.
TRANSPORT_ERRORS: Final[tuple[type[BaseException], ...]] = (
    aiohttp.ClientError,
    OSError,
    asyncio.TimeoutError,
)
# What a failed call to the API server raises: an error response or a transport error.
CLIENT_ERRORS: Final[tuple[type[BaseException], ...]] = (ApiException, *TRANSPORT_ERRORS)


def api_error_kind(status: int) -> ApiErrorKind:
    if status == 404:
        return ApiErrorKind.NOT_FOUND
    if status == 409:
        return ApiErrorKind.CONFLICT
    if status == 410:
        return ApiErrorKind.GONE
    if status == 429 or status >= 500 or status < 400:
        return ApiErrorKind.UNAVAILABLE
    if status in (401, 403):
        return ApiErrorKind.DENIED
    return ApiErrorKind.REJECTED


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


def http_failure(
    status: int,
    body: bytes | str | None = None,
    headers: Mapping[str, Any] | None = None,
    reason: str = "",
) -> ApiFailure:
    """The failure an HTTP response with `status` and a Status `body` stands for."""
    return ApiFailure(
        kind=api_error_kind(status),
        status=status,
        reason=reason,
        message=status_message(body),
        retry_after=retry_after(headers),
    )


def api_failure(exc: BaseException) -> ApiFailure:
    """What a failed call raised, classified: an ApiException (an error response the client
    read), an aiohttp.ClientResponseError (one read by hand) or, with status 0 and kind
    UNAVAILABLE, anything else (a broken connection, a timeout)."""
    if isinstance(exc, ApiException):
        status = exc.status if isinstance(exc.status, int) else 0
        return http_failure(status, exc.body, exc.headers, str(exc.reason or ""))
    if isinstance(exc, aiohttp.ClientResponseError):
        return http_failure(exc.status, None, exc.headers, exc.message)
    return http_failure(0, reason=f"{type(exc).__name__}: {exc}")


def is_not_found(exc: BaseException) -> bool:
    return api_failure(exc).kind is ApiErrorKind.NOT_FOUND


def is_conflict(exc: BaseException) -> bool:
    return api_failure(exc).kind is ApiErrorKind.CONFLICT


def describe_failure(exc: BaseException) -> str:
    """One line for a log: never an ApiException's str, which dumps headers and bodies."""
    if isinstance(exc, ApiException):
        return api_failure(exc).describe()
    return f"{type(exc).__name__}: {exc}"
