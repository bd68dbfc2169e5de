"""StreamingManager rules no broader test pins: who may end a stream, supersession, activity, the local tail, zero
grace with two readers, recovery from a failed terminal write, and what a superseded manager forgets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from domain.errors import CompletionOwnershipError, ServiceUnavailableError
from domain.streaming import CompletionToken, ConsumerLaggedError, Outcome, StreamClosedError, StreamEvent
from domain.types import JsonValue, StreamId
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig
from tests.fakes.clock import FakeClock
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.stream_log import FlakyStreamLog
from tests.fakes.streaming import ALICE, RemoteProducer, collect, scripted

QUIET = {"resume_grace_s": 3600.0, "stall_timeout_s": 3600.0, "first_consumer_s": 3600.0}


@pytest.fixture
async def log() -> InMemoryStreamLog:
    return InMemoryStreamLog()


@pytest.fixture
async def manager(log: InMemoryStreamLog) -> AsyncIterator[StreamingManager]:
    instance = StreamingManager(log, config=StreamingConfig(**QUIET))  # type: ignore[arg-type]
    yield instance
    await instance.aclose()


async def _until(check: Callable[[], bool], what: str, polls: int = 2000) -> None:
    """Let the loop run until ``check()`` holds (bounded: ``polls`` short sleeps)."""
    for _ in range(polls):
        if check():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never happened: {what}")


async def _status(manager: StreamingManager, stream_id: StreamId) -> str:
    return (await manager.describe(stream_id, owner=ALICE)).status


@pytest.mark.parametrize("reserved", ["done", "error", "cancelled", "gap"])
async def test_a_publisher_cannot_write_a_terminal_or_a_gap(manager: StreamingManager, reserved: str) -> None:
    """Publishing any terminal type or `gap` raises CompletionOwnershipError and writes nothing."""
    stream_id = await manager.open(owner=ALICE)
    token = await manager.create_completion_token(stream_id)
    with pytest.raises(CompletionOwnershipError):
        await manager.publisher(token).publish(reserved, {})
    with pytest.raises(CompletionOwnershipError):
        await manager.publish(stream_id, reserved, {})
    info = await manager.describe(stream_id, owner=ALICE)
    assert (info.last_seq, info.status) == (0, "open")


@pytest.mark.parametrize("reserved", ["done", "error", "cancelled", "gap"])
async def test_a_started_producer_cannot_end_its_stream_itself(manager: StreamingManager, reserved: str) -> None:
    """A producer that tries to publish a terminal or `gap` fails; the manager ends the stream with that error."""
    stream_id = await manager.start(owner=ALICE, producer=scripted([(reserved, {"reason": "client"})]))
    events = await asyncio.wait_for(collect(manager, stream_id), 5.0)
    assert [(e.type, e.payload["code"]) for e in events] == [("error", "completion_ownership")]


async def test_a_superseded_producer_finishing_late_leaves_the_new_token_whole(manager: StreamingManager) -> None:
    """After a takeover the started producer is refused, its late end writes nothing, and the new token completes."""
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    assert await producer.emit("text", {"i": 1}) == 1
    token = await manager.create_completion_token(stream_id)
    assert isinstance(await producer.emit("text", {"i": 2}), CompletionOwnershipError)
    await asyncio.sleep(0.01)  # the producer's task ends with that error: nothing may be written for it
    info = await manager.describe(stream_id, owner=ALICE)
    assert (info.last_seq, info.status) == (1, "open")
    assert manager.active_streams == 1
    event = await manager.signal_completion(token, Outcome.done({"by": "new"}))
    assert (event.seq, event.type, event.payload) == (2, "done", {"by": "new"})


async def test_a_superseded_producer_that_returns_writes_no_done(manager: StreamingManager) -> None:
    """A producer superseded while idle that then returns normally writes no `done`; the stream stays open."""
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    token = await manager.create_completion_token(stream_id)
    producer.finish({"late": True})
    await asyncio.sleep(0.01)
    assert await _status(manager, stream_id) == "open"
    assert (await manager.signal_completion(token, Outcome.cancelled("new"))).seq == 1


async def test_publishing_counts_as_activity_for_the_stall_watchdog(log: InMemoryStreamLog) -> None:
    """A stream is stalled exactly stall_timeout_s after its last publish, not after its start."""
    clock = FakeClock()
    config = StreamingConfig(**{**QUIET, "stall_timeout_s": 10.0})  # type: ignore[arg-type]
    manager = StreamingManager(log, config=config, clock=clock)
    stream_id = await manager.open(owner=ALICE)
    publisher = manager.publisher(await manager.create_completion_token(stream_id))
    await publisher.publish("text", {})
    clock.advance(6.0)
    await publisher.publish("text", {})
    clock.advance(9.5)  # 15.5 s since the token, 9.5 s since the last publish
    await manager.sweep()
    assert await _status(manager, stream_id) == "open"
    clock.advance(0.5)  # exactly stall_timeout_s since the last publish
    await manager.sweep()
    read = await log.read(stream_id, 0, 10)
    assert read.status == "error"
    assert read.events[-1].payload["code"] == "stalled"
    await manager.aclose()


async def test_a_fresh_token_counts_as_activity(log: InMemoryStreamLog) -> None:
    """Issuing a completion token restarts the stall clock, however old the stream."""
    clock = FakeClock()
    config = StreamingConfig(**{**QUIET, "stall_timeout_s": 10.0})  # type: ignore[arg-type]
    manager = StreamingManager(log, config=config, clock=clock)
    stream_id = await manager.open(owner=ALICE)
    await manager.create_completion_token(stream_id)
    clock.advance(9.0)
    await manager.create_completion_token(stream_id)
    clock.advance(9.0)
    await manager.sweep()
    assert await _status(manager, stream_id) == "open"
    clock.advance(1.0)
    await manager.sweep()
    assert await _status(manager, stream_id) == "error"
    await manager.aclose()


async def test_the_local_tail_serves_a_reader_several_events_behind() -> None:
    """With the local tail on, a local reader three events behind gets all three from it (the log is not read)."""
    log = FlakyStreamLog()
    manager = StreamingManager(log, config=StreamingConfig(**{**QUIET, "local_tail": 8}))  # type: ignore[arg-type]
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    reader = manager.subscribe(stream_id, owner=ALICE)
    pending = asyncio.ensure_future(anext(reader))
    await producer.emit("text", {"i": 1})
    first = await asyncio.wait_for(pending, 2.0)
    for i in (2, 3, 4):
        await producer.emit("text", {"i": i})
    log.fail_next("read", 1000)  # from here a read of the log would fail: only the tail can serve
    behind: list[StreamEvent] = [await asyncio.wait_for(anext(reader), 2.0) for _ in range(3)]
    assert [(e.seq, e.payload) for e in [first, *behind]] == [(n, {"i": n}) for n in (1, 2, 3, 4)]
    log.fail_next("read", 0)
    producer.finish()
    rest = [event async for event in reader]
    assert [e.type for e in rest] == ["done"]
    await manager.aclose()


async def test_zero_grace_keeps_a_stream_while_another_reader_is_attached() -> None:
    """With resume_grace_s = 0, the first reader leaving cancels nothing while a second still reads; the last does."""
    config = StreamingConfig(**{**QUIET, "resume_grace_s": 0.0, "first_consumer_s": 60.0})  # type: ignore[arg-type]
    manager = StreamingManager(InMemoryStreamLog(), config=config)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    first, second = manager.subscribe(stream_id, owner=ALICE), manager.subscribe(stream_id, owner=ALICE)
    waiting = [asyncio.ensure_future(anext(first)), asyncio.ensure_future(anext(second))]
    await producer.emit("text", {})
    await asyncio.wait_for(asyncio.gather(*waiting), 2.0)
    await first.aclose()  # type: ignore[attr-defined]
    for _ in range(20):
        await asyncio.sleep(0.001)
    assert not producer.cancelled
    assert await _status(manager, stream_id) == "open"
    await second.aclose()  # type: ignore[attr-defined]
    await _until(lambda: producer.cancelled, "the last reader leaving cancels the producer")
    read = await manager.describe(stream_id, owner=ALICE)
    assert read.status == "cancelled"
    await manager.aclose()


async def test_the_manager_completes_after_the_log_failed_a_terminal_write() -> None:
    """A terminal write the log refuses raises and keeps the token; the same token then completes the stream."""
    log = FlakyStreamLog()
    manager = StreamingManager(log, config=StreamingConfig(**QUIET))  # type: ignore[arg-type]
    stream_id = await manager.open(owner=ALICE)
    token = await manager.create_completion_token(stream_id)
    log.fail_next("finalize")
    with pytest.raises(ServiceUnavailableError):
        await manager.signal_completion(token, Outcome.done({"try": 1}))
    assert await _status(manager, stream_id) == "open"
    event = await manager.signal_completion(token, Outcome.done({"try": 2}))
    assert (event.seq, event.payload) == (1, {"try": 2})
    assert manager.active_streams == 0
    await manager.aclose()


async def test_a_run_taken_over_by_another_manager_is_forgotten(log: InMemoryStreamLog) -> None:
    """Manager A's completion after B took the stream over is refused by the log, and A forgets the run."""
    a = StreamingManager(log, config=StreamingConfig(**QUIET))  # type: ignore[arg-type]
    b = StreamingManager(log, config=StreamingConfig(**QUIET))  # type: ignore[arg-type]
    stream_id = await a.open(owner=ALICE)
    old = await a.create_completion_token(stream_id)
    new = await b.create_completion_token(stream_id)
    assert (a.active_streams, b.active_streams) == (1, 1)
    with pytest.raises(CompletionOwnershipError):
        await a.signal_completion(old, Outcome.done())
    assert a.active_streams == 0
    assert (await b.signal_completion(new, Outcome.done({"by": "b"}))).seq == 1
    await a.aclose()
    await b.aclose()


async def test_a_started_run_taken_over_elsewhere_is_forgotten(log: InMemoryStreamLog) -> None:
    """A's producer is refused by the log once B holds the stream; A ends the run without writing and forgets it."""
    a = StreamingManager(log, config=StreamingConfig(**QUIET))  # type: ignore[arg-type]
    b = StreamingManager(log, config=StreamingConfig(**QUIET))  # type: ignore[arg-type]
    producer = RemoteProducer()
    stream_id = await a.start(owner=ALICE, producer=producer)
    new = await b.create_completion_token(stream_id)
    assert isinstance(await producer.emit("text", {}), CompletionOwnershipError)
    await _until(lambda: a.active_streams == 0, "A forgets the run")
    assert (await b.describe(stream_id, owner=ALICE)).status == "open"
    assert (await b.signal_completion(new, Outcome.done())).seq == 1
    await a.aclose()
    await b.aclose()


def test_completion_tokens_never_share_a_secret() -> None:
    """Every issued token has its own secret (128 random bits), even for the same stream and generation."""
    tokens = [CompletionToken.issue(StreamId("st_same"), 1) for _ in range(500)]
    secrets = {token.secret for token in tokens}
    assert len(secrets) == len(tokens)
    assert min(len(secret) for secret in secrets) >= 22


async def test_tokens_issued_by_the_manager_never_share_a_secret(manager: StreamingManager) -> None:
    """Successive tokens of one stream, and tokens of two streams, all differ in their secret."""
    one, two = await manager.open(owner=ALICE), await manager.open(owner=ALICE)
    tokens = [await manager.create_completion_token(s) for s in (one, one, one, two, two)]
    assert len({token.secret for token in tokens}) == len(tokens)
    assert "secret" not in repr(tokens[0])
    assert tokens[0].secret not in repr(tokens[0])


async def test_forged_tokens_with_the_right_generation_are_refused(manager: StreamingManager) -> None:
    """Near misses of the secret (one character off, cut short, extended, empty, another stream's) all fail."""
    stream_id, other_id = await manager.open(owner=ALICE), await manager.open(owner=ALICE)
    token = await manager.create_completion_token(stream_id)
    other = await manager.create_completion_token(other_id)
    real = token.secret
    near_misses = [real[:-1] + ("A" if real[-1] != "A" else "B"), real[:-1], real + "A", "", other.secret]
    for secret in near_misses:
        with pytest.raises(CompletionOwnershipError):
            await manager.signal_completion(CompletionToken(stream_id, token.generation, secret), Outcome.done())
    with pytest.raises(CompletionOwnershipError):
        await manager.signal_completion(CompletionToken(stream_id, token.generation + 1, real), Outcome.done())
    with pytest.raises(CompletionOwnershipError):
        await manager.signal_completion(CompletionToken(other_id, token.generation, real), Outcome.done())
    assert (await manager.describe(stream_id, owner=ALICE)).last_seq == 0
    assert (await manager.signal_completion(token, Outcome.done())).seq == 1


async def test_start_records_kind_and_meta(manager: StreamingManager) -> None:
    """A started stream carries the kind and meta it was started with (chat by default)."""
    custom = await manager.start(owner=ALICE, producer=scripted([]), kind="speech", meta={"model": "m"})
    default = await manager.start(owner=ALICE, producer=scripted([]))
    info = await manager.describe(custom, owner=ALICE)
    assert (info.kind, info.meta) == ("speech", {"model": "m"})
    assert (await manager.describe(default, owner=ALICE)).kind == "chat"


async def test_a_crashing_producer_ends_with_a_fixed_non_retryable_error(manager: StreamingManager) -> None:
    """An unexpected exception becomes exactly this payload: no detail leaks, and retrying will not help."""
    stream_id = await manager.start(owner=ALICE, producer=scripted([], fail=KeyError("secret")))
    events = await asyncio.wait_for(collect(manager, stream_id), 5.0)
    assert events[-1].payload == {
        "code": "internal_error",
        "message": "the producer failed unexpectedly",
        "retryable": False,
    }


async def _cancelled_while_the_log_is_down(reason: str, swallow: bool) -> list[StreamEvent]:
    """Cancel a started stream (client cancel or stall) while its first terminal write fails; the producer's own
    end then writes the terminal event: what does it say?"""
    log, clock = FlakyStreamLog(), FakeClock()
    config = StreamingConfig(**{**QUIET, "stall_timeout_s": 10.0})  # type: ignore[arg-type]
    manager = StreamingManager(log, config=config, clock=clock)

    async def producer(publisher: object) -> dict[str, JsonValue]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            if not swallow:
                raise
        return {"returned": True}  # a producer that swallows its cancellation and returns normally

    stream_id = await manager.start(owner=ALICE, producer=producer)
    await asyncio.sleep(0)
    log.fail_next("finalize")
    if reason == "stalled":
        clock.advance(10.0)
        await manager.sweep()
    else:
        await manager.cancel(stream_id, owner=ALICE, reason=reason)
    await _until(lambda: log.calls.get("finalize", 0) >= 2, "the producer's own end writes the terminal")
    events = (await log.read(stream_id, 0, 10)).events
    await manager.aclose()
    return list(events)


@pytest.mark.parametrize("swallow", [False, True])
async def test_a_cancel_whose_write_failed_is_still_the_outcome(swallow: bool) -> None:
    """When the cancel's terminal write fails, the producer's own end records `cancelled` with the cancel's reason,
    not `done`, whether the producer re-raised its cancellation or returned."""
    events = await _cancelled_while_the_log_is_down("client", swallow)
    assert [(e.type, e.payload) for e in events] == [("cancelled", {"reason": "client"})]


async def test_a_stall_whose_write_failed_is_still_a_stall() -> None:
    """When the stall's terminal write fails, the producer's own end records the `stalled` error."""
    events = await _cancelled_while_the_log_is_down("stalled", swallow=False)
    assert [(e.type, e.payload["code"], e.payload["retryable"]) for e in events] == [("error", "stalled", True)]
    assert events[0].payload["message"] == "the producer sent nothing for 10 s"


async def test_the_zero_grace_cancel_leaves_no_background_task() -> None:
    """The cancel spawned when the last reader leaves is tracked only until it is done."""
    config = StreamingConfig(**{**QUIET, "resume_grace_s": 0.0})  # type: ignore[arg-type]
    manager = StreamingManager(InMemoryStreamLog(), config=config)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    reader = manager.subscribe(stream_id, owner=ALICE)
    pending = asyncio.ensure_future(anext(reader))
    await producer.emit("text", {})
    await asyncio.wait_for(pending, 2.0)
    await reader.aclose()  # type: ignore[attr-defined]
    await _until(lambda: producer.cancelled, "the last reader leaving cancels")
    await _until(lambda: not manager._background, "the cancel task is forgotten once done")
    await manager.aclose()


class _WallClockOffset:
    """The log's wall clock, ``behind`` seconds in the past (so a touch looks that old to the manager)."""

    def __init__(self) -> None:
        self.behind = 0.0

    def __call__(self) -> float:
        return time.time() - self.behind


@pytest.mark.parametrize(("touched_ago", "kept"), [(None, False), (1.0, True), (6.0, True), (10.0, False)])
async def test_a_reader_elsewhere_keeps_the_stream_within_the_grace_window(
    touched_ago: float | None, kept: bool
) -> None:
    """A stream nobody reads here survives the grace sweep while a reader in another process touched it within
    max(grace, 2 x touch_interval) (here 8 s); never touched, or touched longer ago, it is cancelled."""
    wall, clock = _WallClockOffset(), FakeClock()
    log = InMemoryStreamLog(clock=wall)
    config = StreamingConfig(resume_grace_s=5.0, first_consumer_s=5.0, stall_timeout_s=3600.0, touch_interval_s=4.0)
    manager = StreamingManager(log, config=config, clock=clock)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    if touched_ago is not None:
        wall.behind = touched_ago
        await log.touch(stream_id)  # what a reader in another process sharing the log does
        wall.behind = 0.0
    clock.advance(5.0)
    await manager.sweep()
    assert (await log.read(stream_id, 0, 0)).status == ("open" if kept else "cancelled")
    await manager.aclose()


async def test_the_lifecycle_is_counted_under_the_canonical_names() -> None:
    """Starts, events by type, cancels and completions by reason and outcome, resumes and drops are all counted."""
    metrics = RecordingMetrics()
    config = StreamingConfig(**{**QUIET, "consumer_buffer": 2, "read_batch": 1})  # type: ignore[arg-type]
    manager = StreamingManager(InMemoryStreamLog(), config=config, metrics=metrics)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    await producer.emit("text", {})
    await producer.emit("usage", {})
    await manager.cancel(stream_id, owner=ALICE, reason="client")
    resumed = [e.type async for e in manager.subscribe(stream_id, owner=ALICE, after=1)]
    assert resumed == ["usage", "cancelled"]
    other = await manager.open(owner=ALICE)
    await manager.signal_completion(await manager.create_completion_token(other), Outcome.error("x", "y"))
    counters = {(name, labels): value for (name, labels), value in metrics.counters.items()}
    assert counters[("streams_started_total", (("kind", "chat"),))] == 2
    assert counters[("stream_events_total", (("type", "text"),))] == 1
    assert counters[("stream_events_total", (("type", "usage"),))] == 1
    assert counters[("stream_cancels_total", (("reason", "client"),))] == 1
    assert counters[("streams_completed_total", (("outcome", "cancelled"),))] == 1
    assert counters[("streams_completed_total", (("outcome", "error"),))] == 1
    assert counters[("stream_resumes_total", ())] == 1
    assert metrics.gauges[("streams_active", ())] == 0
    assert metrics.gauges[("stream_consumers", ())] == 0
    await manager.aclose()


async def test_a_dropped_consumer_is_counted_as_lagged() -> None:
    """A consumer dropped for lagging is counted under stream_consumers_dropped_total, reason lagged."""
    metrics = RecordingMetrics()
    config = StreamingConfig(**{**QUIET, "consumer_buffer": 2, "read_batch": 1})  # type: ignore[arg-type]
    manager = StreamingManager(InMemoryStreamLog(), config=config, metrics=metrics)
    stream_id = await manager.open(owner=ALICE)
    publisher = manager.publisher(await manager.create_completion_token(stream_id))
    await publisher.publish("text", {})
    reader = manager.subscribe(stream_id, owner=ALICE)
    await anext(reader)
    waiting = asyncio.ensure_future(anext(reader))  # caught up: it waits
    await asyncio.sleep(0.01)
    for _ in range(3):
        await publisher.publish("text", {})
    with pytest.raises(ConsumerLaggedError):  # woken 3 events behind, more than the buffer of 2
        await asyncio.wait_for(waiting, 2.0)
    assert metrics.counters[("stream_consumers_dropped_total", (("reason", "lagged"),))] == 1
    await manager.aclose()


async def test_cancelling_a_stream_produced_elsewhere_fences_its_producer(log: InMemoryStreamLog) -> None:
    """B cancels a stream A produces: the log ends it `cancelled` with B's reason and A's next publish is refused;
    cancelling it again, or a stream already ended, is a quiet no-op."""
    metrics = RecordingMetrics()
    a = StreamingManager(log, config=StreamingConfig(**QUIET))  # type: ignore[arg-type]
    b = StreamingManager(log, config=StreamingConfig(**QUIET), metrics=metrics)  # type: ignore[arg-type]
    producer = RemoteProducer()
    stream_id = await a.start(owner=ALICE, producer=producer)
    await producer.emit("text", {})
    await b.cancel(stream_id, owner=ALICE, reason="operator")
    read = await log.read(stream_id, 0, 10)
    assert [(e.type, e.payload) for e in read.events] == [("text", {}), ("cancelled", {"reason": "operator"})]
    assert isinstance(await producer.emit("text", {}), (CompletionOwnershipError, StreamClosedError))
    await b.cancel(stream_id, owner=ALICE, reason="again")
    assert (await log.read(stream_id, 0, 10)).last_seq == 2
    assert metrics.counters[("stream_cancels_total", (("reason", "operator"),))] == 1
    assert metrics.counters[("streams_completed_total", (("outcome", "cancelled"),))] == 1
    await a.aclose()
    await b.aclose()


async def test_an_opened_stream_never_given_a_token_is_forgotten_after_first_consumer_s(
    log: InMemoryStreamLog,
) -> None:
    """open() without a token keeps a run only until first_consumer_s of disuse; then it no longer counts."""
    clock, metrics = FakeClock(), RecordingMetrics()
    config = StreamingConfig(**{**QUIET, "first_consumer_s": 5.0})  # type: ignore[arg-type]
    manager = StreamingManager(log, config=config, metrics=metrics, clock=clock)
    await manager.open(owner=ALICE)
    clock.advance(4.5)
    await manager.sweep()
    assert metrics.gauges[("streams_active", ())] == 1
    clock.advance(0.5)
    await manager.sweep()
    assert metrics.gauges[("streams_active", ())] == 0
    await manager.aclose()


@pytest.mark.parametrize(("had_reader", "kept_at", "ended_at"), [(True, 1.5, 2.0), (False, 5.5, 6.0)])
async def test_grace_starts_when_the_last_reader_leaves_or_waits_for_a_first_one(
    had_reader: bool, kept_at: float, ended_at: float
) -> None:
    """A stream whose reader left is cancelled resume_grace_s (2 s) later; one never read gets max(grace,
    first_consumer_s) (6 s) from its start. Exactly at the limit, not before."""
    clock = FakeClock()
    config = StreamingConfig(resume_grace_s=2.0, first_consumer_s=6.0, stall_timeout_s=3600.0)
    manager = StreamingManager(InMemoryStreamLog(), config=config, clock=clock)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    if had_reader:
        reader = manager.subscribe(stream_id, owner=ALICE)
        pending = asyncio.ensure_future(anext(reader))
        await producer.emit("text", {})
        await asyncio.wait_for(pending, 2.0)
        clock.advance(30.0)  # a reader attached: no grace runs however long it reads
        await manager.sweep()
        assert await _status(manager, stream_id) == "open"
        await reader.aclose()  # type: ignore[attr-defined]
    clock.advance(kept_at)
    await manager.sweep()
    assert await _status(manager, stream_id) == "open"
    clock.advance(ended_at - kept_at)
    await manager.sweep()
    read = await manager.describe(stream_id, owner=ALICE)
    assert read.status == "cancelled"
    await manager.aclose()
