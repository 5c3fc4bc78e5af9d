"""The list-then-watch core against a scripted source: what it emits and where it resumes."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kubeclient.list_watch import (
    Bookmark,
    Emit,
    Expired,
    Failed,
    Listing,
    RawObject,
    SourceUnavailable,
    WatchEvent,
    WatchSettings,
    classify_watch_line,
    list_then_watch,
    relist_events,
)

NO_WAIT = WatchSettings(timeout_seconds=30, backoff_initial=0.0, backoff_max=0.0)


def obj(name: str, rv: str, namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": rv}}


def line(event_type: str, o: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "object": o}


def bookmark(rv: str) -> dict[str, Any]:
    return {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": rv}}}


GONE = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}


@dataclass
class ScriptedSource:
    """Answers each list() and watch() with the next scripted reply; records the calls."""

    listings: list[Listing | Exception]
    sessions: list[list[dict[str, Any]] | Exception]
    calls: list[str] = field(default_factory=list)

    async def list(self) -> Listing:
        self.calls.append("list")
        reply = self.listings.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def watch(
        self, resource_version: str, timeout_seconds: int
    ) -> AsyncGenerator[RawObject, None]:
        self.calls.append(f"watch@{resource_version}")
        if not self.sessions:
            raise SourceUnavailable("script exhausted")
        reply = self.sessions.pop(0)
        if isinstance(reply, Exception):
            raise reply
        for item in reply:
            yield item


async def take(source: ScriptedSource, count: int) -> list[tuple[str, str, bool]]:
    events: list[tuple[str, str, bool]] = []
    stream = list_then_watch(source, NO_WAIT)
    async for event in stream:
        events.append((event.type, event.object["metadata"]["name"], event.synthetic))
        if len(events) == count:
            break
    await stream.aclose()
    return events


async def test_listed_objects_arrive_as_synthetic_adds_then_the_watch_starts_at_the_list_rv() -> (
    None
):
    source = ScriptedSource(
        listings=[Listing((obj("a", "5"), obj("b", "6")), "10")],
        sessions=[[line("MODIFIED", obj("a", "11"))]],
    )
    assert await take(source, 3) == [
        ("ADDED", "a", True),
        ("ADDED", "b", True),
        ("MODIFIED", "a", False),
    ]
    assert source.calls == ["list", "watch@10"]


async def test_a_watch_that_times_out_resumes_from_the_last_event_or_bookmark() -> None:
    source = ScriptedSource(
        listings=[Listing((), "10")],
        sessions=[
            [line("ADDED", obj("a", "12")), bookmark("15")],
            [bookmark("17")],
            [line("DELETED", obj("a", "20"))],
        ],
    )
    assert await take(source, 2) == [("ADDED", "a", False), ("DELETED", "a", False)]
    assert source.calls == ["list", "watch@10", "watch@15", "watch@17"]


async def test_410_gone_relists_and_reports_what_vanished_meanwhile() -> None:
    source = ScriptedSource(
        listings=[
            Listing((obj("a", "5"), obj("b", "6")), "10"),
            Listing((obj("b", "6"), obj("c", "30")), "31"),
        ],
        sessions=[[GONE], [line("ADDED", obj("d", "32"))]],
    )
    assert await take(source, 6) == [
        ("ADDED", "a", True),
        ("ADDED", "b", True),
        ("DELETED", "a", True),  # deleted while the history was compacted: never seen otherwise
        ("ADDED", "b", True),
        ("ADDED", "c", True),
        ("ADDED", "d", False),
    ]
    assert source.calls == ["list", "watch@10", "list", "watch@31"]


async def test_a_broken_connection_relists_and_a_failed_list_is_retried() -> None:
    source = ScriptedSource(
        listings=[
            Listing((obj("a", "5"),), "10"),
            SourceUnavailable("connection refused"),
            Listing((obj("a", "5"),), "12"),
        ],
        sessions=[SourceUnavailable("reset by peer"), [line("MODIFIED", obj("a", "13"))]],
    )
    assert await take(source, 3) == [
        ("ADDED", "a", True),
        ("ADDED", "a", True),
        ("MODIFIED", "a", False),
    ]
    assert source.calls == ["list", "watch@10", "list", "list", "watch@12"]


def test_watch_lines_are_classified() -> None:
    assert classify_watch_line(bookmark("7")) == Bookmark("7")
    assert classify_watch_line(GONE) == Expired()
    assert classify_watch_line(line("ADDED", obj("a", "3"))) == Emit(
        WatchEvent("ADDED", obj("a", "3")), "3"
    )
    forbidden = {"type": "ERROR", "object": {"code": 403, "message": "forbidden"}}
    assert classify_watch_line(forbidden) == Failed(403, "forbidden")
    assert isinstance(classify_watch_line({"type": "ADDED"}), Failed)
    assert isinstance(classify_watch_line(line("SURPRISE", obj("a", "3"))), Failed)


def test_relist_keys_objects_by_namespace_and_name() -> None:
    known = {"ns/a": obj("a", "1"), "other/a": obj("a", "2", namespace="other")}
    events = relist_events(known, Listing((obj("a", "1"),), "5"))
    assert [(e.type, e.object["metadata"]["namespace"]) for e in events] == [
        ("DELETED", "other"),
        ("ADDED", "ns"),
    ]


@pytest.mark.parametrize(
    ("failures", "delay"), [(0, 0.0), (1, 0.2), (2, 0.4), (3, 0.8), (10, 10.0)]
)
def test_backoff_doubles_up_to_its_cap(failures: int, delay: float) -> None:
    assert WatchSettings().backoff(failures) == pytest.approx(delay)
