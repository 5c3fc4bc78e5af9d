"""Waiting for ARM long-running operations inside an activity.

While a poller runs, the activity heartbeats `{operation, token}` with the poller's continuation
token (azure-core's token holds the initial response and polling URLs, no credentials). If the
worker dies, the retry finds the token in `activity.info().heartbeat_details` and first waits for
that operation (`resume_interrupted`) instead of planning against a resource still being written
(and a new write would meet 409 AnotherOperationInProgress). Then it reads and plans as usual,
so a token that no longer leads anywhere (the operation failed or is forgotten) only costs the
wait: the retry redoes the work rather than replaying the failure.

A write whose answer never arrived (the connection dropped after ARM accepted it, or the answer
could not be parsed) left no token. It is not sent again blindly: every write is planned from a
read, and `require_settled` turns a read showing a running operation (provisioningState
Creating/Updating/Deleting) into a retryable error, so the retry waits for that operation and
then plans from what it wrote, which usually needs no second write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

from azure.core.exceptions import AzureError
from azure.core.polling import AsyncLROPoller
from temporalio import activity

from activities.azure import errors

T = TypeVar("T")

HEARTBEAT_EVERY: Final = 1.0  # seconds; the SDK throttles what actually reaches the server
_OPERATION: Final = "operation"
_TOKEN: Final = "token"

Begin = Callable[[str | None], Awaitable[AsyncLROPoller[T]]]

# provisioningState while an operation runs on the resource (ARM's and the compute RP's words).
_RUNNING_STATES: Final = frozenset({"creating", "updating", "deleting", "migrating"})


def running_state(resource: Mapping[str, Any] | None) -> str | None:
    """The provisioningState of `resource` as read if an operation is running on it, else None."""
    if resource is None:
        return None
    props = resource.get("properties")
    state = props.get("provisioningState") if isinstance(props, Mapping) else None
    if isinstance(state, str) and state.lower() in _RUNNING_STATES:
        return state
    return None


def require_settled(what: str, resource: Mapping[str, Any] | None) -> None:
    """Raise a retryable error when `resource` (as just read) has an operation running."""
    state = running_state(resource)
    if state is not None:
        raise errors.operation_in_progress(what, state)


def resume_token(operation: str) -> str | None:
    """The continuation token a previous attempt heartbeated for `operation`, if any."""
    if not activity.in_activity():
        return None
    details = activity.info().heartbeat_details
    if not details:
        return None
    last = details[0]
    if (
        isinstance(last, dict)
        and last.get(_OPERATION) == operation
        and isinstance(last.get(_TOKEN), str)
    ):
        return str(last[_TOKEN])
    return None


def _heartbeat(operation: str, token: str | None) -> None:
    if activity.in_activity():
        details: dict[str, Any] = {_OPERATION: operation, _TOKEN: token}
        activity.heartbeat(details)


async def wait(operation: str, poller: AsyncLROPoller[T]) -> T:
    """The poller's result, heartbeating its continuation token until it is done."""
    token = poller.continuation_token()
    _heartbeat(operation, token)
    result = asyncio.ensure_future(poller.result())
    try:
        while True:
            done, _ = await asyncio.wait({result}, timeout=HEARTBEAT_EVERY)
            if done:
                break
            _heartbeat(operation, token)
    finally:
        if not result.done():
            result.cancel()
    try:
        value = result.result()
    finally:
        # Nothing left to resume, whatever the outcome.
        _heartbeat(operation, None)
    return value


async def resume_interrupted(operation: str, begin: Begin[Any]) -> bool:
    """Wait for `operation` if a previous attempt of this activity started it and heartbeated
    its token; call this before reading the state the write will be planned from, so the plan
    sees the finished write. True when such an operation was found and ended well."""
    token = resume_token(operation)
    if token is None:
        return False
    try:
        await wait(operation, await begin(token))
    except (AzureError, ValueError):
        # Failed or forgotten: the activity plans again from what it reads now.
        activity.logger.info("the interrupted %s did not complete; planning afresh", operation)
        return False
    return True


async def run(operation: str, begin: Begin[T]) -> T:
    """Issue one long-running write (`begin(None)`) and wait for it, heartbeating its token
    under the name `operation` (e.g. "PUT <resource id>")."""
    return await wait(operation, await begin(None))
