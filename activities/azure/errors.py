"""The one place that turns Azure SDK exceptions into Temporal `ApplicationError`s.

Retries belong to the workflow's RetryPolicy, so every activity lets Azure errors reach
`azure_errors()` and nothing else inspects status codes:

- 429 and 5xx: retryable, with `next_retry_delay` from Retry-After when Azure gave one;
- 409 (AnotherOperationInProgress, Conflict, ...) and 412 (stale ETag): retryable and benign
  (no failure metrics or WARN tracebacks), the next attempt re-reads and re-plans;
- a long-running operation that Azure reports as failed: retryable;
- a resource read with an operation still running on it (`operation_in_progress`, e.g. after a
  write whose answer was lost): retryable and benign, the retry reads it again;
- connection errors: retryable;
- a request held back by the process's own ARM rate limit (`rate_limit.RateLimitReached`):
  retryable, with next_retry_delay = the time until the limit allows a request;
- any other 4xx: non-retryable, typed `Azure<Code>`, with Azure's code and message in the text,
  which is what the user reads in the Degraded condition.

Messages carry the operation, Azure's code and message; never a request body or a token.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Final

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.azure.rate_limit import RateLimitReached
from contracts import failure_types

# Error types the workflows may match on (ApplicationError.type).
CONNECTION_ERROR: Final = "AzureConnectionError"
OPERATION_FAILED: Final = "AzureOperationFailed"
OPERATION_IN_PROGRESS: Final = "AzureOperationInProgress"
THROTTLED: Final = "AzureThrottled"
SERVER_ERROR: Final = "AzureServerError"
CONFLICT: Final = "AzureConflict"
PRECONDITION_FAILED: Final = "AzurePreconditionFailed"
# Refusals decided by the activities themselves (not Azure's answers), all non-retryable; the
# names live in contracts so that workflows can tell where a failure came from.
POOL_NOT_FOUND: Final = failure_types.POOL_NOT_FOUND
INVALID_POOL: Final = failure_types.INVALID_POOL
INVALID_PREFIX: Final = failure_types.INVALID_PREFIX
LOAD_BALANCER_FULL: Final = failure_types.LOAD_BALANCER_FULL
UNEXPECTED_STATE: Final = failure_types.UNEXPECTED_STATE

_MAX_AZURE_MESSAGE: Final = 600  # Azure messages can embed long lists; the condition stays short
_RETRY_AFTER_HEADERS: Final = ("retry-after-ms", "x-ms-retry-after-ms", "retry-after")


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> timedelta | None:
    """The delay a response asks for: `retry-after-ms` / `x-ms-retry-after-ms` in milliseconds,
    or `Retry-After` in seconds or as an HTTP date. None when absent or unreadable."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in _RETRY_AFTER_HEADERS:
        value = lowered.get(name)
        if value is None:
            continue
        value = value.strip()
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None:
            if number < 0:
                return None
            return (
                timedelta(milliseconds=number)
                if name != "retry-after"
                else timedelta(seconds=number)
            )
        if name == "retry-after":
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(timedelta(0), when - (now or datetime.now(UTC)))
    return None


def refused(error_type: str, message: str) -> ApplicationError:
    """A non-retryable refusal decided by an activity (bad pool, prefix in another
    subscription, ...): retrying cannot help until the user changes something."""
    return ApplicationError(message, type=error_type, non_retryable=True)


def unexpected(message: str) -> ApplicationError:
    """Azure answered, but not with what the next step needs (e.g. a frontend without an IP
    yet): retryable, the next attempt re-reads."""
    return ApplicationError(message, type=UNEXPECTED_STATE)


def operation_in_progress(what: str, state: str) -> ApplicationError:
    """`what` is still being written (its provisioningState is `state`): a write now would get
    409 AnotherOperationInProgress, and what is read is not yet what Azure will hold. Retryable
    with the retry policy's backoff; BENIGN, as a 409 is."""
    return ApplicationError(
        f"{what} is {state}: waiting for its running operation before writing",
        type=OPERATION_IN_PROGRESS,
        category=ApplicationErrorCategory.BENIGN,
    )


def _azure_text(err: HttpResponseError) -> tuple[str, str]:
    code = ""
    message = ""
    if err.error is not None:
        code = str(err.error.code or "")
        message = str(err.error.message or "")
    if not message:
        message = str(err.reason or "") or "no message"
    if len(message) > _MAX_AZURE_MESSAGE:
        message = message[: _MAX_AZURE_MESSAGE - 3] + "..."
    return code, message


def _headers(err: HttpResponseError) -> Mapping[str, str]:
    # Both the sync and async transports' responses carry `headers`; the common protocol
    # type does not declare it.
    headers = getattr(err.response, "headers", None)
    return {} if headers is None else {str(k): str(v) for k, v in headers.items()}


def classify(err: AzureError, action: str) -> ApplicationError:
    """The ApplicationError for an Azure SDK error raised while doing `action`
    (e.g. "updating load balancer kubeegressgateway-ilb")."""
    if isinstance(err, RateLimitReached):
        return ApplicationError(
            f"{action} held back: {err.message}",
            type=THROTTLED,
            next_retry_delay=timedelta(seconds=err.retry_after_seconds),
        )
    if isinstance(err, ServiceRequestError | ServiceResponseError):
        # The message of a connection error names the host at most; no headers or bodies.
        return ApplicationError(
            f"{action} failed: could not reach Azure ({type(err).__name__})", type=CONNECTION_ERROR
        )
    if not isinstance(err, HttpResponseError):
        return ApplicationError(f"{action} failed: {type(err).__name__}", type=CONNECTION_ERROR)
    status = err.status_code or 0
    code, message = _azure_text(err)
    text = f"{action} failed: Azure answered {code or status}: {message}"
    if status < 400:
        # Raised by a poller: the request was accepted, the long-running operation failed.
        return ApplicationError(
            f"{action} failed: the Azure operation ended with {code or 'an error'}: {message}",
            type=OPERATION_FAILED,
        )
    if status == 429 or status >= 500:
        return ApplicationError(
            text,
            type=THROTTLED if status == 429 else SERVER_ERROR,
            next_retry_delay=retry_after(_headers(err)),
        )
    # Conflicts and stale ETags are how optimistic concurrency with Azure normally goes: the
    # retry re-reads. BENIGN keeps them out of failure metrics and WARN tracebacks.
    if status == 409:
        return ApplicationError(
            text,
            type=CONFLICT,
            next_retry_delay=retry_after(_headers(err)),
            category=ApplicationErrorCategory.BENIGN,
        )
    if status == 412:
        return ApplicationError(
            text, type=PRECONDITION_FAILED, category=ApplicationErrorCategory.BENIGN
        )
    if status == 408:
        return ApplicationError(text, type=SERVER_ERROR)
    return ApplicationError(
        f"{action} was refused by Azure: {code or status}: {message}",
        type=f"Azure{code}" if code else f"AzureHttp{status}",
        non_retryable=True,
    )


@contextmanager
def azure_errors(action: str) -> Iterator[None]:
    """Raise Azure SDK errors from the block as classified ApplicationErrors."""
    try:
        yield
    except AzureError as err:
        raise classify(err, action) from None
