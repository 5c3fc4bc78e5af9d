"""ARM-shaped errors: every refusal the emulator makes is one of these, rendered as
{"error": {"code", "message", "details"?}} so the SDKs map them exactly as they map Azure's."""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """An ARM error response (status, code, message)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def bad_request(message: str, code: str = "InvalidRequestFormat") -> ArmError:
    return ArmError(400, code, message)


def not_found(resource_id: str, kind: str = "ResourceNotFound") -> ArmError:
    return ArmError(404, kind, f"The Resource '{resource_id}' was not found.")


def invalid_reference(missing_id: str, referenced_by: str) -> ArmError:
    return ArmError(
        400,
        "InvalidResourceReference",
        f"Resource {missing_id} referenced by resource {referenced_by} was not found. "
        "Please make sure that the referenced resource exists, and that both resources are in "
        "the same region.",
        details=[],
    )


def another_operation_in_progress(resource_id: str) -> ArmError:
    return ArmError(
        409,
        "AnotherOperationInProgress",
        f"Another operation on this or dependent resource is in progress. To retry later, "
        f"use the same request. Resource: {resource_id}",
    )
