"""Waiting for ARM long-running operations inside an activity.

While a poller runs, the activity heartbeats `{operation, token}` with the poller's continuation
token (azure-core's token holds the initial response and polling URLs, no credentials). If the
worker dies, the retry finds the token in `activity.info().heartbeat_details` and first waits for
that operation (`resume_interrupted`) instead of planning against a resource still being written
(and a new write would meet 409 AnotherOperationInProgress). Then it reads and plans as usual,
so a token that no longer leads anywhere (the operation failed or is forgotten) only costs the
wait: the retry redoes the work rather than replaying the failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from azure.core.exceptions import AzureError
from azure.core.polling import AsyncLROPoller
from temporalio import activity

T = TypeVar("T")

HEARTBEAT_EVERY: Final = 1.0  # seconds; the SDK throttles what actually reaches the server
_OPERATION: Final = "operation"
_TOKEN: Final = "token"

Begin = Callable[[str | None], Awaitable[AsyncLROPoller[T]]]


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
