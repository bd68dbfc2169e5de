"""The StreamingManager's watchdog and lifecycle edges: lease renewal and stall limits to the tick, retries of a
refused terminal write, giving up a fenced run, races of a cancel from elsewhere, drain and aclose."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from domain.errors import CompletionOwnershipError, ServiceUnavailableError
from domain.streaming import CompletionToken, Outcome, StreamEvent
from domain.types import JsonValue, StreamId
from ports.stream_log import StreamLog
from services.streaming.manager import StreamingManager, StreamPublisher
from services.streaming.runs import StreamingConfig
from tests.fakes.clock import FakeClock
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.stream_log import FlakyStreamLog
from tests.fakes.streaming import ALICE, RemoteProducer

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


async def _events(log: StreamLog, stream_id: StreamId) -> list[tuple[str, Mapping[str, JsonValue]]]:
    return [(e.type, e.payload) for e in (await log.read(stream_id, 0, 100)).events]


async def _until(check: Callable[[], bool], what: str, polls: int = 1000) -> None:
    for _ in range(polls):
        if check():
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"never happened: {what}")


def _cancels(metrics: RecordingMetrics, reason: str) -> float:
    return metrics.counters[("stream_cancels_total", (("reason", reason),))]


# --- renewing the producer lease, to the tick ---------------------------------------------------------------------


async def test_a_silent_producer_renews_once_a_third_of_the_lease_has_passed() -> None:
    """Not before lease/3 of silence, exactly then: the log's lease moves to that moment plus the lease."""
    clock = FakeClock()
    log = InMemoryStreamLog(lease_s=3.0, clock=clock)
    manager = _manager(log, clock=clock, producer_lease_s=3.0)
    stream_id = await manager.open(owner=ALICE)
    await manager.create_completion_token(stream_id)
    start = clock()

    async def lease_until() -> float:
        info = await log.get(stream_id)
        assert info is not None
        return info.lease_until

    clock.advance(0.75)
    await manager.sweep()
    assert await lease_until() == start + 3.0
    clock.advance(0.25)
    await manager.sweep()
    assert await lease_until() == start + 1.0 + 3.0
    await manager.aclose()


async def test_without_a_producer_lease_nothing_is_renewed() -> None:
    """producer_lease_s = 0 turns renewal off, however long the producer stays silent."""
    clock = FakeClock()
    log = InMemoryStreamLog(lease_s=3.0, clock=clock)
    manager = _manager(log, clock=clock, producer_lease_s=0.0)
    stream_id = await manager.open(owner=ALICE)
    await manager.create_completion_token(stream_id)
    info = await log.get(stream_id)
    assert info is not None
    clock.advance(100.0)
    await manager.sweep()
    again = await log.get(stream_id)
    assert again is not None
    assert again.lease_until == info.lease_until
    await manager.aclose()


# --- the stall limit, with and without a producer's own bound on its silences --------------------------------------


async def _stall_status(stall_timeout_s: float, silence_s: float, waits: tuple[float, ...]) -> list[str]:
    """The stream's status after each of ``waits`` (seconds of silence, cumulative) and a watchdog pass."""
    clock = FakeClock()
    log = InMemoryStreamLog()
    manager = _manager(log, clock=clock, stall_timeout_s=stall_timeout_s, producer_lease_s=0.0)
    stream_id = await manager.open(owner=ALICE)
    token = await manager.create_completion_token(stream_id)
    if silence_s:
        manager.publisher(token).expect_silence(silence_s)
    statuses: list[str] = []
    for wait in waits:
        clock.advance(wait)
        await manager.sweep()
        statuses.append((await log.read(stream_id, 0, 0)).status)
    await manager.aclose()
    return statuses


async def test_a_producer_bounding_its_silences_is_stalled_one_second_past_its_bound() -> None:
    """expect_silence(20) with a 10 s stall timeout: the watchdog waits 21 s, to the tick."""
    assert await _stall_status(10.0, 20.0, (20.75, 0.25)) == ["open", "error"]


async def test_a_short_bound_still_gets_its_extra_second() -> None:
    """expect_silence(0.5) with a 1 s stall timeout: the limit is 1.5 s, not 1 s."""
    assert await _stall_status(1.0, 0.5, (1.25, 0.25)) == ["open", "error"]


async def test_without_a_bound_the_stall_timeout_is_the_limit() -> None:
    """No expect_silence: a 0.5 s stall timeout ends the stream at 0.5 s, with no extra second."""
    assert await _stall_status(0.5, 0.0, (0.5,)) == ["error"]


async def test_a_zero_stall_timeout_turns_the_stall_watchdog_off() -> None:
    """stall_timeout_s = 0: never stalled, however long the silence."""
    assert await _stall_status(0.0, 0.0, (1000.0,)) == ["open"]


# --- one watchdog pass sees every run ------------------------------------------------------------------------------


async def test_one_pass_ends_every_stalled_run_whatever_comes_before_it() -> None:
    """A run without a token, a run whose terminal write is pending, a stalled run: the next stalled run is still
    ended in the same pass."""
    clock, log = FakeClock(), FlakyStreamLog()
    manager = _manager(log, clock=clock, stall_timeout_s=10.0, producer_lease_s=0.0)
    await manager.open(owner=ALICE)  # no token: skipped
    pending = await manager.open(owner=ALICE)
    token = await manager.create_completion_token(pending)
    log.fail_next("finalize")
    with pytest.raises(ServiceUnavailableError):
        await manager.signal_completion(token, Outcome.done())  # now pending, retried by the watchdog
    stalled = []
    for _ in range(2):
        stream_id = await manager.open(owner=ALICE)
        await manager.create_completion_token(stream_id)
        stalled.append(stream_id)
    clock.advance(10.0)
    await manager.sweep()
    assert (await log.read(pending, 0, 0)).status == "done"
    assert [(await log.read(s, 0, 0)).status for s in stalled] == ["error", "error"]
    await manager.aclose()


async def test_a_pass_looks_past_a_run_that_has_a_reader() -> None:
    """A run being read is left alone, and the never-read run after it is cancelled (grace), counted as such."""
    clock, metrics, log = FakeClock(), RecordingMetrics(), InMemoryStreamLog()
    manager = _manager(log, clock=clock, metrics=metrics, resume_grace_s=5.0, first_consumer_s=5.0)
    read = await manager.start(owner=ALICE, producer=RemoteProducer())
    reader = manager.subscribe(read, owner=ALICE)
    pending = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0.01)
    unread = await manager.start(owner=ALICE, producer=RemoteProducer())
    clock.advance(5.0)
    await manager.sweep()
    assert (await log.read(read, 0, 0)).status == "open"
    assert await _events(log, unread) == [("cancelled", {"reason": "grace"})]
    assert _cancels(metrics, "grace") == 1
    pending.cancel()
    await manager.aclose()


# --- a refused terminal write: retried with backoff -----------------------------------------------------------------


async def test_a_refused_terminal_write_is_retried_after_1_2_4_8_8_seconds() -> None:
    """Each retry waits twice as long as the one before (from 1 s, at most 8 s), and comes exactly then."""
    clock, log = FakeClock(), FlakyStreamLog()
    manager = _manager(log, clock=clock, finalize_attempts=10, producer_lease_s=0.0)
    stream_id = await manager.open(owner=ALICE)
    token = await manager.create_completion_token(stream_id)
    log.down("finalize")
    with pytest.raises(ServiceUnavailableError):
        await manager.signal_completion(token, Outcome.done())
    for delay in (1.0, 2.0, 4.0, 8.0, 8.0):
        calls = log.calls["finalize"]
        clock.advance(delay - 0.25)
        await manager.sweep()
        assert log.calls["finalize"] == calls, f"retried before {delay} s"
        clock.advance(0.25)
        await manager.sweep()
        assert log.calls["finalize"] == calls + 1, f"not retried at {delay} s"
    log.up()
    await manager.aclose()


# --- a run fenced by another process is given up -----------------------------------------------------------------


async def test_a_fenced_run_is_given_up_its_producer_stopped_and_its_readers_follow_the_log() -> None:
    """B takes the stream over; A's next renewal finds itself fenced: A cancels its producer, lets the run go, and
    A's reader (served by the local tail until then) gets the end B writes."""
    log, clock = InMemoryStreamLog(), FakeClock()
    a = _manager(log, clock=clock, local_tail=8, poll_s=30.0, producer_lease_s=3.0)
    b = _manager(log)
    producer = RemoteProducer()
    stream_id = await a.start(owner=ALICE, producer=producer)
    await producer.emit("text", {})
    reader = a.subscribe(stream_id, owner=ALICE)
    assert (await anext(reader)).seq == 1
    pending = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0.01)
    token = await b.create_completion_token(stream_id)
    clock.advance(1.0)
    await a.sweep()
    await _until(lambda: producer.cancelled, "the fenced producer is cancelled")
    assert a.active_streams == 0
    await b.signal_completion(token, Outcome.done({"by": "b"}))
    end = await asyncio.wait_for(pending, 2.0)
    assert (end.type, end.payload) == ("done", {"by": "b"})
    await reader.aclose()  # type: ignore[attr-defined]
    await a.aclose()
    await b.aclose()


async def test_a_fenced_run_without_a_producer_task_is_given_up_too() -> None:
    """A stream driven by an outside dispatcher (no task here) is released the same way, without an error."""
    log, clock = InMemoryStreamLog(), FakeClock()
    a = _manager(log, clock=clock, producer_lease_s=3.0)
    b = _manager(log)
    stream_id = await a.open(owner=ALICE)
    await a.create_completion_token(stream_id)
    await b.create_completion_token(stream_id)
    clock.advance(1.0)
    await a.sweep()
    assert a.active_streams == 0
    await a.aclose()
    await b.aclose()


# --- describe and reaping ----------------------------------------------------------------------------------------


async def test_describe_never_reaps_a_stream_produced_here() -> None:
    """A stream whose lease lapsed (by every clock) while its producer lives here is left to that producer."""
    log_clock = FakeClock()
    log = InMemoryStreamLog(lease_s=10.0, clock=log_clock)
    manager = _manager(log, producer_lease_s=0.0)
    stream_id = await manager.open(owner=ALICE)
    await manager.create_completion_token(stream_id)
    log_clock.advance(20.0)  # lapsed for the log, and long past for the wall clock (the log's clock is at 1020 s)
    assert (await manager.describe(stream_id, owner=ALICE)).status == "open"
    await manager.aclose()


async def test_a_reaped_stream_is_counted_as_an_error_end() -> None:
    """describe() elsewhere ends a lapsed stream with producer_lost and counts it among completed errors."""
    log_clock, metrics = FakeClock(), RecordingMetrics()
    log = InMemoryStreamLog(lease_s=10.0, clock=log_clock)
    a, b = _manager(log, producer_lease_s=0.0), _manager(log, metrics=metrics)
    stream_id = await a.open(owner=ALICE)
    await a.create_completion_token(stream_id)
    assert (await b.describe(stream_id, owner=ALICE)).status == "open"  # the wall clock says lapsed, the log not yet
    assert metrics.counters[("streams_completed_total", (("outcome", "error"),))] == 0
    log_clock.advance(20.0)
    assert (await b.describe(stream_id, owner=ALICE)).status == "error"
    assert metrics.counters[("streams_completed_total", (("outcome", "error"),))] == 1
    await a.aclose()
    await b.aclose()


# --- tokens and publishers ---------------------------------------------------------------------------------------


async def test_a_token_for_a_stream_never_given_one_is_refused() -> None:
    """open() without create_completion_token: any token (even generation 1) is refused, as a forged one."""
    manager = _manager(InMemoryStreamLog())
    stream_id = await manager.open(owner=ALICE)
    guess = CompletionToken(stream_id, 1, "guess")
    with pytest.raises(CompletionOwnershipError):
        manager.publisher(guess)
    with pytest.raises(CompletionOwnershipError):
        await manager.signal_completion(guess, Outcome.done())
    await manager.aclose()


async def test_a_superseded_publisher_is_told_it_was_superseded() -> None:
    """The refusal names the stream and says why (a newer token), so a producer can tell it from a closed stream."""
    manager = _manager(InMemoryStreamLog())
    stream_id = await manager.open(owner=ALICE)
    old = manager.publisher(await manager.create_completion_token(stream_id))
    await manager.create_completion_token(stream_id)
    with pytest.raises(CompletionOwnershipError) as refused:
        await old.publish("text", {})
    assert refused.value.message == "this publisher was superseded by a newer completion token"
    assert refused.value.context == {"stage": "complete", "stream_id": stream_id}
    await manager.aclose()


async def test_a_producer_cancelled_by_something_else_ends_with_cancelled_shutdown() -> None:
    """A producer whose own work was cancelled (not by the manager) ends the stream `cancelled`, reason shutdown."""
    log = InMemoryStreamLog()
    manager = _manager(log)

    async def producer(publisher: StreamPublisher) -> None:
        raise asyncio.CancelledError

    stream_id = await manager.start(owner=ALICE, producer=producer)
    await _until(lambda: manager.active_streams == 0, "the stream ends")
    assert await _events(log, stream_id) == [("cancelled", {"reason": "shutdown"})]
    await manager.aclose()


# --- cancelling a stream produced elsewhere, racing its producer --------------------------------------------------


async def test_a_cancel_racing_the_streams_own_end_is_a_quiet_no_op() -> None:
    """B cancels A's stream just as A ends it: B's takeover finds it ended and gives up quietly."""
    log = FlakyStreamLog()
    a, b = _manager(log), _manager(log)
    stream_id = await a.open(owner=ALICE)
    token = await a.create_completion_token(stream_id)

    async def a_ends_it() -> StreamEvent:
        return await a.signal_completion(token, Outcome.done())

    log.before_next("advance_generation", a_ends_it)
    await b.cancel(stream_id, owner=ALICE)
    assert await _events(log, stream_id) == [("done", {})]
    await a.aclose()
    await b.aclose()


async def test_a_cancel_racing_another_takeover_is_a_quiet_no_op() -> None:
    """B cancels a stream while C takes it over between B's fence and B's write: B's write is refused, quietly."""
    log = FlakyStreamLog()
    a, b, c = _manager(log), _manager(log), _manager(log)
    stream_id = await a.open(owner=ALICE)
    await a.create_completion_token(stream_id)
    log.before_next("finalize", lambda: c.create_completion_token(stream_id))
    await b.cancel(stream_id, owner=ALICE)
    assert (await log.read(stream_id, 0, 0)).status == "open"  # C owns it now
    for manager in (a, b, c):
        await manager.aclose()


# --- the zero-grace cancel when the last reader leaves ---------------------------------------------------------------


async def test_a_short_grace_is_not_zero_grace() -> None:
    """With resume_grace_s = 0.5 the last reader leaving does not end the stream at once."""
    clock, log = FakeClock(), InMemoryStreamLog()
    manager = _manager(log, clock=clock, resume_grace_s=0.5)
    stream_id = await manager.start(owner=ALICE, producer=RemoteProducer())
    reader = manager.subscribe(stream_id, owner=ALICE)
    pending = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0.01)
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    await reader.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0.05)
    assert (await log.read(stream_id, 0, 0)).status == "open"
    await manager.aclose()


async def test_zero_grace_ends_a_dispatcher_driven_stream_when_its_reader_leaves() -> None:
    """No producer task here, zero grace: the last reader leaving writes `cancelled` (reason grace) at once."""
    metrics, log = RecordingMetrics(), InMemoryStreamLog()
    manager = _manager(log, metrics=metrics, resume_grace_s=0.0)
    stream_id = await manager.open(owner=ALICE)
    await manager.create_completion_token(stream_id)
    reader = manager.subscribe(stream_id, owner=ALICE)
    pending = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0.01)
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    await reader.aclose()  # type: ignore[attr-defined]
    for _ in range(200):
        if (await log.read(stream_id, 0, 0)).status != "open":
            break
        await asyncio.sleep(0.002)
    assert await _events(log, stream_id) == [("cancelled", {"reason": "grace"})]
    assert _cancels(metrics, "grace") == 1
    await manager.aclose()


# --- drain ------------------------------------------------------------------------------------------------------------


async def test_drain_with_no_grace_cuts_at_once() -> None:
    """drain(0) does not wait for a producer that would never end: it cuts it (shutdown) straight away."""
    log = InMemoryStreamLog()
    manager = _manager(log)
    stream_id = await manager.start(owner=ALICE, producer=RemoteProducer())
    await asyncio.wait_for(manager.drain(0.0), 0.5)
    assert await _events(log, stream_id) == [("cancelled", {"reason": "shutdown"})]
    await manager.aclose()


async def test_drain_waits_a_grace_under_one_second_and_returns_when_producers_end() -> None:
    """Within a 0.9 s grace a producer finishing at 0.2 s ends with done, and drain returns right then (not at its
    next poll, 5 s away)."""
    log = InMemoryStreamLog()
    manager = _manager(log, poll_s=5.0)

    async def briefly(publisher: StreamPublisher) -> Mapping[str, JsonValue]:
        await asyncio.sleep(0.2)
        return {"ok": True}

    stream_id = await manager.start(owner=ALICE, producer=briefly)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(manager.drain(0.9), 3.0)
    assert loop.time() - started < 0.8
    assert await _events(log, stream_id) == [("done", {"ok": True})]
    await manager.aclose()


async def test_drain_ends_dispatcher_driven_streams_after_the_grace() -> None:
    """Streams with no producer task here are looked at until the grace ends, then cancelled (shutdown), counted."""
    metrics, log = RecordingMetrics(), InMemoryStreamLog()
    manager = _manager(log, metrics=metrics, poll_s=0.05)
    stream_id = await manager.open(owner=ALICE)
    await manager.create_completion_token(stream_id)
    await asyncio.wait_for(manager.drain(0.2), 2.0)
    assert await _events(log, stream_id) == [("cancelled", {"reason": "shutdown"})]
    assert _cancels(metrics, "shutdown") == 1
    await manager.aclose()


async def test_drain_lets_cut_producers_finish_their_way_out_within_the_shutdown_timeout() -> None:
    """After the cut, drain waits for the producers' tasks (what they record on the way out is kept), but no longer
    than shutdown_timeout_s for one that will not stop."""
    manager = _manager(InMemoryStreamLog(), shutdown_timeout_s=0.3)
    recorded: list[str] = []
    stubborn: list[asyncio.Task[object]] = []

    async def tidy(publisher: StreamPublisher) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)
            recorded.append("usage")
            raise

    async def deaf(publisher: StreamPublisher) -> None:
        task = asyncio.current_task()
        assert task is not None
        stubborn.append(task)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.Event().wait()  # ignores the first cancellation

    await manager.start(owner=ALICE, producer=tidy)
    await manager.start(owner=ALICE, producer=deaf)
    await asyncio.sleep(0.01)
    await asyncio.wait_for(manager.drain(0.0), 2.0)
    assert recorded == ["usage"]
    stubborn[0].cancel()
    await asyncio.gather(*stubborn, return_exceptions=True)
    await manager.aclose()


# --- aclose ---------------------------------------------------------------------------------------------------------


async def test_aclose_leaves_no_task_of_its_own_running() -> None:
    """After aclose, the watchdog and every producer task have finished (nothing left for the loop to destroy)."""
    manager = _manager(InMemoryStreamLog())
    await manager.start(owner=ALICE, producer=RemoteProducer())
    await manager.aclose()  # awaited here, not in wait_for: its task's own wrap-up would let the loop run on
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current and not t.done()] == []


async def test_aclose_waits_for_background_cancels_but_only_so_long() -> None:
    """A zero-grace cancel still writing when aclose comes is waited for up to shutdown_timeout_s, then left."""
    log = FlakyStreamLog()
    manager = _manager(log, resume_grace_s=0.0, shutdown_timeout_s=0.2)
    stream_id = await manager.open(owner=ALICE)
    await manager.create_completion_token(stream_id)
    release = asyncio.Event()
    log.before_next("finalize", release.wait)  # the cancel's write hangs until released
    reader = manager.subscribe(stream_id, owner=ALICE)
    pending = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0.01)
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    await reader.aclose()  # type: ignore[attr-defined]
    await _until(lambda: log.calls.get("finalize", 0) == 1, "the zero-grace cancel is writing")
    await asyncio.wait_for(manager.aclose(), 1.0)
    release.set()
    await asyncio.sleep(0.01)
    assert await _events(log, stream_id) == [("cancelled", {"reason": "grace"})]


async def test_after_aclose_a_leaving_reader_starts_nothing() -> None:
    """A run whose shutdown write failed stays as it is after aclose: its last reader leaving (zero grace) writes
    nothing, even once the log answers again."""
    log = FlakyStreamLog()
    manager = _manager(log, resume_grace_s=0.0)
    stream_id = await manager.start(owner=ALICE, producer=RemoteProducer())
    reader = manager.subscribe(stream_id, owner=ALICE)
    pending = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0.01)
    log.down("finalize")
    await manager.aclose()
    log.up()
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    await reader.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0.05)
    assert (await log.read(stream_id, 0, 0)).status == "open"


# --- unattended streams (a long job, mostly not watched) ------------------------------------------------------------


async def test_an_unattended_stream_outlives_the_grace_and_still_stalls() -> None:
    """Never read, past every grace: an unattended stream stays open while a plain one beside it is cancelled; the
    stall bound still applies to it."""
    clock, metrics, log = FakeClock(), RecordingMetrics(), InMemoryStreamLog()
    manager = _manager(log, clock=clock, metrics=metrics, resume_grace_s=5.0, first_consumer_s=5.0, stall_timeout_s=60)
    kept = await manager.open(owner=ALICE)
    manager.publisher(await manager.create_completion_token(kept)).keep_unattended()
    plain = await manager.open(owner=ALICE)
    await manager.create_completion_token(plain)
    clock.advance(30.0)
    await manager.sweep()
    assert (await log.read(kept, 0, 0)).status == "open"
    assert await _events(log, plain) == [("cancelled", {"reason": "grace"})]
    assert _cancels(metrics, "grace") == 1
    clock.advance(31.0)
    await manager.sweep()
    assert (await log.read(kept, 0, 0)).status == "error"
    await manager.aclose()


async def test_zero_grace_leaves_an_unattended_stream_open_when_its_reader_leaves() -> None:
    """The zero-grace cancel on the last reader leaving skips an unattended stream."""
    log = InMemoryStreamLog()
    manager = _manager(log, resume_grace_s=0.0)
    stream_id = await manager.open(owner=ALICE)
    manager.publisher(await manager.create_completion_token(stream_id)).keep_unattended()
    reader = manager.subscribe(stream_id, owner=ALICE)
    pending = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0.01)
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    await reader.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0.05)
    assert (await log.read(stream_id, 0, 0)).status == "open"
    await manager.aclose()
