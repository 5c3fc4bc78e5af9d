"""Coalesced signals (watchers/coalesced_signals.py): many marks, few signals, none lost.

The receiver here is a stand-in that counts what it is sent and, when asked, holds a signal on
its way or refuses it the way Temporal does when it is unavailable."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.service import RPCError, RPCStatusCode

from tests.fixtures.waiting import wait_for
from watchers.coalesced_signals import CoalescedSignals


class Receiver:
    def __init__(self) -> None:
        self.received: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.refusals = 0

    async def send(self, target: str) -> None:
        await self.gate.wait()
        if self.refusals:
            self.refusals -= 1
            raise RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")
        self.received.append(target)


async def settled(signals: CoalescedSignals) -> None:
    async def idle() -> bool:
        return signals.pending == 0

    await wait_for(idle, 10, "every lane to finish", every=0.01)


async def test_a_burst_of_marks_is_one_signal_now_and_one_after_it() -> None:
    receiver = Receiver()
    signals = CoalescedSignals(receiver.send, spacing=0.05)
    try:
        receiver.gate.clear()  # the first signal is on its way while the burst arrives
        signals.mark("team-a/egress")
        await asyncio.sleep(0.01)
        for _ in range(99):
            signals.mark("team-a/egress")
        receiver.gate.set()
        await settled(signals)
    finally:
        await signals.close()

    assert receiver.received == ["team-a/egress", "team-a/egress"]


async def test_each_target_is_told_and_a_lone_mark_goes_out_at_once() -> None:
    receiver = Receiver()
    signals = CoalescedSignals(receiver.send, spacing=30.0)
    try:
        signals.mark("team-a/egress")
        signals.mark("team-b/egress")

        async def both() -> bool:
            return len(receiver.received) == 2

        await wait_for(both, 10, "both signals", every=0.01)
    finally:
        await signals.close()

    # Sent without waiting for the spacing, which only separates a target's later signals.
    assert sorted(receiver.received) == ["team-a/egress", "team-b/egress"]


async def test_a_mark_after_the_spacing_is_another_signal() -> None:
    receiver = Receiver()
    signals = CoalescedSignals(receiver.send, spacing=0.01)
    try:
        signals.mark("team-a/egress")
        await settled(signals)
        signals.mark("team-a/egress")
        await settled(signals)
    finally:
        await signals.close()

    assert receiver.received == ["team-a/egress", "team-a/egress"]


async def test_a_refused_signal_is_sent_again_until_it_goes_through() -> None:
    receiver = Receiver()
    receiver.refusals = 2
    signals = CoalescedSignals(receiver.send, spacing=0.01)
    try:
        signals.mark("team-a/egress")
        await settled(signals)
    finally:
        await signals.close()

    assert receiver.received == ["team-a/egress"]
    assert signals.sent == 1


async def test_close_stops_what_is_on_its_way() -> None:
    receiver = Receiver()
    receiver.gate.clear()
    signals = CoalescedSignals(receiver.send)
    signals.mark("team-a/egress")
    await asyncio.sleep(0.01)

    await signals.close()

    assert signals.pending == 0
    receiver.gate.set()
    await asyncio.sleep(0.05)
    assert receiver.received == []


@pytest.mark.parametrize("spacing", [0.0, 0.02])
async def test_marks_made_while_a_lane_ends_are_not_lost(spacing: float) -> None:
    receiver = Receiver()
    signals = CoalescedSignals(receiver.send, spacing=spacing)
    try:
        for round_ in range(50):
            signals.mark("team-a/egress")
            await asyncio.sleep(0.001 * (round_ % 3))
        await settled(signals)
        count = len(receiver.received)
        signals.mark("team-a/egress")
        await settled(signals)
    finally:
        await signals.close()

    assert len(receiver.received) == count + 1
