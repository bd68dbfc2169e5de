"""The StreamLog contract, run against the in-memory adapter and Redis Streams so they cannot drift."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from domain.errors import CompletionOwnershipError, NotFoundError
from domain.streaming import Outcome, StreamClosedError, StreamInfo
from domain.types import StreamId
from ports.stream_log import StreamLog
from tests.fakes.streaming import ALICE, stream_log

SID = StreamId("st_contract")


@pytest.fixture(params=["memory", "redis"])
async def log(request: pytest.FixtureRequest) -> AsyncIterator[StreamLog]:
    async with stream_log(request.param, max_events=1000) as instance:
        await instance.create(StreamInfo(SID, ALICE, "chat", created_at=1.0, meta={"model": "m"}))
        yield instance


async def test_create_then_get_returns_the_info(log: StreamLog) -> None:
    """A created stream is open, generation 0, with owner, kind and meta as given."""
    info = await log.get(SID)
    assert info is not None
    assert (info.owner, info.kind, info.generation, info.status, info.last_seq) == (ALICE, "chat", 0, "open", 0)
    assert info.meta == {"model": "m"}
    assert await log.get(StreamId("st_unknown")) is None


async def test_appends_get_consecutive_seqs_and_read_from_cursor(log: StreamLog) -> None:
    """Seqs are 1, 2, 3 ...; a read after N returns exactly the rest, payloads intact."""
    gen = await log.advance_generation(SID)
    seqs = [(await log.append(SID, gen, "text", {"text": f"t{i}", "n": [i, None]})).seq for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    read = await log.read(SID, 2, 100)
    assert [e.seq for e in read.events] == [3, 4, 5]
    assert read.events[0].payload == {"text": "t2", "n": [2, None]}
    assert (read.first_seq, read.last_seq, read.status) == (1, 5, "open")
    assert [e.seq for e in (await log.read(SID, 0, 2)).events] == [1, 2]


async def test_finalize_closes_and_nothing_follows(log: StreamLog) -> None:
    """The terminal is the last event; a later append or second finalize is refused and writes nothing."""
    gen = await log.advance_generation(SID)
    await log.append(SID, gen, "text", {"text": "a"})
    terminal = await log.finalize(SID, gen, Outcome.done({"ok": True}))
    assert (terminal.seq, terminal.type, terminal.payload) == (2, "done", {"ok": True})
    with pytest.raises(StreamClosedError):
        await log.append(SID, gen, "text", {"text": "late"})
    with pytest.raises(CompletionOwnershipError):
        await log.finalize(SID, gen, Outcome.cancelled("again"))
    with pytest.raises(StreamClosedError):
        await log.advance_generation(SID)
    read = await log.read(SID, 0, 100)
    assert [e.type for e in read.events] == ["text", "done"]
    assert read.status == "done"


async def test_stale_generation_is_fenced(log: StreamLog) -> None:
    """After the generation moves on, the old writer can neither append nor finalize."""
    old = await log.advance_generation(SID)
    new = await log.advance_generation(SID)
    assert new == old + 1
    with pytest.raises(CompletionOwnershipError):
        await log.append(SID, old, "text", {})
    with pytest.raises(CompletionOwnershipError):
        await log.finalize(SID, old, Outcome.done())
    info = await log.get(SID)
    assert info is not None
    assert (info.last_seq, info.status) == (0, "open")
    assert (await log.append(SID, new, "text", {})).seq == 1


async def test_unknown_stream_is_not_found(log: StreamLog) -> None:
    """Reads and writes on a stream that does not exist raise NotFoundError."""
    other = StreamId("st_missing")
    with pytest.raises(NotFoundError):
        await log.read(other, 0, 10)
    with pytest.raises(NotFoundError):
        await log.append(other, 1, "text", {})
    with pytest.raises(NotFoundError):
        await log.advance_generation(other)


async def test_trim_leaves_a_visible_hole(log: StreamLog) -> None:
    """After trimming, first_seq moves up so a reader behind it knows events are missing."""
    gen = await log.advance_generation(SID)
    for i in range(10):
        await log.append(SID, gen, "text", {"i": i})
    await log.trim(SID, 3)
    read = await log.read(SID, 0, 100)
    assert [e.seq for e in read.events] == [8, 9, 10]
    assert read.first_seq == 8
    assert read.missing_after(0)
    assert not read.missing_after(7)


async def test_wait_wakes_on_append_and_times_out_otherwise(log: StreamLog) -> None:
    """wait() returns True once a later event exists, False when none comes in time."""
    gen = await log.advance_generation(SID)
    assert await log.wait(SID, 0, 0.05) is False
    waiter = asyncio.create_task(log.wait(SID, 0, 2.0))
    await asyncio.sleep(0.05)
    await log.append(SID, gen, "text", {})
    assert await asyncio.wait_for(waiter, 3.0) is True
    assert await log.wait(SID, 0, 0.05) is True


async def test_touch_records_a_reader(log: StreamLog) -> None:
    """touch() sets last_seen."""
    await log.touch(SID)
    info = await log.get(SID)
    assert info is not None
    assert info.last_seen > 0


async def test_expire_forgets_the_stream(log: StreamLog) -> None:
    """expire(0) removes it at once; a short TTL removes it after the TTL."""
    gen = await log.advance_generation(SID)
    await log.append(SID, gen, "text", {})
    await log.expire(SID, 0.15)
    assert await log.get(SID) is not None
    await asyncio.sleep(0.3)
    assert await log.get(SID) is None
    await log.create(StreamInfo(StreamId("st_two"), ALICE))
    await log.expire(StreamId("st_two"), 0)
    assert await log.get(StreamId("st_two")) is None
