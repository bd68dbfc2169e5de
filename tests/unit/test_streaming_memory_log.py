"""What only the in-memory stream log does (the contract suite covers what both logs do): batched trimming, the
periodic purge of expired streams, and waits that end when a stream changes or goes away."""

from __future__ import annotations

import asyncio

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from domain.errors import NotFoundError
from domain.streaming import Outcome, StreamInfo
from domain.types import CustomerId, StreamId
from tests.fakes.clock import FakeClock

SID = StreamId("st_memory")
ALICE = CustomerId("alice")


async def _log(**kwargs: object) -> InMemoryStreamLog:
    log = InMemoryStreamLog(**kwargs)  # type: ignore[arg-type]
    await log.create(StreamInfo(SID, ALICE))
    return log


def test_max_events_must_be_positive() -> None:
    """A log that may keep no event at all is refused."""
    with pytest.raises(ValueError, match="max_events"):
        InMemoryStreamLog(max_events=0)
    InMemoryStreamLog(max_events=1)


async def test_trimming_waits_for_the_slack_then_keeps_max_events() -> None:
    """Up to max_events + slack (at least 16) events stay; one more trims back to the newest max_events."""
    log = await _log(max_events=4)
    gen = await log.advance_generation(SID)
    for _ in range(20):
        await log.append(SID, gen, "text", {})
    assert (await log.read(SID, 0, 100)).first_seq == 1
    await log.append(SID, gen, "text", {})
    read = await log.read(SID, 0, 100)
    assert [e.seq for e in read.events] == [18, 19, 20, 21]
    assert read.first_seq == 18


async def test_the_slack_grows_with_max_events() -> None:
    """The batch is an eighth of max_events when that is more than 16."""
    log = await _log(max_events=200)
    gen = await log.advance_generation(SID)
    for _ in range(225):
        await log.append(SID, gen, "text", {})
    assert (await log.read(SID, 0, 1)).first_seq == 1
    await log.append(SID, gen, "text", {})
    assert (await log.read(SID, 0, 1)).first_seq == 27


async def test_reads_from_inside_a_trimmed_log_start_at_the_cursor() -> None:
    """After trimming, a read after a retained seq returns exactly what follows it; limit 0 returns nothing."""
    log = await _log()
    gen = await log.advance_generation(SID)
    for _ in range(10):
        await log.append(SID, gen, "text", {})
    await log.trim(SID, 4)
    assert [e.seq for e in (await log.read(SID, 8, 10)).events] == [9, 10]
    assert [e.seq for e in (await log.read(SID, 0, 2)).events] == [7, 8]
    assert (await log.read(SID, 0, 0)).events == ()
    await log.trim(SID, 0)  # keeps at least one
    assert [e.seq for e in (await log.read(SID, 0, 10)).events] == [10]


async def test_expired_streams_are_purged_at_most_once_a_second() -> None:
    """create() sweeps out every expired stream, but no more often than once a second."""
    clock = FakeClock()
    log = await _log(ttl_s=10.0, clock=clock)
    clock.advance(11.0)
    await log.create(StreamInfo(StreamId("st_second"), ALICE))
    assert len(log) == 1  # the first one expired and was purged
    await log.create(StreamInfo(StreamId("st_third"), ALICE))  # no purge: the last was just now
    clock.advance(10.5)  # both expired; the last purge was 10.5 s ago, so this create purges them
    await log.create(StreamInfo(StreamId("st_fourth"), ALICE))
    assert len(log) == 1
    clock.advance(0.5)
    await log.create(StreamInfo(StreamId("st_fifth"), ALICE))
    clock.advance(9.6)  # st_fourth expired 0.1 s ago; the last purge was 10.1 s ago: purged
    await log.create(StreamInfo(StreamId("st_sixth"), ALICE))
    assert len(log) == 2
    clock.advance(0.5)  # st_fifth expired 0.1 s ago, but the last purge was 0.5 s ago: it stays until touched
    await log.create(StreamInfo(StreamId("st_seventh"), ALICE))
    assert len(log) == 3


async def test_an_expired_stream_is_dropped_when_touched() -> None:
    """Any access to a stream past its TTL drops it: get gives None, and it no longer counts."""
    clock = FakeClock()
    log = await _log(ttl_s=10.0, clock=clock)
    clock.advance(10.0)
    assert await log.get(SID) is None
    assert len(log) == 0
    with pytest.raises(NotFoundError):
        await log.touch(SID)


async def test_wait_returns_at_once_when_there_is_news() -> None:
    """wait() is True without waiting when an event after the cursor exists or the stream has ended."""
    log = await _log()
    gen = await log.advance_generation(SID)
    await log.append(SID, gen, "text", {})
    assert await log.wait(SID, 0, 0.0) is True
    assert await log.wait(SID, 1, 0.0) is False
    await log.finalize(SID, gen, Outcome.done())
    assert await log.wait(SID, 5, 0.0) is True


async def test_every_waiter_wakes_on_an_append_and_on_expiry() -> None:
    """Several readers waiting on one stream all wake on the next append; a forced expiry wakes them too."""
    log = await _log()
    gen = await log.advance_generation(SID)
    waiters = [asyncio.ensure_future(log.wait(SID, 0, 5.0)) for _ in range(3)]
    await asyncio.sleep(0)
    await log.append(SID, gen, "text", {})
    assert await asyncio.wait_for(asyncio.gather(*waiters), 2.0) == [True, True, True]
    waiting = asyncio.ensure_future(log.wait(SID, 1, 5.0))
    await asyncio.sleep(0)
    await log.expire(SID, 0)
    assert await asyncio.wait_for(waiting, 2.0) is True
    assert await log.get(SID) is None


async def test_a_touch_is_stamped_with_the_log_clock() -> None:
    """last_seen is the log's own clock at the touch."""
    clock = FakeClock(500.0)
    log = await _log(clock=clock)
    clock.advance(2.5)
    await log.touch(SID)
    info = await log.get(SID)
    assert info is not None
    assert info.last_seen == 502.5
