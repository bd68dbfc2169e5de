"""StreamingManager readers (``watch``): where they start, what wakes them, when they read the log rather than the
local tail, how they ride out and end on log trouble, idle ticks, touches, and the events they make themselves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from domain.errors import NotFoundError, ValidationError
from domain.streaming import ConsumerLaggedError, StreamEvent
from ports.stream_log import StreamLog
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig
from tests.fakes.clock import FakeClock
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.stream_log import DeafStreamLog, FlakyStreamLog
from tests.fakes.streaming import ALICE, RemoteProducer, collect

QUIET: dict[str, float] = {"resume_grace_s": 3600.0, "stall_timeout_s": 3600.0, "first_consumer_s": 3600.0}


def _manager(
    log: StreamLog,
    *,
    clock: Callable[[], float] | None = None,
    metrics: RecordingMetrics | None = None,
    **config: float,
) -> StreamingManager:
    settings = StreamingConfig(**{**QUIET, **config})  # type: ignore[arg-type]
    if clock is None:
        return StreamingManager(log, config=settings, metrics=metrics)
    return StreamingManager(log, config=settings, metrics=metrics, clock=clock)


async def _closing(*managers: StreamingManager) -> None:
    for manager in managers:
        await manager.aclose()


async def _ended(reader: AsyncIterator[StreamEvent | None], timeout_s: float = 2.0) -> list[StreamEvent]:
    """The rest of ``reader``'s events (idle ticks left out), within ``timeout_s``."""

    async def drain() -> list[StreamEvent]:
        return [event async for event in reader if event is not None]

    return await asyncio.wait_for(drain(), timeout_s)


# --- where a reader starts and what it counts ---------------------------------------------------------------------


async def test_watch_starts_from_the_first_event_by_default() -> None:
    """watch() without ``after`` delivers from seq 1; a reader from 0 is not counted as a resume, one from 1 is."""
    metrics = RecordingMetrics()
    manager = _manager(InMemoryStreamLog(), metrics=metrics)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    await producer.emit("text", {"i": 1})
    await producer.emit("text", {"i": 2})
    producer.finish()
    assert [e.seq for e in await _ended(manager.watch(stream_id, owner=ALICE))] == [1, 2, 3]
    assert metrics.counters[("stream_resumes_total", ())] == 0
    assert [e.seq for e in await collect(manager, stream_id, after=1)] == [2, 3]
    assert metrics.counters[("stream_resumes_total", ())] == 1
    await manager.aclose()


async def test_a_reader_exactly_consumer_buffer_behind_is_kept() -> None:
    """Woken exactly consumer_buffer events behind, a caught-up reader is still served (more than that drops it)."""
    manager = _manager(InMemoryStreamLog(), consumer_buffer=3, read_batch=1)
    stream_id = await manager.open(owner=ALICE)
    publisher = manager.publisher(await manager.create_completion_token(stream_id))
    await publisher.publish("text", {})
    reader = manager.subscribe(stream_id, owner=ALICE)
    assert (await anext(reader)).seq == 1
    waiting = asyncio.ensure_future(anext(reader))  # caught up: it waits
    await asyncio.sleep(0.01)
    for _ in range(3):
        await publisher.publish("text", {})
    assert (await asyncio.wait_for(waiting, 2.0)).seq == 2
    assert [(await anext(reader)).seq for _ in range(2)] == [3, 4]
    await reader.aclose()  # type: ignore[attr-defined]
    await manager.aclose()


async def test_a_gap_names_the_stream_and_when_it_was_made() -> None:
    """The synthetic gap event carries the stream id and a wall-clock time, like a logged event."""
    log = InMemoryStreamLog()
    manager = _manager(log)
    stream_id = await manager.open(owner=ALICE)
    publisher = manager.publisher(await manager.create_completion_token(stream_id))
    for _ in range(6):
        await publisher.publish("text", {})
    await log.trim(stream_id, 2)
    reader = manager.subscribe(stream_id, owner=ALICE)
    before = time.time()
    gap = await anext(reader)
    assert (gap.type, gap.stream_id, gap.seq) == ("gap", stream_id, 4)
    assert before - 1 <= gap.ts <= time.time() + 1
    await reader.aclose()  # type: ignore[attr-defined]
    await manager.aclose()


# --- what wakes a reader, and when it reads the log instead of the local tail ------------------------------------


async def test_a_local_reader_is_woken_by_the_publish_not_by_the_log() -> None:
    """On a log whose wait never wakes early, a reader of a stream produced here still gets each event at once."""
    manager = _manager(DeafStreamLog(), poll_s=5.0)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    reader = manager.subscribe(stream_id, owner=ALICE)
    pending = asyncio.ensure_future(anext(reader))
    await producer.emit("text", {"i": 0})
    assert (await asyncio.wait_for(pending, 1.0)).seq == 1
    pending = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0.05)  # caught up and waiting
    await producer.emit("text", {"i": 1})
    assert (await asyncio.wait_for(pending, 1.0)).seq == 2
    await reader.aclose()  # type: ignore[attr-defined]
    producer.finish()
    await manager.aclose()


async def test_a_reader_here_of_a_stream_produced_elsewhere_waits_on_the_log() -> None:
    """A opened the stream but B holds its token and publishes: A's reader is woken by the log, not by A."""
    log = InMemoryStreamLog()
    a, b = _manager(log, poll_s=5.0), _manager(log, poll_s=5.0)
    stream_id = await a.open(owner=ALICE)
    publisher = b.publisher(await b.create_completion_token(stream_id))
    reader = a.subscribe(stream_id, owner=ALICE)
    pending = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0.05)
    await publisher.publish("text", {})
    assert (await asyncio.wait_for(pending, 1.0)).seq == 1
    await reader.aclose()  # type: ignore[attr-defined]
    await _closing(a, b)


async def test_a_new_reader_reads_the_log_first_even_with_a_local_tail() -> None:
    """The tail does not know the log was trimmed: a new reader's first read is the log's, so it gets the gap."""
    log = InMemoryStreamLog()
    manager = _manager(log, local_tail=16)
    stream_id = await manager.open(owner=ALICE)
    publisher = manager.publisher(await manager.create_completion_token(stream_id))
    for _ in range(10):
        await publisher.publish("text", {})
    await log.trim(stream_id, 4)
    reader = manager.subscribe(stream_id, owner=ALICE)
    first = await anext(reader)
    assert (first.type, first.payload) == ("gap", {"from_seq": 1, "to_seq": 6, "reason": "trimmed"})
    assert (await anext(reader)).seq == 7
    await reader.aclose()  # type: ignore[attr-defined]
    await manager.aclose()


async def test_after_a_quiet_wait_a_tail_reader_reads_the_log_again() -> None:
    """A reader served by the local tail looks at the log after a wait that timed out, so it sees an end written by
    another process (here B cancelling A's stream)."""
    log = InMemoryStreamLog()
    a = _manager(log, local_tail=16, poll_s=0.05, producer_lease_s=3600.0)
    b = _manager(log)
    producer = RemoteProducer()
    stream_id = await a.start(owner=ALICE, producer=producer)
    await producer.emit("text", {})
    reader = a.subscribe(stream_id, owner=ALICE)
    assert (await anext(reader)).seq == 1
    await b.cancel(stream_id, owner=ALICE, reason="operator")
    end = await asyncio.wait_for(anext(reader), 2.0)
    assert (end.type, end.payload) == ("cancelled", {"reason": "operator"})
    await reader.aclose()  # type: ignore[attr-defined]
    await _closing(a, b)


# --- touches, for the grace of a stream produced elsewhere ---------------------------------------------------------


async def test_a_reader_elsewhere_touches_at_once_then_every_touch_interval() -> None:
    """A reader of a stream another manager produces touches the log on its first wait (whatever its clock reads)
    and again once touch_interval_s has passed, exactly, not sooner."""
    log = InMemoryStreamLog()
    a = _manager(log)
    clock = FakeClock(0.5)
    b = _manager(log, clock=clock, poll_s=0.01, touch_interval_s=2.0)
    stream_id = await a.start(owner=ALICE, producer=RemoteProducer())

    async def last_seen() -> float:
        info = await log.get(stream_id)
        assert info is not None
        return info.last_seen

    reader = asyncio.ensure_future(collect(b, stream_id))
    for _ in range(200):
        if await last_seen() > 0:
            break
        await asyncio.sleep(0.005)
    first = await last_seen()
    assert first > 0
    clock.advance(1.5)
    await asyncio.sleep(0.1)
    assert await last_seen() == first
    clock.advance(0.5)
    for _ in range(200):
        if await last_seen() > first:
            break
        await asyncio.sleep(0.005)
    assert await last_seen() > first
    reader.cancel()
    await _closing(a, b)


# --- log trouble: riding it out, and the synthetic end ------------------------------------------------------------


async def test_a_reader_starting_during_a_blip_gets_every_event() -> None:
    """The very first read failing (the log blipped) is ridden out like any later one."""
    log = FlakyStreamLog()
    manager = _manager(log, poll_s=0.05)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    await producer.emit("text", {})
    log.fail_next("read")
    reader = asyncio.ensure_future(collect(manager, stream_id))
    await asyncio.sleep(0.05)
    producer.finish()
    assert [e.type for e in await asyncio.wait_for(reader, 5.0)] == ["text", "done"]
    await manager.aclose()


async def test_a_blip_costs_a_reader_half_a_second_at_most() -> None:
    """After a failed read the reader tries again within 0.5 s, however long its poll interval."""
    log = FlakyStreamLog()
    manager = _manager(log, poll_s=30.0, outage_s=60.0)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    reader = manager.subscribe(stream_id, owner=ALICE)
    pending = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0.05)  # caught up and waiting
    log.fail_next("read")
    started = time.monotonic()
    await producer.emit("text", {})
    assert (await asyncio.wait_for(pending, 5.0)).seq == 1
    assert time.monotonic() - started < 1.25
    await reader.aclose()  # type: ignore[attr-defined]
    producer.finish()
    await manager.aclose()


async def test_a_stream_the_log_lost_ends_its_reader_at_once_with_stream_lost() -> None:
    """NotFound is no outage to ride out: the reader ends at once (however long outage_s) with a synthetic,
    retryable `stream_lost` error after its cursor, counted as a dropped consumer."""
    metrics = RecordingMetrics()
    log = InMemoryStreamLog()
    a, b = _manager(log), _manager(log, metrics=metrics, outage_s=60.0, poll_s=0.05)
    producer = RemoteProducer()
    stream_id = await a.start(owner=ALICE, producer=producer)
    await producer.emit("text", {})
    reader = asyncio.ensure_future(collect(b, stream_id))
    await asyncio.sleep(0.05)
    before = time.time()
    await log.expire(stream_id, 0)
    events = await asyncio.wait_for(reader, 2.0)
    lost = events[-1]
    assert (lost.stream_id, lost.seq, lost.type) == (stream_id, 2, "error")
    assert lost.payload == {
        "code": "stream_lost",
        "message": "the stream log lost this stream (its backend restarted or expired it)",
        "retryable": True,
        "synthetic": True,
    }
    assert before - 1 <= lost.ts <= time.time() + 1
    assert metrics.counters[("stream_consumers_dropped_total", (("reason", "lost"),))] == 1
    await _closing(a, b)


async def test_a_log_down_for_exactly_outage_s_ends_the_reader_with_stream_unavailable() -> None:
    """A reader rides out a log that does not answer until outage_s has passed on its clock, exactly, then ends
    with a synthetic `stream_unavailable` saying how long it waited."""
    log, clock = FlakyStreamLog(), FakeClock()
    manager = _manager(log, clock=clock, outage_s=4.0, poll_s=0.01)
    stream_id = await manager.open(owner=ALICE)
    await manager.create_completion_token(stream_id)
    log.down("read")
    reader = manager.subscribe(stream_id, owner=ALICE)
    pending = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0.05)
    clock.advance(3.5)
    await asyncio.sleep(0.05)
    assert not pending.done()
    clock.advance(0.5)
    lost = await asyncio.wait_for(pending, 2.0)
    assert (lost.stream_id, lost.seq) == (stream_id, 1)
    assert (lost.payload["code"], lost.payload["message"]) == (
        "stream_unavailable",
        "the stream log did not answer for 4 s",
    )
    await reader.aclose()  # type: ignore[attr-defined]
    log.up()
    await manager.aclose()


async def test_a_stream_gone_while_a_reader_elsewhere_waits_ends_that_reader() -> None:
    """The log's wait saying the stream is gone ends a reader of a stream produced elsewhere with `stream_lost`,
    right after its cursor, though the stream would otherwise stay open."""
    log = FlakyStreamLog()
    a, b = _manager(log), _manager(log, poll_s=0.05, outage_s=60.0)
    producer = RemoteProducer()
    stream_id = await a.start(owner=ALICE, producer=producer)
    await producer.emit("text", {})
    log.fail_next("wait", error=lambda: NotFoundError("stream not found"))
    events = await asyncio.wait_for(collect(b, stream_id), 2.0)
    assert [(e.stream_id, e.seq, e.type, e.payload.get("code")) for e in events] == [
        (stream_id, 1, "text", None),
        (stream_id, 2, "error", "stream_lost"),
    ]
    await _closing(a, b)


async def test_a_failed_wait_of_a_reader_elsewhere_is_ridden_out() -> None:
    """The log's wait failing once (unavailable) costs a reader of a stream produced elsewhere nothing."""
    log = FlakyStreamLog()
    a, b = _manager(log), _manager(log, poll_s=0.05, outage_s=60.0)
    producer = RemoteProducer()
    stream_id = await a.start(owner=ALICE, producer=producer)
    log.fail_next("wait")
    reader = asyncio.ensure_future(collect(b, stream_id))
    await asyncio.sleep(0.1)
    await producer.emit("text", {})
    producer.finish()
    assert [e.type for e in await asyncio.wait_for(reader, 5.0)] == ["text", "done"]
    await _closing(a, b)


# --- idle ticks ---------------------------------------------------------------------------------------------------


async def test_idle_ticks_follow_events_and_repeat() -> None:
    """After an event, watch(idle_s) yields None once idle_s passes without another, and again after each idle_s."""
    manager = _manager(InMemoryStreamLog())
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    watcher = manager.watch(stream_id, owner=ALICE, idle_s=0.05)
    pending = asyncio.ensure_future(anext(watcher))
    await producer.emit("text", {})
    assert (await asyncio.wait_for(pending, 1.0)) is not None
    assert [await asyncio.wait_for(anext(watcher), 1.0) for _ in range(2)] == [None, None]
    await watcher.aclose()  # type: ignore[attr-defined]
    producer.finish()
    await manager.aclose()


async def test_no_idle_tick_before_idle_s_however_often_the_reader_polls() -> None:
    """With a poll far shorter than idle_s, the reader wakes often but ticks only once idle_s has passed."""
    manager = _manager(InMemoryStreamLog(), poll_s=0.01)
    stream_id = await manager.start(owner=ALICE, producer=RemoteProducer())
    watcher = manager.watch(stream_id, owner=ALICE, idle_s=0.6)
    pending = asyncio.ensure_future(anext(watcher))
    await asyncio.sleep(0.3)
    assert not pending.done()
    assert await asyncio.wait_for(pending, 2.0) is None
    await watcher.aclose()  # type: ignore[attr-defined]
    await manager.aclose()


async def test_an_idle_tick_comes_exactly_at_idle_s_on_the_managers_clock() -> None:
    """Ticks are due when the manager's clock has moved idle_s since the last event or tick, not later."""
    clock = FakeClock()
    manager = _manager(InMemoryStreamLog(), clock=clock, poll_s=0.01)
    stream_id = await manager.start(owner=ALICE, producer=RemoteProducer())
    watcher = manager.watch(stream_id, owner=ALICE, idle_s=1.0)
    for _ in range(2):
        pending = asyncio.ensure_future(anext(watcher))
        await asyncio.sleep(0.05)
        assert not pending.done()
        clock.advance(1.0)
        assert await asyncio.wait_for(pending, 2.0) is None
    await watcher.aclose()  # type: ignore[attr-defined]
    await manager.aclose()


async def test_a_negative_cursor_is_refused() -> None:
    """watch() refuses a cursor below 0, naming `after`, before reading anything."""
    manager = _manager(InMemoryStreamLog())
    stream_id = await manager.start(owner=ALICE, producer=RemoteProducer())
    with pytest.raises(ValidationError, match="after"):
        await anext(manager.watch(stream_id, owner=ALICE, after=-1))
    await manager.aclose()


async def test_a_lagging_reader_is_told_where_to_resume() -> None:
    """The ConsumerLaggedError of a dropped reader carries the cursor it can resume after."""
    manager = _manager(InMemoryStreamLog(), consumer_buffer=1, read_batch=1)
    stream_id = await manager.open(owner=ALICE)
    publisher = manager.publisher(await manager.create_completion_token(stream_id))
    await publisher.publish("text", {})
    reader = manager.subscribe(stream_id, owner=ALICE)
    await anext(reader)
    waiting = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0.01)
    for _ in range(3):
        await publisher.publish("text", {})
    with pytest.raises(ConsumerLaggedError) as dropped:
        await asyncio.wait_for(waiting, 2.0)
    assert dropped.value.after == 1
    await manager.aclose()
