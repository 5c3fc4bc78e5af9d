"""Reading a failure chain (ActivityError -> ApplicationError -> ...) for the user's message."""

from __future__ import annotations

from temporalio.exceptions import FailureError


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
