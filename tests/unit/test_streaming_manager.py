"""The StreamingManager: completion ownership, outcomes, cancellation, grace, stall, fan-out and resume."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from domain.errors import (
    CompletionOwnershipError,
    NotFoundError,
    ProviderError,
    RateLimitError,
    ServiceUnavailableError,
)
from domain.streaming import ConsumerLaggedError, Outcome, StreamClosedError, sequence_problems
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.streaming import ALICE, BOB, RemoteProducer, collect, scripted

TEXT = [("start", {"model": "fake/m"}), ("text", {"text": "Hel"}), ("text", {"text": "lo"})]


def _manager(log: InMemoryStreamLog | None = None, **config: object) -> StreamingManager:
    return StreamingManager(log if log is not None else InMemoryStreamLog(), config=StreamingConfig(**config))  # type: ignore[arg-type]


@pytest.fixture
async def manager() -> AsyncIterator[StreamingManager]:
    instance = _manager()
    yield instance
    await instance.aclose()


async def test_producer_that_returns_ends_with_one_done_carrying_its_result(manager: StreamingManager) -> None:
    """Every event in order, then exactly one `done` whose payload is the producer's return value."""
    stream_id = await manager.start(owner=ALICE, producer=scripted(TEXT, result={"finish": "stop"}))
    events = await collect(manager, stream_id)
    assert [e.type for e in events] == ["start", "text", "text", "done"]
    assert events[-1].payload == {"finish": "stop"}
    assert sequence_problems(events) == []


async def test_producer_raising_a_service_error_ends_with_a_typed_error(manager: StreamingManager) -> None:
    """A ServiceError becomes one `error` event with its code, message and retryable flag."""
    stream_id = await manager.start(owner=ALICE, producer=scripted(TEXT[:1], fail=RateLimitError("slow down")))
    events = await collect(manager, stream_id)
    assert events[-1].type == "error"
    assert events[-1].payload == {"code": "rate_limited", "message": "slow down", "retryable": True}


async def test_unexpected_exception_becomes_internal_error_without_details(manager: StreamingManager) -> None:
    """Any other exception ends the stream with code internal_error and no leaked message."""
    stream_id = await manager.start(owner=ALICE, producer=scripted([], fail=RuntimeError("password=hunter2")))
    events = await collect(manager, stream_id)
    assert [e.type for e in events] == ["error"]
    assert events[0].payload["code"] == "internal_error"
    assert "hunter2" not in str(events[0].payload)


async def test_publisher_cannot_complete(manager: StreamingManager) -> None:
    """Publishing a terminal type (or gap) raises CompletionOwnershipError; the manager still ends the stream."""
    stream_id = await manager.start(owner=ALICE, producer=scripted([("done", {})]))
    events = await collect(manager, stream_id)
    assert [e.type for e in events] == ["error"]
    assert events[0].payload["code"] == "completion_ownership"


async def test_only_the_current_token_completes(manager: StreamingManager) -> None:
    """Forged and stale tokens raise and write nothing; the current one completes once; a second time raises."""
    stream_id = await manager.open(owner=ALICE)
    stale = await manager.create_completion_token(stream_id)
    token = await manager.create_completion_token(stream_id)
    await manager.publisher(token).publish("text", {"text": "hi"})
    forged = type(token)(stream_id, token.generation, "not-the-secret")
    for bad in (stale, forged):
        with pytest.raises(CompletionOwnershipError):
            await manager.signal_completion(bad, Outcome.done())
    info = await manager.describe(stream_id, owner=ALICE)
    assert (info.last_seq, info.status) == (1, "open")
    event = await manager.signal_completion(token, Outcome.done({"n": 1}))
    assert (event.seq, event.type) == (2, "done")
    with pytest.raises(CompletionOwnershipError):
        await manager.signal_completion(token, Outcome.cancelled("again"))
    assert [e.type for e in await collect(manager, stream_id)] == ["text", "done"]


async def test_superseded_publisher_is_refused(manager: StreamingManager) -> None:
    """A publisher of an older generation cannot write once a new token is issued."""
    stream_id = await manager.open(owner=ALICE)
    old = manager.publisher(await manager.create_completion_token(stream_id))
    await manager.create_completion_token(stream_id)
    with pytest.raises(CompletionOwnershipError):
        await old.publish("text", {"text": "late"})


async def test_publish_after_the_end_raises_stream_closed(manager: StreamingManager) -> None:
    """Once the stream has ended, publishing raises StreamClosedError."""
    stream_id = await manager.open(owner=ALICE)
    token = await manager.create_completion_token(stream_id)
    publisher = manager.publisher(token)
    await manager.signal_completion(token, Outcome.done())
    with pytest.raises(StreamClosedError):
        await publisher.publish("text", {})


async def test_cancel_stops_the_producer_and_ends_with_cancelled(manager: StreamingManager) -> None:
    """The owner's cancel cancels the producer task within a second and writes one `cancelled`."""
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    await producer.emit("text", {"text": "a"})
    with pytest.raises(NotFoundError):
        await manager.cancel(stream_id, owner=BOB)
    await asyncio.wait_for(manager.cancel(stream_id, owner=ALICE), 1.0)
    await asyncio.sleep(0)
    assert producer.cancelled
    events = await collect(manager, stream_id)
    assert [e.type for e in events] == ["text", "cancelled"]
    assert events[-1].payload == {"reason": "client"}
    await manager.cancel(stream_id, owner=ALICE)  # idempotent once ended
    assert len(await collect(manager, stream_id)) == 2


async def test_another_customers_stream_is_not_found(manager: StreamingManager) -> None:
    """Subscribing to or describing someone else's stream raises NotFoundError, as an unknown one does."""
    stream_id = await manager.start(owner=ALICE, producer=scripted(TEXT))
    with pytest.raises(NotFoundError):
        await collect(manager, stream_id, owner=BOB)
    with pytest.raises(NotFoundError):
        await manager.describe(stream_id, owner=BOB)


async def test_disconnect_does_not_cancel_within_the_grace_period() -> None:
    """A consumer leaving mid-stream leaves the producer running; a resume gets exactly the rest."""
    manager = _manager(resume_grace_s=30.0)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    await producer.emit("text", {"i": 1})
    reader = manager.subscribe(stream_id, owner=ALICE)
    first = await anext(reader)
    await reader.aclose()  # type: ignore[attr-defined]
    await producer.emit("text", {"i": 2})
    producer.finish({"ok": True})
    rest = await collect(manager, stream_id, after=first.seq)
    assert [(e.seq, e.type) for e in rest] == [(2, "text"), (3, "done")]
    await manager.aclose()


async def test_grace_period_cancels_an_abandoned_stream() -> None:
    """When the last consumer has been gone for resume_grace_s, the producer is cancelled with reason grace."""
    manager = _manager(resume_grace_s=0.1, first_consumer_s=0.1)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    reader = manager.subscribe(stream_id, owner=ALICE)
    await producer.emit("text", {})
    await anext(reader)
    await reader.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0.5)
    assert producer.cancelled
    events = await collect(manager, stream_id)
    assert events[-1].type == "cancelled"
    assert events[-1].payload == {"reason": "grace"}
    await manager.aclose()


async def test_zero_grace_cancels_at_once() -> None:
    """resume_grace_s = 0 cancels as soon as the last consumer leaves."""
    manager = _manager(resume_grace_s=0.0, first_consumer_s=60.0)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    reader = manager.subscribe(stream_id, owner=ALICE)
    await producer.emit("text", {})
    await anext(reader)
    await reader.aclose()  # type: ignore[attr-defined]
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert (await manager.describe(stream_id, owner=ALICE)).status == "cancelled"
    await manager.aclose()


async def test_silent_producer_ends_with_stalled() -> None:
    """A producer silent past stall_timeout_s is cancelled and the stream ends with error `stalled`."""
    manager = _manager(stall_timeout_s=0.1)
    stream_id = await manager.start(owner=ALICE, producer=scripted(TEXT[:1], hang=True))
    events = await asyncio.wait_for(collect(manager, stream_id), 2.0)
    assert events[-1].type == "error"
    assert events[-1].payload["code"] == "stalled"
    assert events[-1].payload["retryable"] is True
    await manager.aclose()


async def test_lagging_consumer_is_dropped_and_others_are_not_slowed() -> None:
    """A consumer more than consumer_buffer behind is dropped with a resumable error; a fast one sees everything."""
    manager = _manager(consumer_buffer=5, read_batch=2)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    fast = asyncio.create_task(collect(manager, stream_id))
    slow = manager.subscribe(stream_id, owner=ALICE)
    pending = asyncio.ensure_future(anext(slow))
    await producer.emit("text", {"i": 0})
    first = await pending
    waiting = asyncio.ensure_future(anext(slow))  # caught up: waits for more
    await asyncio.sleep(0.01)
    for i in range(1, 20):
        await producer.emit("text", {"i": i})  # never blocks, whatever the slow consumer does
    second = await waiting

    async def drain_slow() -> None:
        for _ in range(30):
            await anext(slow)

    with pytest.raises(ConsumerLaggedError) as dropped:
        await drain_slow()
    producer.finish()
    everything = await fast
    assert len(everything) == 21
    assert sequence_problems(everything) == []
    resumed = await collect(manager, stream_id, after=dropped.value.after)
    assert [e.seq for e in resumed] == list(range(dropped.value.after + 1, 22))
    assert (first.seq, second.seq) == (1, 2)
    await manager.aclose()


async def test_resume_behind_a_trimmed_log_starts_with_a_gap() -> None:
    """A reader whose cursor was trimmed away gets a `gap` event naming the lost seqs, then exactly what remains."""
    log = InMemoryStreamLog(max_events=1000)
    manager = _manager(log)
    stream_id = await manager.open(owner=ALICE)
    token = await manager.create_completion_token(stream_id)
    for i in range(10):
        await manager.publish(stream_id, "text", {"i": i})
    await log.trim(stream_id, 4)
    await manager.signal_completion(token, Outcome.done())
    events = await collect(manager, stream_id, after=2)
    assert events[0].type == "gap"
    assert events[0].payload == {"from_seq": 3, "to_seq": 6, "reason": "trimmed"}
    assert [e.seq for e in events[1:]] == [7, 8, 9, 10, 11]
    assert sequence_problems(events, after=2) == []
    await manager.aclose()


async def test_watch_yields_idle_ticks_for_keepalives(manager: StreamingManager) -> None:
    """watch(idle_s=...) yields None while nothing happens, so delivery can send keepalives."""
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    watcher = manager.watch(stream_id, owner=ALICE, idle_s=0.05)
    assert await asyncio.wait_for(anext(watcher), 1.0) is None
    await watcher.aclose()  # type: ignore[attr-defined]
    producer.finish()


async def test_shutdown_ends_running_streams_with_cancelled() -> None:
    """aclose() ends every running stream with `cancelled` (reason shutdown), stops the producers, refuses new ones."""
    log = InMemoryStreamLog()
    manager = _manager(log)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    await manager.aclose()
    assert producer.cancelled
    read = await log.read(stream_id, 0, 10)
    assert [e.payload for e in read.events] == [{"reason": "shutdown"}]
    with pytest.raises(ServiceUnavailableError):  # retryable 503: another instance takes it
        await manager.open(owner=ALICE)


async def test_metrics_follow_the_lifecycle() -> None:
    """Started, completed, events and active streams are counted under their canonical names."""
    metrics = RecordingMetrics()
    manager = StreamingManager(InMemoryStreamLog(), metrics=metrics)
    stream_id = await manager.start(owner=ALICE, producer=scripted(TEXT))
    await collect(manager, stream_id)
    assert metrics.total("streams_started_total") == 1
    assert metrics.total("streams_completed_total") == 1
    assert metrics.total("stream_events_total") == 3
    assert metrics.gauges[("streams_active", ())] == 0
    assert metrics.gauges[("stream_consumers", ())] == 0
    await manager.aclose()


async def test_provider_error_keeps_its_retryable_flag(manager: StreamingManager) -> None:
    """A ProviderError's per-instance retryable flag reaches the error event."""
    failure = ProviderError("openai", "upstream 503", retryable=True)
    stream_id = await manager.start(owner=ALICE, producer=scripted([], fail=failure))
    events = await collect(manager, stream_id)
    assert events[-1].payload == {"code": "provider_error", "message": "upstream 503", "retryable": True}
