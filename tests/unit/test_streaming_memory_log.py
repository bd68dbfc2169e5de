"""What only the in-memory stream log does (the contract suite covers what both logs do): batched trimming, the
periodic purge of expired streams, waits that end when a stream changes or goes away, its defaults, and the byte
accounting behind its bound on finished streams."""

from __future__ import annotations

import asyncio

import pytest

from adapters.memory.stream_log import _EVENT_OVERHEAD, InMemoryStreamLog
from domain.errors import CompletionOwnershipError, NotFoundError
from domain.streaming import (
    DEFAULT_MAX_ATTACHMENT_BYTES,
    AttachmentTooLargeError,
    Outcome,
    StreamInfo,
    producer_lost,
)
from domain.types import CustomerId, JsonValue, StreamId
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


async def test_attachments_count_towards_the_finished_bytes_bound() -> None:
    """A finished stream's attachments count with their length, so a few large ones evict older finished streams."""
    log = InMemoryStreamLog(max_finished_bytes=10_000)
    sizes = []
    for name, data in (("st_plain", None), ("st_media", b"\x00" * 3000)):
        stream_id = StreamId(name)
        await log.create(StreamInfo(stream_id, ALICE))
        gen = await log.advance_generation(stream_id)
        before = log.finished_bytes
        await log.append(stream_id, gen, "audio", {}, data)
        await log.finalize(stream_id, gen, Outcome.done())
        sizes.append(log.finished_bytes - before)
    assert sizes[1] - sizes[0] == 3000
    for i in range(3):  # 3 more media streams: past 10 000 bytes the oldest finished ones go
        stream_id = StreamId(f"st_more{i}")
        await log.create(StreamInfo(stream_id, ALICE))
        gen = await log.advance_generation(stream_id)
        await log.append(stream_id, gen, "audio", {}, b"\x01" * 3000)
        await log.finalize(stream_id, gen, Outcome.done())
    assert log.finished_bytes <= 10_000
    assert await log.get(StreamId("st_plain")) is None
    assert await log.get(StreamId("st_more2")) is not None


# --- the defaults, the byte accounting and the exact edges of purge, retire and reap ------------------------------


async def _finish(log: InMemoryStreamLog, name: str, payload: dict[str, JsonValue] | None = None) -> StreamId:
    """Create ``name``, append one event with ``payload``, end it with ``done``."""
    stream_id = StreamId(name)
    await log.create(StreamInfo(stream_id, ALICE))
    gen = await log.advance_generation(stream_id)
    await log.append(stream_id, gen, "text", payload or {})
    await log.finalize(stream_id, gen, Outcome.done())
    return stream_id


async def test_the_defaults_are_the_streaming_settings_defaults() -> None:
    """Built without arguments, the log keeps streams an hour, leases for 10 s, ~10 000 events per stream, 10 000
    finished streams and attachments up to 1 MiB: the defaults of ``streaming.*``."""
    clock = FakeClock()
    log = InMemoryStreamLog(clock=clock)
    await log.create(StreamInfo(SID, ALICE))
    gen = await log.advance_generation(SID)
    info = await log.get(SID)
    assert info is not None
    assert info.lease_until == clock() + 10.0
    for _ in range(11_250):  # 10 000 plus the slack of 1 250: not trimmed yet
        await log.append(SID, gen, "text", {})
    assert (await log.read(SID, 0, 1)).first_seq == 1
    await log.append(SID, gen, "text", {}, b"a" * DEFAULT_MAX_ATTACHMENT_BYTES)
    assert (await log.read(SID, 0, 1)).first_seq == 11_252 - 10_000
    with pytest.raises(AttachmentTooLargeError):
        await log.append(SID, gen, "text", {}, b"a" * (DEFAULT_MAX_ATTACHMENT_BYTES + 1))
    clock.advance(3599.5)
    assert await log.get(SID) is not None
    clock.advance(0.5)
    assert await log.get(SID) is None
    finished = [await _finish(log, f"st_{i}") for i in range(10_001)]
    assert await log.get(finished[0]) is None
    assert await log.get(finished[1]) is not None


async def test_finished_bytes_count_exactly_what_finished_streams_hold() -> None:
    """0 at first and while streams are live; each finished stream adds its events' estimate (overhead, string
    lengths, a word per other value); forgetting one takes exactly its share away, forgetting a live one nothing."""
    log = InMemoryStreamLog()
    assert log.finished_bytes == 0
    live = StreamId("st_live")
    await log.create(StreamInfo(live, ALICE))
    gen = await log.advance_generation(live)
    await log.append(live, gen, "text", {"text": "abc"})
    assert log.finished_bytes == 0  # a live stream is not counted
    small = await _finish(log, "st_small", {"text": "abc"})
    assert log.finished_bytes == 2 * _EVENT_OVERHEAD + 3  # the text event and the terminal `done` ({})
    large = await _finish(log, "st_large", {"text": "x" * 1000, "n": 7, "ok": True})
    assert log.finished_bytes == 4 * _EVENT_OVERHEAD + 3 + 1000 + 2 * 16
    await log.expire(live, 0)
    assert log.finished_bytes == 4 * _EVENT_OVERHEAD + 1035
    await log.expire(small, 0)
    assert log.finished_bytes == 2 * _EVENT_OVERHEAD + 1032
    await log.expire(large, 0)
    assert log.finished_bytes == 0


async def test_the_finished_bounds_are_inclusive_and_zero_keeps_none() -> None:
    """Exactly max_finished_bytes is still within the bound; a byte less evicts. max_finished 0 forgets every
    stream as it finishes, never a live one."""
    probe = InMemoryStreamLog()
    await _finish(probe, "st_probe", {"text": "abc"})
    size = probe.finished_bytes
    exact = InMemoryStreamLog(max_finished_bytes=size)
    assert await exact.get(await _finish(exact, "st_a", {"text": "abc"})) is not None
    under = InMemoryStreamLog(max_finished_bytes=size - 1)
    assert await under.get(await _finish(under, "st_a", {"text": "abc"})) is None
    none_kept = InMemoryStreamLog(max_finished=0)
    await none_kept.create(StreamInfo(SID, ALICE))
    assert await none_kept.get(await _finish(none_kept, "st_b")) is None
    assert await none_kept.get(SID) is not None


async def test_the_purge_runs_on_the_first_create_then_once_a_second_to_the_tick() -> None:
    """The first create purges (whatever the clock reads), the next purge comes exactly 1 s later, and it forgets a
    stream whose TTL ends exactly then."""
    clock = FakeClock(0.5)
    log = InMemoryStreamLog(ttl_s=0.25, clock=clock)
    await log.create(StreamInfo(StreamId("st_a"), ALICE))  # purges now: the next purge is due at 1.5
    clock.advance(0.75)  # 1.25: st_a expired at 0.75, but no purge is due
    await log.create(StreamInfo(StreamId("st_b"), ALICE))  # expires at exactly 1.5
    assert len(log) == 2
    clock.advance(0.25)  # 1.5: a purge is due, and st_b's TTL ends right now
    await log.create(StreamInfo(StreamId("st_c"), ALICE))
    assert len(log) == 1


async def test_reap_takes_a_lease_that_ends_exactly_now_or_early_in_the_clock() -> None:
    """A lease is lapsed once the log clock reaches lease_until (not only past it), and any lease_until > 0 counts,
    however small the clock's origin makes it."""
    clock = FakeClock()
    log = InMemoryStreamLog(lease_s=10.0, clock=clock)
    await log.create(StreamInfo(SID, ALICE))
    await log.advance_generation(SID)
    clock.advance(10.0)
    assert await log.reap(SID, producer_lost(10.0)) is not None
    early = FakeClock(0.0)
    small = InMemoryStreamLog(lease_s=0.5, clock=early)
    await small.create(StreamInfo(SID, ALICE))
    await small.advance_generation(SID)
    early.advance(2.0)
    assert await small.reap(SID, producer_lost(0.5)) is not None


async def test_a_second_finalize_names_the_stream_and_its_status() -> None:
    """Finalizing an ended stream is refused with the stream and the status it ended with."""
    log = await _log()
    gen = await log.advance_generation(SID)
    await log.finalize(SID, gen, Outcome.error("x", "y"))
    with pytest.raises(CompletionOwnershipError, match="already ended") as refused:
        await log.finalize(SID, gen, Outcome.done())
    assert refused.value.context == {"stage": "complete", "stream_id": SID, "status": "error"}
