"""The StreamingManager under faults: a dead producer, a lost or unreachable log, a log that refuses the terminal write.

Two managers on one in-memory log stand for two server processes sharing Redis; a "dead" producer is one whose
manager never renews its lease (its renewal period is far longer than the log's lease).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from adapters.memory.stream_log import InMemoryStreamLog
from domain.errors import CompletionOwnershipError
from domain.streaming import Outcome, StreamInfo, sequence_problems
from domain.types import JsonValue, StreamId
from services.streaming import StreamingConfig, StreamingManager
from tests.fakes.stream_log import FlakyStreamLog
from tests.fakes.streaming import ALICE, RemoteProducer, collect, scripted

LEASE_S = 0.3


def _config(**overrides: float) -> StreamingConfig:
    base: dict[str, float] = {
        "resume_grace_s": 3600,
        "stall_timeout_s": 3600,
        "poll_s": 0.05,
        "touch_interval_s": 0.05,
        "producer_lease_s": LEASE_S,
        "outage_s": 0.5,
    }
    base.update(overrides)
    return StreamingConfig(**base)  # type: ignore[arg-type]


def _flaky(**kwargs: int) -> FlakyStreamLog:
    return FlakyStreamLog(lease_s=LEASE_S, **kwargs)


async def _hang(publisher: object) -> Mapping[str, JsonValue] | None:
    await asyncio.Event().wait()
    return None


async def test_a_dead_producers_stream_ends_with_producer_lost_for_readers_elsewhere() -> None:
    """Producer on A stops renewing (A is gone): a reader on B gets one terminal ``producer_lost``, A is fenced."""
    log = InMemoryStreamLog(lease_s=LEASE_S)
    a = StreamingManager(log, config=_config(producer_lease_s=3600))  # renews every 1200 s: as good as dead
    b = StreamingManager(log, config=_config())
    producer = RemoteProducer()
    stream_id = await a.start(owner=ALICE, producer=producer)
    assert await producer.emit("text", {"text": "hi"}) == 1
    events = await asyncio.wait_for(collect(b, stream_id), 10)
    assert [e.type for e in events] == ["text", "error"]
    assert events[-1].payload["code"] == "producer_lost"
    assert events[-1].payload["retryable"] is True
    assert sequence_problems(events) == []
    assert (await b.describe(stream_id, owner=ALICE)).status == "error"
    assert isinstance(await producer.emit("text", {"text": "late"}), CompletionOwnershipError)
    await a.aclose()
    await b.aclose()


async def test_status_reflects_a_lapsed_lease_without_any_reader() -> None:
    """``describe`` (``GET /streams/{id}``) reaps a lapsed stream: it says ``error``, not ``open`` forever."""
    log = InMemoryStreamLog(lease_s=LEASE_S)
    a = StreamingManager(log, config=_config(producer_lease_s=3600))
    b = StreamingManager(log, config=_config())
    stream_id = await a.start(owner=ALICE, producer=_hang)
    assert (await b.describe(stream_id, owner=ALICE)).status == "open"
    await asyncio.sleep(LEASE_S * 2)
    info = await b.describe(stream_id, owner=ALICE)
    assert info.status == "error"
    assert info.last_seq == 1
    await a.aclose()
    await b.aclose()


async def test_a_live_silent_producer_renews_and_is_never_reaped() -> None:
    """A producer silent for several leases keeps its stream: the reader elsewhere gets its events and ``done``."""
    log = InMemoryStreamLog(lease_s=LEASE_S)
    a = StreamingManager(log, config=_config())
    b = StreamingManager(log, config=_config())
    producer = RemoteProducer()
    stream_id = await a.start(owner=ALICE, producer=producer)
    reader = asyncio.create_task(collect(b, stream_id))
    await asyncio.sleep(LEASE_S * 5)
    assert await producer.emit("text", {"text": "still here"}) == 1
    producer.finish({"ok": True})
    events = await asyncio.wait_for(reader, 10)
    assert [e.type for e in events] == ["text", "done"]
    await a.aclose()
    await b.aclose()


async def test_a_reader_whose_stream_vanished_from_the_log_gets_a_terminal_error() -> None:
    """The log forgets the stream (a Redis restart without persistence): the reader ends with ``stream_lost``."""
    log = InMemoryStreamLog(lease_s=LEASE_S)
    a = StreamingManager(log, config=_config())
    b = StreamingManager(log, config=_config())
    producer = RemoteProducer()
    stream_id = await a.start(owner=ALICE, producer=producer)
    await producer.emit("text", {"text": "a"})
    reader = asyncio.create_task(collect(b, stream_id))
    await asyncio.sleep(0.1)
    await log.expire(stream_id, 0)
    events = await asyncio.wait_for(reader, 10)
    assert [e.type for e in events] == ["text", "error"]
    assert events[-1].payload["code"] == "stream_lost"
    assert events[-1].seq == 2
    assert sequence_problems(events) == []
    await a.aclose()
    await b.aclose()


async def test_a_reader_ends_with_stream_unavailable_when_the_log_stays_down() -> None:
    """The log stops answering for longer than ``outage_s``: the reader ends with a terminal error, not a hang."""
    log = _flaky()
    manager = StreamingManager(log, config=_config())
    stream_id = await manager.open(owner=ALICE)
    token = await manager.create_completion_token(stream_id)
    reader = asyncio.create_task(collect(manager, stream_id))
    await asyncio.sleep(0.1)
    log.down("read", "wait")
    assert token.stream_id == stream_id  # held, never spent: only the reader's own bound can end its wait
    events = await asyncio.wait_for(reader, 10)
    assert [e.payload.get("code") for e in events] == ["stream_unavailable"]
    await manager.aclose()


async def test_a_short_log_outage_is_ridden_out() -> None:
    """A log blip shorter than ``outage_s`` costs the reader nothing: it gets every event and the real end."""
    log = _flaky()
    manager = StreamingManager(log, config=_config(outage_s=5))
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    reader = asyncio.create_task(collect(manager, stream_id))
    await producer.emit("text", {"text": "a"})
    log.down("read", "wait")
    await asyncio.sleep(0.3)
    log.up()
    await producer.emit("text", {"text": "b"})
    producer.finish()
    events = await asyncio.wait_for(reader, 10)
    assert [e.type for e in events] == ["text", "text", "done"]


async def test_a_refused_terminal_write_is_retried_a_bounded_number_of_times_then_released() -> None:
    """While the log refuses ``finalize``, the watchdog retries it ``finalize_attempts`` times, then lets go."""
    log = _flaky()
    manager = StreamingManager(log, config=_config(finalize_attempts=3))
    log.down("finalize")
    stream_id = await manager.start(owner=ALICE, producer=scripted([("text", {"text": "a"})]))
    for _ in range(200):
        if manager.active_streams == 0:
            break
        await asyncio.sleep(0.05)
    assert manager.active_streams == 0
    assert log.calls["finalize"] == 3
    await asyncio.sleep(0.3)
    assert log.calls["finalize"] == 3  # given up: no retries forever
    info = await log.get(stream_id)
    assert info is not None
    assert info.status == "open"
    await manager.aclose()


async def test_a_refused_terminal_write_succeeds_once_the_log_is_back() -> None:
    """A terminal write refused during a blip is written by the watchdog's retry: readers get the real end."""
    log = _flaky()
    manager = StreamingManager(log, config=_config(finalize_attempts=5))
    log.down("finalize")
    stream_id = await manager.start(owner=ALICE, producer=scripted([("text", {"text": "a"})], result={"n": 1}))
    await asyncio.sleep(0.2)
    log.up()
    events = await asyncio.wait_for(collect(manager, stream_id), 10)
    assert [e.type for e in events] == ["text", "done"]
    assert events[-1].payload == {"n": 1}
    await manager.aclose()


async def test_the_memory_log_bounds_finished_streams_and_never_evicts_a_live_one() -> None:
    """Past ``max_finished`` (or the byte bound) the oldest finished streams go first; open ones stay."""
    log = InMemoryStreamLog(max_finished=3, max_finished_bytes=10**9)
    live = StreamId("st_live")
    await log.create(StreamInfo(live, ALICE))
    ids = [StreamId(f"st_{i}") for i in range(6)]
    for stream_id in ids:
        await log.create(StreamInfo(stream_id, ALICE))
        gen = await log.advance_generation(stream_id)
        await log.append(stream_id, gen, "text", {"text": "x" * 100})
        await log.finalize(stream_id, gen, Outcome.done())
    assert [await log.get(s) is not None for s in ids] == [False, False, False, True, True, True]
    assert await log.get(live) is not None
    by_bytes = InMemoryStreamLog(max_finished=100, max_finished_bytes=2_500)
    for stream_id in ids:
        await by_bytes.create(StreamInfo(stream_id, ALICE))
        gen = await by_bytes.advance_generation(stream_id)
        await by_bytes.append(stream_id, gen, "text", {"text": "x" * 1000})
        await by_bytes.finalize(stream_id, gen, Outcome.done())
    kept = [await by_bytes.get(s) is not None for s in ids]
    assert kept[-1]
    assert not kept[0]
    assert 0 < sum(kept) < len(ids)
    assert by_bytes.finished_bytes <= 2_500
