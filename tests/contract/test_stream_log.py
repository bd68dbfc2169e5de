"""The StreamLog contract, run against the in-memory adapter and Redis Streams so they cannot drift."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from adapters.redis.stream_log import RedisStreamLog
from domain.errors import CompletionOwnershipError, NotFoundError
from domain.streaming import AttachmentTooLargeError, Outcome, StreamClosedError, StreamInfo
from domain.types import StreamId
from ports.stream_log import StreamLog
from tests.fakes.clock import FakeClock
from tests.fakes.streaming import ALICE, BOB, redis_log, stream_log
from tests.support.services import require_service

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


# --- generations, creation, expiry and trimming, with a clock both logs obey -------------------------------------


class Aged:
    """A log plus a way to let time pass for its TTLs: a fake clock for memory, shortened key TTLs for Redis."""

    def __init__(self, log: StreamLog, ttl_s: float, clock: FakeClock | None) -> None:
        self.log = log
        self.ttl_s = ttl_s
        self._clock = clock

    async def age(self, seconds: float) -> None:
        """Let ``seconds`` pass for every stream's time to live."""
        if self._clock is not None:
            self._clock.advance(seconds)
            return
        assert isinstance(self.log, RedisStreamLog)
        client = self.log._client
        for key in self.log._keys(SID):
            left = await client.pttl(key)
            if left > 0:
                if left - seconds * 1000 <= 0:
                    await client.delete(key)
                else:
                    await client.pexpire(key, int(left - seconds * 1000))

    async def remaining_s(self) -> float:
        """Seconds before the stream is forgotten (its shortest key, on Redis)."""
        if self._clock is not None:
            assert isinstance(self.log, InMemoryStreamLog)
            return self.log._streams[SID].expires_at - self._clock()
        assert isinstance(self.log, RedisStreamLog)
        ttls = [await self.log._client.pttl(key) for key in self.log._keys(SID)]
        return min(t for t in ttls if t != -2) / 1000  # -2: the log key before the first event


@pytest.fixture(params=["memory", "redis"])
async def aged(request: pytest.FixtureRequest) -> AsyncIterator[Aged]:
    ttl_s = 60.0
    if request.param == "memory":
        clock = FakeClock()
        log = InMemoryStreamLog(max_events=4, ttl_s=ttl_s, clock=clock)
        await log.create(StreamInfo(SID, ALICE))
        yield Aged(log, ttl_s, clock)
        return
    async with redis_log(require_service("redis"), max_events=4, ttl_s=ttl_s) as redis:
        await redis.create(StreamInfo(SID, ALICE))
        yield Aged(redis, ttl_s, None)


async def test_a_future_generation_is_refused_like_a_stale_one(log: StreamLog) -> None:
    """A writer claiming a generation the log never issued can neither append nor finalize."""
    gen = await log.advance_generation(SID)
    with pytest.raises(CompletionOwnershipError):
        await log.append(SID, gen + 1, "text", {})
    with pytest.raises(CompletionOwnershipError):
        await log.finalize(SID, gen + 1, Outcome.done())
    info = await log.get(SID)
    assert info is not None
    assert (info.generation, info.last_seq, info.status) == (gen, 0, "open")


async def test_generations_count_up_by_one(log: StreamLog) -> None:
    """Each advance issues the next generation, starting from the one the stream was created with."""
    assert [await log.advance_generation(SID) for _ in range(3)] == [1, 2, 3]
    info = await log.get(SID)
    assert info is not None
    assert info.generation == 3


async def test_create_never_overwrites_an_existing_stream(log: StreamLog) -> None:
    """Creating an id that exists raises and leaves the stream (owner, meta, generation, events) as it was."""
    gen = await log.advance_generation(SID)
    await log.append(SID, gen, "text", {"text": "kept"})
    with pytest.raises(ValueError, match="exists"):
        await log.create(StreamInfo(SID, BOB, "other", meta={"model": "x"}))
    info = await log.get(SID)
    assert info is not None
    assert (info.owner, info.kind, info.meta, info.generation, info.last_seq) == (ALICE, "chat", {"model": "m"}, gen, 1)
    assert [e.payload for e in (await log.read(SID, 0, 10)).events] == [{"text": "kept"}]


async def test_a_new_stream_starts_open_and_unseen(log: StreamLog) -> None:
    """A fresh stream is open, has no reader recorded yet, and nothing to read."""
    other = StreamId("st_fresh")
    await log.create(StreamInfo(other, ALICE))
    info = await log.get(other)
    assert info is not None
    assert (info.status, info.last_seen, info.last_seq) == ("open", 0.0, 0)
    read = await log.read(other, 0, 10)
    assert (read.events, read.first_seq, read.last_seq, read.status) == ((), 0, 0, "open")


@pytest.mark.parametrize(
    ("outcome", "status"),
    [(Outcome.done(), "done"), (Outcome.error("x", "y"), "error"), (Outcome.cancelled("client"), "cancelled")],
)
async def test_each_outcome_reads_back_as_its_own_status(log: StreamLog, outcome: Outcome, status: str) -> None:
    """done, error and cancelled each close the stream with their own status, in get() and in read(), for good."""
    gen = await log.advance_generation(SID)
    await log.finalize(SID, gen, outcome)
    info = await log.get(SID)
    assert info is not None
    assert info.status == status
    read = await log.read(SID, 0, 10)
    assert read.status == status
    assert [(e.type, e.payload) for e in read.events] == [(outcome.type, outcome.payload)]
    with pytest.raises(StreamClosedError):
        await log.append(SID, gen, "text", {})
    with pytest.raises(StreamClosedError):
        await log.advance_generation(SID)  # nobody takes over an ended stream, however it ended


async def test_touch_records_when_and_never_resurrects(aged: Aged) -> None:
    """touch() stamps last_seen with the current time; on an expired stream it brings nothing back."""
    await aged.log.touch(SID)
    info = await aged.log.get(SID)
    assert info is not None
    assert info.last_seen > 1.0
    await aged.log.expire(SID, 0)
    with contextlib.suppress(NotFoundError):
        await aged.log.touch(SID)
    assert await aged.log.get(SID) is None


async def test_a_stream_expires_ttl_after_its_last_write(aged: Aged) -> None:
    """A created stream carries the TTL; once it has passed, the stream is gone for get, read and write."""
    assert 0 < await aged.remaining_s() <= aged.ttl_s
    await aged.age(aged.ttl_s / 2)
    assert await aged.log.get(SID) is not None
    await aged.age(aged.ttl_s / 2 + 1)
    assert await aged.log.get(SID) is None
    with pytest.raises(NotFoundError):
        await aged.log.read(SID, 0, 10)
    with pytest.raises(NotFoundError):
        await aged.log.advance_generation(SID)


async def test_writes_refresh_the_ttl(aged: Aged) -> None:
    """An append, and the terminal write, each give the stream its whole TTL again."""
    gen = await aged.log.advance_generation(SID)
    await aged.log.append(SID, gen, "text", {})
    await aged.age(aged.ttl_s - 5)
    await aged.log.append(SID, gen, "text", {})
    assert await aged.remaining_s() > aged.ttl_s - 5
    await aged.age(aged.ttl_s - 5)
    await aged.log.finalize(SID, gen, Outcome.done())
    assert await aged.remaining_s() > aged.ttl_s - 5
    await aged.age(aged.ttl_s - 5)
    assert (await aged.log.read(SID, 0, 10)).last_seq == 3  # still there, 2 x (ttl - 5) after its last append


async def test_a_short_expire_then_its_passing_forgets_the_stream(aged: Aged) -> None:
    """expire(t) sets the time to live to t, whatever it was, and the stream is gone once t has passed."""
    await aged.log.expire(SID, 10)
    assert 0 < await aged.remaining_s() <= 10
    await aged.age(11)
    assert await aged.log.get(SID) is None


async def test_appending_far_past_max_events_trims_the_oldest(aged: Aged) -> None:
    """With a small max_events the log drops old events by itself; seqs keep counting and readers see the hole."""
    gen = await aged.log.advance_generation(SID)
    for i in range(300):
        await aged.log.append(SID, gen, "text", {"i": i})
    read = await aged.log.read(SID, 0, 1000)
    assert read.last_seq == 300
    assert read.missing_after(0)
    assert len(read.events) < 300
    assert [e.seq for e in read.events] == list(range(read.first_seq, 301))


# --- binary attachments: raw bytes beside the JSON payload, bounded, never on a terminal event ---------------------

EVERY_BYTE = bytes(range(256))
SMALL_CAP = 1024


@pytest.fixture(params=["memory", "redis"])
async def capped(request: pytest.FixtureRequest) -> AsyncIterator[StreamLog]:
    async with stream_log(request.param, max_events=1000, max_attachment_bytes=SMALL_CAP) as instance:
        await instance.create(StreamInfo(SID, ALICE))
        yield instance


async def test_attachments_round_trip_byte_for_byte(log: StreamLog) -> None:
    """Every byte value (NUL, CR/LF, invalid UTF-8 ...) reads back exactly as appended; no attachment reads as None,
    an empty one as b""; the payload beside it is intact."""
    gen = await log.advance_generation(SID)
    chunks = [EVERY_BYTE, b"", None, b"\x00", b"\xff\xfe\r\n\x00" * 100, EVERY_BYTE[::-1] * 16]
    appended = [await log.append(SID, gen, "audio", {"i": i}, chunk) for i, chunk in enumerate(chunks)]
    assert [event.data for event in appended] == chunks
    read = await log.read(SID, 0, 100)
    assert [event.data for event in read.events] == chunks
    assert [event.payload for event in read.events] == [{"i": i} for i in range(len(chunks))]
    assert all(type(event.data) is bytes for event in read.events if event.data is not None)
    assert [event.data for event in (await log.read(SID, 3, 2)).events] == chunks[3:5]  # from a cursor too


async def test_an_attachment_is_copied_when_appended(log: StreamLog) -> None:
    """A bytearray appended, then changed by its owner, reads back as it was at the append."""
    gen = await log.advance_generation(SID)
    buffer = bytearray(b"abc")
    await log.append(SID, gen, "audio", {}, buffer)  # type: ignore[arg-type]
    buffer[0] = ord("z")
    assert (await log.read(SID, 0, 10)).events[0].data == b"abc"


async def test_an_attachment_past_the_bound_is_refused_and_nothing_is_written(capped: StreamLog) -> None:
    """One byte over max_attachment_bytes raises AttachmentTooLargeError naming the sizes; exactly the bound is
    taken; the refused event used no seq."""
    gen = await capped.advance_generation(SID)
    with pytest.raises(AttachmentTooLargeError) as refused:
        await capped.append(SID, gen, "audio", {}, b"x" * (SMALL_CAP + 1))
    assert refused.value.context == {
        "stage": "publish",
        "stream_id": SID,
        "size_bytes": SMALL_CAP + 1,
        "limit_bytes": SMALL_CAP,
    }
    assert (refused.value.code, refused.value.retryable) == ("attachment_too_large", False)
    info = await capped.get(SID)
    assert info is not None
    assert info.last_seq == 0
    event = await capped.append(SID, gen, "audio", {}, b"y" * SMALL_CAP)
    assert (event.seq, event.data) == (1, b"y" * SMALL_CAP)


async def test_terminal_events_carry_no_attachment(log: StreamLog) -> None:
    """The terminal event has data None, in the write and in the read."""
    gen = await log.advance_generation(SID)
    await log.append(SID, gen, "audio", {}, b"chunk")
    terminal = await log.finalize(SID, gen, Outcome.done())
    assert terminal.data is None
    assert [event.data for event in (await log.read(SID, 0, 10)).events] == [b"chunk", None]


async def test_trimming_keeps_each_retained_event_with_its_own_attachment(log: StreamLog) -> None:
    """After a trim the events left carry exactly the bytes they were appended with."""
    gen = await log.advance_generation(SID)
    for i in range(10):
        await log.append(SID, gen, "audio", {"i": i}, bytes([i]) * (i + 1))
    await log.trim(SID, 3)
    read = await log.read(SID, 0, 100)
    assert [(event.seq, event.data) for event in read.events] == [(s, bytes([s - 1]) * s) for s in (8, 9, 10)]


async def test_automatic_trimming_of_events_with_attachments(aged: Aged) -> None:
    """Far past max_events, the attachments that remain are the newest ones, each with its own bytes."""
    gen = await aged.log.advance_generation(SID)
    for i in range(300):
        await aged.log.append(SID, gen, "audio", {"i": i}, i.to_bytes(2, "big") * 50)
    read = await aged.log.read(SID, 0, 1000)
    assert read.missing_after(0)
    assert len(read.events) < 300
    assert [event.data for event in read.events] == [
        (s - 1).to_bytes(2, "big") * 50 for s in range(read.first_seq, 301)
    ]


# --- what each write returns, reads that ask for nothing, and the errors' details ---------------------------------


async def test_written_events_name_their_stream_and_carry_the_write_time(log: StreamLog) -> None:
    """append and finalize return (and read gives back) events with the stream id and a wall-clock timestamp."""
    gen = await log.advance_generation(SID)
    before = time.time()
    written = [await log.append(SID, gen, "text", {}), await log.finalize(SID, gen, Outcome.done())]
    after = time.time()
    for event in [*written, *(await log.read(SID, 0, 10)).events]:
        assert event.stream_id == SID
        assert isinstance(event.ts, float)
        assert before - 1 <= event.ts <= after + 1


@pytest.mark.parametrize("limit", [0, -1])
async def test_a_read_for_no_events_still_says_where_the_log_stands(log: StreamLog, limit: int) -> None:
    """A limit of 0 (or less) returns no event, with first_seq, last_seq and the status as they are."""
    gen = await log.advance_generation(SID)
    for _ in range(3):
        await log.append(SID, gen, "text", {})
    read = await log.read(SID, 0, limit)
    assert (read.events, read.first_seq, read.last_seq, read.status) == ((), 1, 3, "open")


async def test_trimming_a_single_event_away(log: StreamLog) -> None:
    """trim(keep = count - 1) drops exactly the oldest event."""
    gen = await log.advance_generation(SID)
    for _ in range(10):
        await log.append(SID, gen, "text", {})
    await log.trim(SID, 9)
    read = await log.read(SID, 0, 100)
    assert (read.first_seq, [e.seq for e in read.events][:2]) == (2, [2, 3])


STALE = "stale generation: a newer producer owns this stream"


async def test_a_stale_writer_is_told_which_generation_owns_the_stream(log: StreamLog) -> None:
    """The fence's error names the stream, the writer's generation and the current one, for append and finalize."""
    old = await log.advance_generation(SID)
    new = await log.advance_generation(SID)
    expected = {"stage": "complete", "stream_id": SID, "generation": old, "current": new}
    with pytest.raises(CompletionOwnershipError) as e:
        await log.append(SID, old, "text", {})
    assert (e.value.message, e.value.context) == (STALE, expected)
    with pytest.raises(CompletionOwnershipError) as e:
        await log.finalize(SID, old, Outcome.done())
    assert (e.value.message, e.value.context) == (STALE, expected)


async def test_a_second_finalize_says_the_stream_has_ended(log: StreamLog) -> None:
    """Finalizing an ended stream is refused as such, naming the stream."""
    gen = await log.advance_generation(SID)
    await log.finalize(SID, gen, Outcome.done())
    with pytest.raises(CompletionOwnershipError) as refused:
        await log.finalize(SID, gen, Outcome.done())
    assert refused.value.message == "the stream has already ended"
    assert refused.value.context["stream_id"] == SID
