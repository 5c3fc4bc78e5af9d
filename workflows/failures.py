"""Reading a failure chain (ActivityError -> ApplicationError -> ...) for the user's message."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError, FailureError


def failure_causes(error: BaseException) -> list[str]:
    """Messages along the cause chain, outermost first (e.g. the activity wrapper, then Azure's
    classified error). Pure reads of the exception objects; deterministic on replay."""
    messages: list[str] = []
    current: BaseException | None = error
    while current is not None and len(messages) < 8:
        text = current.message if isinstance(current, FailureError) else str(current)
        messages.append(text or type(current).__name__)
        current = current.__cause__
    return messages


def failure_types(error: BaseException) -> list[str]:
    """The ApplicationError types along the cause chain, outermost first (for
    contracts.failure_types.failure_reason)."""
    types: list[str] = []
    current: BaseException | None = error
    depth = 0
    while current is not None and depth < 8:
        if isinstance(current, ApplicationError) and current.type:
            types.append(current.type)
        current = current.__cause__
        depth += 1
    return types
