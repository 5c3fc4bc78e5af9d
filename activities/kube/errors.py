"""Kubernetes API failures as Temporal outcomes: activity policy on top of kubeclient/errors.py.

Activities raise `ApplicationError`s built here, so Temporal retries exactly what can succeed on a
later attempt (conflicts, throttling, server errors, 401/403 while a restarted API server fills
its RBAC caches) and stops on what cannot (other 4xx), with a
message a person can act on. The failure itself is classified by `kubeclient.errors.api_failure`;
messages carry the API server's Status message, never a request body: a request may hold a key.
"""

from __future__ import annotations

from typing import Final

from temporalio.exceptions import ApplicationError

from contracts import failure_types
from kubeclient.errors import ApiErrorKind, api_failure

# Application error types, visible in the Temporal Web UI and to workflow code.
CONFLICT_ERROR: Final = failure_types.KUBE_CONFLICT
UNAVAILABLE_ERROR: Final = failure_types.KUBE_UNAVAILABLE
REJECTED_ERROR: Final = failure_types.KUBE_REJECTED
DENIED_ERROR: Final = failure_types.KUBE_DENIED


def activity_error(exc: BaseException, action: str) -> ApplicationError:
    """The ApplicationError an activity raises for a failed API call; `action` says what it did,
    e.g. "update status of StaticGatewayConfiguration ns/name"."""
    failure = api_failure(exc)
    detail = failure.message or failure.reason
    message = f"{action}: HTTP {failure.status}" + (f": {detail}" if detail else "")
    if failure.kind is ApiErrorKind.CONFLICT:
        return ApplicationError(message, type=CONFLICT_ERROR)
    if failure.kind in (ApiErrorKind.REJECTED, ApiErrorKind.GONE, ApiErrorKind.NOT_FOUND):
        return ApplicationError(message, type=REJECTED_ERROR, non_retryable=True)
    if failure.kind is ApiErrorKind.DENIED:
        # Retried within the activity's policy (a restarted API server denies for seconds);
        # a permission that stays missing fails the pass once the attempts are spent.
        return ApplicationError(message, type=DENIED_ERROR)
    return ApplicationError(message, type=UNAVAILABLE_ERROR, next_retry_delay=failure.retry_after)
