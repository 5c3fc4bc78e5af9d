"""List-then-watch: a resumable stream of object changes from any list/watch source.

The loop lists, emits every listed object as a synthetic ADDED (and a synthetic DELETED for an
object it knew that the new listing lacks, since its deletion happened while nobody watched),
remembers the listing's resourceVersion and watches from there with bookmarks and a server-side
timeout. Every event, bookmarks included, moves the resourceVersion on, so a watch that ends
(server timeout) resumes exactly where it stopped. A 410 Gone (history compacted) or a broken
connection relists; repeated failures back off. Only resourceVersions from a listing, an event
or a bookmark are used: never one guessed from an arbitrary object.

Sources (kube_source.py) do the HTTP; the decisions here are pure functions tested on their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

from kubeclient.errors import ApiErrorKind, api_error_kind

log = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
_EVENT_TYPES: frozenset[str] = frozenset(("ADDED", "MODIFIED", "DELETED"))

RawObject = Mapping[str, Any]


class SourceUnavailable(Exception):
    """The API server could not be reached or failed the request; worth trying again later."""


@dataclass(frozen=True)
class Listing:
    items: tuple[RawObject, ...]
    resource_version: str


class ListWatchSource(Protocol):
    """One kind of object (with its selectors) on one API server."""

    async def list(self) -> Listing: ...

    def watch(self, resource_version: str, timeout_seconds: int) -> AsyncGenerator[RawObject, None]:
        """Raw watch events ({"type", "object"}) from `resource_version` on; the iterator ends
        when the server closes the stream; raises SourceUnavailable when the connection fails."""
        ...


@dataclass(frozen=True)
class WatchEvent:
    type: EventType
    object: RawObject
    synthetic: bool = False  # derived from a listing rather than received from a watch


# --- pure decisions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Emit:
    event: WatchEvent
    resource_version: str


@dataclass(frozen=True)
class Bookmark:
    resource_version: str


@dataclass(frozen=True)
class Expired:
    """410 Gone: the resourceVersion is older than the server's history; relist."""


@dataclass(frozen=True)
class Failed:
    code: int
    message: str


WatchStep = Emit | Bookmark | Expired | Failed


def _metadata(obj: RawObject) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def resource_version_of(obj: RawObject) -> str:
    value = _metadata(obj).get("resourceVersion")
    return value if isinstance(value, str) else ""


def object_key(obj: RawObject) -> str:
    metadata = _metadata(obj)
    namespace = metadata.get("namespace") or ""
    name = metadata.get("name") or ""
    return f"{namespace}/{name}" if namespace else str(name)


def classify_watch_line(raw: RawObject) -> WatchStep:
    """What one line of a watch stream means for the loop."""
    event_type = raw.get("type")
    obj = raw.get("object")
    if not isinstance(obj, Mapping):
        return Failed(0, f"watch event without an object (type {event_type!r})")
    if event_type == "BOOKMARK":
        return Bookmark(resource_version_of(obj))
    if event_type == "ERROR":
        code = obj.get("code")
        message = obj.get("message")
        code = code if isinstance(code, int) else 0
        if api_error_kind(code) is ApiErrorKind.GONE:
            return Expired()
        return Failed(code, message if isinstance(message, str) else "")
    if event_type in _EVENT_TYPES:
        return Emit(WatchEvent(cast(EventType, event_type), obj), resource_version_of(obj))
    return Failed(0, f"unknown watch event type {event_type!r}")


def relist_events(known: Mapping[str, RawObject], listing: Listing) -> list[WatchEvent]:
    """Synthetic events that bring a consumer who saw `known` up to `listing`."""
    listed = {object_key(obj) for obj in listing.items}
    gone = [
        WatchEvent("DELETED", obj, synthetic=True)
        for key, obj in known.items()
        if key not in listed
    ]
    return [*gone, *(WatchEvent("ADDED", obj, synthetic=True) for obj in listing.items)]


def remember(known: dict[str, RawObject], events: Iterable[WatchEvent]) -> None:
    for event in events:
        key = object_key(event.object)
        if event.type == "DELETED":
            known.pop(key, None)
        else:
            known[key] = event.object


@dataclass(frozen=True)
class WatchSettings:
    timeout_seconds: int = 240  # server-side: the watch ends cleanly and is resumed
    backoff_initial: float = 0.2
    backoff_max: float = 10.0

    def backoff(self, failures: int) -> float:
        """Delay before retry number `failures` (1-based) after consecutive failures."""
        if failures <= 0:
            return 0.0
        return float(min(self.backoff_max, self.backoff_initial * 2 ** (failures - 1)))


# --- the loop ------------------------------------------------------------------------------------


async def list_then_watch(
    source: ListWatchSource, settings: WatchSettings | None = None
) -> AsyncGenerator[WatchEvent, None]:
    """Every change of the source's objects, forever; the consumer stops it by closing it."""
    settings = settings or WatchSettings()
    known: dict[str, RawObject] = {}
    failures = 0
    while True:
        if failures:
            await asyncio.sleep(settings.backoff(failures))
        try:
            listing = await source.list()
        except SourceUnavailable as exc:
            failures += 1
            log.warning("list failed (attempt %d): %s", failures, exc)
            continue
        for event in relist_events(known, listing):
            remember(known, (event,))
            yield event
        resource_version = listing.resource_version
        while True:
            received = False
            outcome: WatchStep | None = None
            try:
                # aclosing: leaving early (relist, or the consumer closing us) closes the stream.
                async with aclosing(
                    source.watch(resource_version, settings.timeout_seconds)
                ) as lines:
                    async for raw in lines:
                        received = True
                        step = classify_watch_line(raw)
                        if isinstance(step, Emit):
                            resource_version = step.resource_version or resource_version
                            failures = 0
                            remember(known, (step.event,))
                            yield step.event
                        elif isinstance(step, Bookmark):
                            resource_version = step.resource_version or resource_version
                        else:
                            outcome = step
                            break
            except SourceUnavailable as exc:
                outcome = Failed(0, str(exc))
            if isinstance(outcome, Expired):
                log.info("watch from resourceVersion %s expired; relisting", resource_version)
                break
            if isinstance(outcome, Failed):
                failures += 1
                log.warning("watch failed (%d): %s; relisting", outcome.code, outcome.message)
                break
            # A clean end (the server's timeout): resume from here. A stream that closes
            # without a single line is suspect (a server going down): back off.
            failures = 0 if received else failures + 1
            if failures:
                await asyncio.sleep(settings.backoff(failures))
