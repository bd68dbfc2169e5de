"""The manager's bookkeeping (``services/streaming/runs.py``): the watchdog's pace, the wake-up signal, and the local
tail of recent events a producing process serves its own readers from."""

from __future__ import annotations

import asyncio

import pytest

from domain.streaming import CompletionToken, StreamEvent
from domain.types import CustomerId, StreamId
from services.streaming.runs import Run, Signal, StreamingConfig

SID = StreamId("st_runs")


def event(seq: int) -> StreamEvent:
    return StreamEvent(SID, seq, "text", {"i": seq})


@pytest.mark.parametrize(
    ("limits", "interval"),
    [
        ((0.4, 0.4, 0.4), 0.1),  # a quarter of the shortest limit
        ((0.0, 0.8, 0.0), 0.2),  # zero means "off", not "shortest"
        ((2.0, 0.6, 3.0), 0.15),
        ((0.01, 0.01, 0.01), 0.01),  # never busier than every 10 ms
    ],
)
def test_the_watchdog_looks_four_times_per_shortest_limit(limits: tuple[float, float, float], interval: float) -> None:
    """sweep_interval_s is a quarter of the shortest positive limit, at least 10 ms (limits here are below the
    producer lease's third, which is one of them)."""
    grace, stall, first = limits
    config = StreamingConfig(resume_grace_s=grace, stall_timeout_s=stall, first_consumer_s=first)
    assert config.sweep_interval_s() == pytest.approx(interval)


@pytest.mark.parametrize(
    ("limits", "interval"), [((30.0, 120.0, 5.0, 30.0), 1.0), ((0.0, 0.0, 0.0, 0.0), 1.0), ((0.0, 0.0, 0.0, 1.2), 0.1)]
)
def test_the_watchdog_pace_counts_the_producer_lease(
    limits: tuple[float, float, float, float], interval: float
) -> None:
    """A third of the producer lease is one of the limits; at most once a second; every limit off: once a second."""
    grace, stall, first, lease = limits
    config = StreamingConfig(
        resume_grace_s=grace, stall_timeout_s=stall, first_consumer_s=first, producer_lease_s=lease
    )
    assert config.sweep_interval_s() == pytest.approx(interval)


async def test_a_signal_wakes_every_waiter_once() -> None:
    """fire() sets the event every current waiter holds; the next waiter gets a fresh, unset one."""
    signal = Signal()
    signal.fire()  # nobody waiting: nothing to wake, nothing remembered
    first, second = signal.waiter(), signal.waiter()
    assert first is second
    assert not first.is_set()
    signal.fire()
    assert first.is_set()
    later = signal.waiter()
    assert later is not first
    assert not later.is_set()


def test_a_run_starts_idle_without_a_token() -> None:
    """A new run has no token (inactive), no consumers, and counts as idle and active-as-of its creation time."""
    run = Run(SID, CustomerId("alice"), "chat", 50.0)
    assert (run.active, run.consumers, run.had_consumer, run.idle_since, run.last_activity) == (
        False,
        0,
        False,
        50.0,
        50.0,
    )
    assert (run.cancel_reason, run.task, run.tail_last) == (None, None, 0)
    run.token = CompletionToken.issue(SID, 1)
    assert run.active


def test_the_tail_serves_every_event_after_a_cursor_up_to_the_limit() -> None:
    """tail_after(n) hands back the consecutive events after n (at most ``limit``), as an open read from n + 1."""
    run = Run(SID, CustomerId("alice"), "chat", 0.0)
    for seq in range(1, 6):
        run.remember(event(seq), capacity=8)
    read = run.tail_after(1, limit=10)
    assert read is not None
    assert [e.seq for e in read.events] == [2, 3, 4, 5]
    assert (read.first_seq, read.last_seq, read.status) == (2, 5, "open")
    limited = run.tail_after(0, limit=2)
    assert limited is not None
    assert [e.seq for e in limited.events] == [1, 2]


def test_a_caught_up_cursor_gets_an_empty_read_at_the_tail() -> None:
    """At or past the newest remembered seq, the tail says so with no events (no log round trip needed)."""
    run = Run(SID, CustomerId("alice"), "chat", 0.0)
    run.remember(event(1), capacity=4)
    run.remember(event(2), capacity=4)
    for cursor in (2, 3):
        read = run.tail_after(cursor, limit=10)
        assert read is not None
        assert (read.events, read.last_seq, read.status) == ((), 2, "open")


def test_the_tail_forgets_beyond_its_capacity_and_defers_to_the_log() -> None:
    """Only the newest ``capacity`` events are kept; a cursor behind them gets None (read the log instead)."""
    run = Run(SID, CustomerId("alice"), "chat", 0.0)
    for seq in range(1, 8):
        run.remember(event(seq), capacity=3)
    assert sorted(run.tail) == [5, 6, 7]
    assert run.tail_after(2, limit=10) is None
    read = run.tail_after(4, limit=10)
    assert read is not None
    assert [e.seq for e in read.events] == [5, 6, 7]


def test_a_publish_still_in_flight_defers_to_the_log() -> None:
    """An event remembered out of order (a later seq first) leaves a hole the tail will not paper over."""
    run = Run(SID, CustomerId("alice"), "chat", 0.0)
    run.remember(event(1), capacity=8)
    run.remember(event(3), capacity=8)
    assert run.tail_last == 3
    assert run.tail_after(1, limit=10) is None
    run.remember(event(2), capacity=8)
    assert run.tail_last == 3
    read = run.tail_after(1, limit=10)
    assert read is not None
    assert [e.seq for e in read.events] == [2, 3]


async def test_a_waiter_taken_before_a_fire_is_woken_by_it() -> None:
    """No lost wake-up: a reader that took its waiter before reading is woken by a fire that comes after."""
    signal = Signal()
    waiter = signal.waiter()
    woken = asyncio.ensure_future(waiter.wait())
    await asyncio.sleep(0)
    signal.fire()
    await asyncio.wait_for(woken, 1.0)
