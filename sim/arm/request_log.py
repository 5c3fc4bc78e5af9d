"""What the emulator was asked: one entry per ARM request (control and identity calls excluded)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

READ_METHODS = frozenset({"GET", "HEAD"})
OPERATION_TYPES = ("/locations/operations", "/locations/operationresults")


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    resource_type: str | None
    api_version: str | None
    status: int
    if_match: str | None
    timestamp: float

    @property
    def is_poll(self) -> bool:
        """A poll of a long-running operation's status or result."""
        return any(t in (self.resource_type or "").lower() for t in OPERATION_TYPES)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    def __init__(self) -> None:
        self.entries: list[LoggedRequest] = []

    def record(self, entry: LoggedRequest) -> None:
        self.entries.append(entry)

    def clear(self) -> None:
        self.entries.clear()

    def count(
        self,
        method: str | None = None,
        resource_type: str | None = None,
        *,
        include_polls: bool = False,
    ) -> int:
        """Requests matching method and type (full or short type name), polls excluded."""
        n = 0
        for entry in self.entries:
            if entry.is_poll and not include_polls:
                continue
            if method and entry.method != method.upper():
                continue
            if resource_type and not _type_matches(resource_type, entry.resource_type):
                continue
            n += 1
        return n

    def reads(self, resource_type: str | None = None) -> int:
        """GETs of resources and collections (operation polls not counted)."""
        return sum(self.count(m, resource_type) for m in READ_METHODS)

    def writes(self, resource_type: str | None = None) -> int:
        """PUT, PATCH, POST and DELETE requests."""
        return sum(self.count(m, resource_type) for m in ("PUT", "PATCH", "POST", "DELETE"))

    def polls(self) -> int:
        return sum(1 for e in self.entries if e.is_poll)


def _type_matches(wanted: str, actual: str | None) -> bool:
    if actual is None:
        return False
    wanted, actual = wanted.lower(), actual.lower()
    return wanted == actual or wanted == actual.split("/", 1)[-1]
