"""Use case: the StreamingManager, which runs producers, owns completion, and fans streams out to any number of readers.

The ownership rule (from the seed): the dispatcher gets a completion token from ``create_completion_token``;
producers only *publish*; only ``signal_completion(token, outcome)`` with the current token writes the one terminal
event. A wrong, forged or stale token raises ``CompletionOwnershipError`` and writes nothing. A token is spent by its
first completion, so a second completion with the same token raises too (and writes nothing).

``start`` builds on that: the manager is the dispatcher, runs the producer in its own task (a client disconnect
never cancels it), and ends the stream with ``done``, ``error`` or ``cancelled``. Readers pull from the stream log by
cursor, so they never slow the producer or each other; one that falls more than ``consumer_buffer`` events behind
after catching up is dropped with ``ConsumerLaggedError`` and may resume from its cursor. A watchdog cancels streams
whose producer is silent past ``stall_timeout_s`` (error ``stalled``) and streams nobody has read for
``resume_grace_s`` (``cancelled``, reason ``grace``).

Faults (the promise is one terminal event for every reader, whatever dies):

- The watchdog renews the log's producer lease of every silent local stream; a reader (or ``describe``) that finds a
  stream whose lease lapsed (its producing process died) reaps it: ``error``/``producer_lost``, written once, fenced.
- A terminal write the log refuses (backend down) is kept and retried by the watchdog with backoff, at most
  ``finalize_attempts`` times; then the stream is given up and released.
- A reader whose log lost the stream (a Redis restart without persistence) or stays unreachable past ``outage_s``
  ends with a synthetic terminal ``error`` (``stream_lost`` / ``stream_unavailable``, retryable) made for it alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import cast

from domain.errors import (
    CompletionOwnershipError,
    NotFoundError,
    RateLimitError,
    ServiceError,
    ServiceUnavailableError,
    ValidationError,
)
from domain.streaming import (
    CompletionToken,
    ConsumerLaggedError,
    Outcome,
    StreamClosedError,
    StreamEvent,
    StreamInfo,
    check_attachment,
    check_publishable,
    gap_event,
    lost_event,
    new_stream_id,
    producer_lost,
)
from domain.types import CustomerId, JsonValue, StreamId
from ports.metrics import Metrics, NullMetrics
from ports.stream_log import StreamLog
from services.streaming.publisher import Producer, RunPublisher, StreamPublisher
from services.streaming.runs import Run, StreamingConfig

__all__ = ["Producer", "StreamPublisher", "StreamingManager"]

_log = logging.getLogger("switchyard.streaming")


class StreamingManager:
    """Producer tasks, completion tokens, cancellation, grace period, stall timeout and fan-out over a StreamLog."""

    def __init__(
        self,
        log: StreamLog,
        *,
        config: StreamingConfig | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._config = config or StreamingConfig()
        self._metrics: Metrics = metrics or NullMetrics()
        self._clock = clock
        self._runs: dict[StreamId, Run] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False
        self._draining = False  # set once by ``drain``: new streams are refused from then on

    @property
    def config(self) -> StreamingConfig:
        return self._config

    @property
    def active_streams(self) -> int:
        """Streams this process is producing right now."""
        return sum(1 for run in self._runs.values() if run.active)

    # --- the dispatcher's API -----------------------------------------------------------------------------------

    async def open(
        self, *, owner: CustomerId, kind: str = "chat", meta: Mapping[str, JsonValue] | None = None
    ) -> StreamId:
        """Create an open stream owned by ``owner`` (no token yet: see ``create_completion_token``).

        Once ``drain`` (or ``aclose``) began, raises ``ServiceUnavailableError``: retryable, another instance can serve.
        """
        if self.draining:
            raise ServiceUnavailableError(
                "this server is shutting down and takes no new streams; retry (another instance will serve it)",
                context={"stage": "open"},
            )
        stream_id = new_stream_id()
        info = StreamInfo(stream_id, owner, kind, created_at=time.time(), meta=dict(meta or {}))
        await self._log.create(info)
        self._runs[stream_id] = Run(stream_id, owner, kind, self._clock())
        self._metrics.increment("streams_started_total", kind=kind)
        self._metrics.gauge_add("streams_active", 1)
        self._ensure_sweeper()
        return stream_id

    async def create_completion_token(self, stream_id: StreamId) -> CompletionToken:
        """Issue the token that alone may end ``stream_id``; any earlier token (here or elsewhere) becomes stale."""
        generation = await self._log.advance_generation(stream_id)
        run = self._runs.get(stream_id)
        if run is None:  # taking over a stream another process produced: its writer is fenced from now on
            info = await self._log.get(stream_id)
            if info is None:
                raise NotFoundError("stream not found", context={"stream_id": stream_id})
            run = self._runs[stream_id] = Run(stream_id, info.owner, info.kind, self._clock())
            run.tail_last = info.last_seq
            self._metrics.gauge_add("streams_active", 1)
            self._ensure_sweeper()
        token = CompletionToken.issue(stream_id, generation)
        run.token = token
        run.last_activity = self._clock()
        return token

    def publisher(self, token: CompletionToken) -> StreamPublisher:
        """A publisher for the holder of ``token`` (to hand to a producer; it cannot complete)."""
        run = self._current_run(token)
        return RunPublisher(self._publish, run, token.generation)

    async def publish(
        self, stream_id: StreamId, type: str, payload: Mapping[str, JsonValue], data: bytes | None = None
    ) -> int:
        """Publish on behalf of the current token holder (the seed's ``send_to_queues``); returns the seq."""
        run = self._runs.get(stream_id)
        if run is None or run.token is None:
            raise StreamClosedError(stream_id)
        return await self._publish(run, run.token.generation, type, payload, data)

    async def signal_completion(self, token: CompletionToken, outcome: Outcome) -> StreamEvent:
        """End the stream with ``outcome`` if ``token`` is the current one; otherwise raise and write nothing."""
        run = self._current_run(token)
        event = await self._finish(run, outcome, run.token)
        if event is None:  # pragma: no cover - _current_run guarantees the token is current
            raise CompletionOwnershipError(context={"stream_id": token.stream_id})
        return event

    async def start(
        self,
        *,
        owner: CustomerId,
        producer: Producer,
        kind: str = "chat",
        meta: Mapping[str, JsonValue] | None = None,
    ) -> StreamId:
        """Open a stream and run ``producer`` in a manager-owned task; the manager completes it."""
        stream_id = await self.open(owner=owner, kind=kind, meta=meta)
        token = await self.create_completion_token(stream_id)
        run = self._runs[stream_id]
        run.task = asyncio.create_task(self._drive(run, token, producer), name=f"stream-producer:{stream_id}")
        return stream_id

    async def cancel(self, stream_id: StreamId, *, owner: CustomerId, reason: str = "client") -> None:
        """Stop the upstream work and end the stream with ``cancelled``; a no-op when it has already ended."""
        info = await self.describe(stream_id, owner=owner)
        if info.finished:
            return
        run = self._runs.get(stream_id)
        if run is not None and run.token is not None:
            await self._terminate(run, Outcome.cancelled(reason), reason)
            return
        # Produced by another process: fence its producer (its next publish is refused) and end the stream here.
        self._metrics.increment("stream_cancels_total", reason=reason)
        with contextlib.suppress(StreamClosedError, CompletionOwnershipError):
            generation = await self._log.advance_generation(stream_id)
            await self._log.finalize(stream_id, generation, Outcome.cancelled(reason))
            self._metrics.increment("streams_completed_total", outcome="cancelled")

    async def describe(self, stream_id: StreamId, *, owner: CustomerId) -> StreamInfo:
        """The stream's info; ``NotFoundError`` when unknown, expired or owned by someone else."""
        info = await self._log.get(stream_id)
        if info is None or info.owner != owner:
            raise NotFoundError("stream not found", context={"stream_id": stream_id})
        if info.lease_lapsed(time.time()) and not self._producing(stream_id):
            await self._reap(stream_id)
            info = await self._log.get(stream_id) or info
        return info

    # --- readers ------------------------------------------------------------------------------------------------

    def subscribe(self, stream_id: StreamId, *, owner: CustomerId, after: int = 0) -> AsyncIterator[StreamEvent]:
        """The stream's events after ``after``, live until the terminal event (or a ``gap`` first, if trimmed)."""
        return cast(AsyncIterator[StreamEvent], self.watch(stream_id, owner=owner, after=after))

    async def watch(
        self, stream_id: StreamId, *, owner: CustomerId, after: int = 0, idle_s: float | None = None
    ) -> AsyncIterator[StreamEvent | None]:
        """Like ``subscribe``, but yields ``None`` after each ``idle_s`` without events (for keepalives)."""
        if after < 0:
            raise ValidationError("after", "must be a non-negative seq")
        await self.describe(stream_id, owner=owner)
        config = self._config
        run = self._runs.get(stream_id)
        self._attach(run, resumed=after > 0)
        cursor, caught_up, idle_started = after, False, self._clock()
        last_touch = -math.inf  # the first wait touches at once, whatever the clock's origin
        # Readers of a stream produced here may serve themselves from the run's tail of recent events once they
        # have read the log; after a wait that timed out they read the log again (it may hold an end written
        # by another process).
        use_tail = False
        outage_since: float | None = None  # when the log stopped answering this reader
        try:
            while True:
                local = run is not None and run.active
                waiter = run.signal.waiter() if local and run is not None else None
                batch = None
                if local and use_tail and config.local_tail and run is not None:
                    batch = run.tail_after(cursor, config.read_batch)
                try:
                    if batch is None:
                        batch = await self._log.read(stream_id, cursor, config.read_batch)
                        use_tail = True
                        if not local and batch.lease_lapsed(time.time()):
                            await self._reap(stream_id)  # its producer died: end it, then read the end
                            continue
                except (NotFoundError, ServiceUnavailableError) as exc:
                    outage_since = await self._ride_out(exc, outage_since)
                    if outage_since is None:
                        yield self._lost(stream_id, cursor, exc)
                        return
                    continue
                outage_since = None
                if batch.missing_after(cursor):
                    gap = gap_event(stream_id, cursor, batch.first_seq, time.time())
                    cursor = gap.seq
                    yield gap
                lag = batch.last_seq - cursor
                if caught_up and lag > config.consumer_buffer:
                    self._metrics.increment("stream_consumers_dropped_total", reason="lagged")
                    raise ConsumerLaggedError(stream_id, cursor, lag, config.consumer_buffer)
                if batch.events:
                    # Reads hold only seqs after the cursor (the StreamLog contract, and the tail's); the check is
                    # a guard, so a log that breaks the contract still cannot make a reader deliver a seq twice.
                    for event in (e for e in batch.events if e.seq > cursor):
                        cursor = event.seq
                        yield event
                        if event.terminal:
                            return
                    idle_started = self._clock()
                    continue
                if batch.status != "open":
                    return  # resumed at or past the terminal event: nothing more will come
                caught_up = True
                timeout = config.poll_s if idle_s is None else min(config.poll_s, idle_s)
                if waiter is not None:
                    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation (bpo-42130)
                    try:
                        async with asyncio.timeout(timeout):
                            await waiter.wait()
                    except TimeoutError:
                        use_tail = False
                else:
                    try:
                        now = self._clock()
                        if now - last_touch >= config.touch_interval_s:
                            last_touch = now
                            await self._log.touch(stream_id)
                        await self._log.wait(stream_id, cursor, timeout)
                    except (NotFoundError, ServiceUnavailableError) as exc:
                        outage_since = await self._ride_out(exc, outage_since)
                        if outage_since is None:
                            yield self._lost(stream_id, cursor, exc)
                            return
                now = self._clock()
                if idle_s is not None and now - idle_started >= idle_s:
                    idle_started = now
                    yield None
        finally:
            self._detach(run)

    # --- lifecycle ----------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """End every stream this process still produces with ``cancelled`` (reason ``shutdown``) and stop its tasks.

        A served process has already called ``drain`` (with a grace period) by then; this is the backstop.
        """
        await self.drain(0.0)
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self._background:
            await asyncio.wait(list(self._background), timeout=self._config.shutdown_timeout_s)

    # --- internals ----------------------------------------------------------------------------------------------

    def _producing(self, stream_id: StreamId) -> bool:
        run = self._runs.get(stream_id)
        return run is not None and run.active

    async def _reap(self, stream_id: StreamId) -> None:
        """End a stream whose producer's lease lapsed (the log decides, atomically; another reader may win)."""
        event = await self._log.reap(stream_id, producer_lost(self._config.producer_lease_s))
        if event is not None:
            self._metrics.increment("streams_completed_total", outcome="error")
            _log.warning("stream_producer_lost", extra={"stream_id": stream_id, "seq": event.seq})

    async def _ride_out(self, exc: ServiceError, since: float | None) -> float | None:
        """A reader's log trouble: the start of the outage to keep riding out, or ``None`` when the reader must end
        (the stream is gone, or the log has not answered for ``outage_s``)."""
        if isinstance(exc, NotFoundError):
            return None
        now = self._clock()
        since = now if since is None else since
        if now - since >= self._config.outage_s:
            return None
        await asyncio.sleep(min(0.5, self._config.poll_s))
        return since

    def _lost(self, stream_id: StreamId, cursor: int, exc: ServiceError) -> StreamEvent:
        self._metrics.increment("stream_consumers_dropped_total", reason="lost")
        if isinstance(exc, NotFoundError):
            code, message = "stream_lost", "the stream log lost this stream (its backend restarted or expired it)"
        else:
            code, message = "stream_unavailable", f"the stream log did not answer for {self._config.outage_s:g} s"
        _log.warning("stream_reader_ended", extra={"stream_id": stream_id, "code": code, "after": cursor})
        return lost_event(stream_id, cursor, code, message, time.time())

    def _current_run(self, token: CompletionToken) -> Run:
        run = self._runs.get(token.stream_id)
        current = run.token if run is not None else None
        if (
            run is None
            or current is None
            or current.generation != token.generation
            or not hmac.compare_digest(current.secret, token.secret)
        ):
            raise CompletionOwnershipError(context={"stream_id": token.stream_id, "generation": token.generation})
        return run

    async def _publish(
        self, run: Run, generation: int, type: str, payload: Mapping[str, JsonValue], data: bytes | None
    ) -> int:
        check_publishable(type)
        check_attachment(run.stream_id, data, self._config.max_attachment_bytes)
        token = run.token
        if token is None:
            raise StreamClosedError(run.stream_id)
        if token.generation != generation:
            raise CompletionOwnershipError(
                "this publisher was superseded by a newer completion token", context={"stream_id": run.stream_id}
            )
        event = await self._log.append(run.stream_id, generation, type, dict(payload), data)
        if self._config.local_tail:
            run.remember(event, self._config.local_tail)
        run.last_activity = self._clock()
        run.signal.fire()
        self._metrics.increment("stream_events_total", type=type)
        return event.seq

    async def _finish(self, run: Run, outcome: Outcome, token: CompletionToken | None) -> StreamEvent | None:
        """Write the terminal event with ``token`` if it is still the run's token (first caller wins)."""
        if token is None or run.token is not token:
            return None
        run.token = None  # spent before any await: a concurrent finisher sees it gone
        task = run.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()  # stop paying for upstream work at once; the task's own finish is a no-op now
        try:
            event = await self._log.finalize(run.stream_id, token.generation, outcome)
        except (CompletionOwnershipError, NotFoundError):
            self._forget(run)  # superseded or reaped elsewhere, or the log lost it: nothing left to end here
            raise
        except BaseException:
            # The backend failed: keep the right to complete; the watchdog retries with backoff, a bounded number
            # of times, then gives the stream up (its readers end it themselves).
            run.token, run.pending = token, outcome
            run.finalize_failures += 1
            run.retry_at = self._clock() + min(8.0, 0.5 * 2.0**run.finalize_failures)
            if run.finalize_failures >= self._config.finalize_attempts:
                self._abandon(run, "finalize_failed")
            raise
        self._metrics.increment("streams_completed_total", outcome=outcome.type)
        self._forget(run)
        return event

    def _forget(self, run: Run) -> None:
        if self._runs.pop(run.stream_id, None) is not None:
            self._metrics.gauge_add("streams_active", -1)
        run.signal.fire()

    def _abandon(self, run: Run, why: str) -> None:
        """Stop producing ``run`` and release it without a terminal write (the log refused it, or fenced us out)."""
        run.token = None
        task = run.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
        self._forget(run)
        _log.warning("stream_abandoned", extra={"stream_id": run.stream_id, "reason": why})

    async def _settle(self, run: Run, outcome: Outcome, token: CompletionToken | None) -> None:
        """``_finish`` for callers nobody can raise to (the producer task, the watchdog): failures are logged."""
        try:
            await self._finish(run, outcome, token)
        except (CompletionOwnershipError, NotFoundError):
            pass  # superseded, reaped or lost: whoever owns the stream now ends it (or its readers do)
        except ServiceError as exc:  # the backend is down: expected during an outage, retried by the watchdog
            _log.warning(
                "stream_finish_deferred",
                extra={"stream_id": run.stream_id, "error": exc.code, "attempts": run.finalize_failures},
            )
        except Exception:  # noqa: BLE001 - nobody to raise to; it is logged
            _log.exception("stream_finish_failed", extra={"stream_id": run.stream_id})

    async def _renew(self, run: Run) -> None:
        """Extend the producer lease of a silent local stream, so readers elsewhere know its producer lives."""
        token = run.token
        if token is None:
            return
        try:
            await self._log.renew(run.stream_id, token.generation)
        except (CompletionOwnershipError, StreamClosedError, NotFoundError):
            if run.token is token:  # reaped (we were presumed dead) or lost: our writes are refused from now on
                self._abandon(run, "fenced")
            return
        except ServiceError as exc:
            _log.warning("stream_renew_failed", extra={"stream_id": run.stream_id, "error": exc.code})
            return
        run.renewed_at = self._clock()

    async def _terminate(self, run: Run, outcome: Outcome, reason: str) -> None:
        if run.cancel_reason is None:
            run.cancel_reason = reason
        if run.active:
            self._metrics.increment("stream_cancels_total", reason=reason)
        await self._settle(run, outcome, run.token)

    async def _drive(self, run: Run, token: CompletionToken, producer: Producer) -> None:
        publisher = RunPublisher(self._publish, run, token.generation)
        outcome: Outcome
        try:
            result = await producer(publisher)
        except asyncio.CancelledError:
            outcome = self._cancel_outcome(run)
        except ServiceError as exc:
            outcome = _error_outcome(exc)
        except Exception:  # noqa: BLE001 - any crash becomes one `error` event: never silence
            _log.exception("stream_producer_crashed", extra={"stream_id": run.stream_id})
            outcome = Outcome.error("internal_error", "the producer failed unexpectedly", retryable=False)
        else:
            outcome = Outcome.done(result) if run.cancel_reason is None else self._cancel_outcome(run)
        await self._settle(run, outcome, token)

    def _cancel_outcome(self, run: Run) -> Outcome:
        reason = run.cancel_reason or "shutdown"
        if reason == "stalled":
            return self._stalled()
        return Outcome.cancelled(reason)

    def _stalled(self) -> Outcome:
        return Outcome.error(
            "stalled",
            f"the producer sent nothing for {self._config.stall_timeout_s:g} s",
            retryable=True,
        )

    def _attach(self, run: Run | None, *, resumed: bool) -> None:
        self._metrics.gauge_add("stream_consumers", 1)
        if resumed:
            self._metrics.increment("stream_resumes_total")
        if run is not None:
            run.consumers += 1
            run.had_consumer = True
            run.idle_since = None

    def _detach(self, run: Run | None) -> None:
        self._metrics.gauge_add("stream_consumers", -1)
        if run is None:
            return
        run.consumers -= 1
        if run.consumers == 0:
            run.idle_since = self._clock()
            if self._config.resume_grace_s <= 0 and run.active and not run.unattended and not self._closed:
                self._spawn(self._terminate(run, Outcome.cancelled("grace"), "grace"))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="stream-watchdog")

    async def _sweep_forever(self) -> None:
        interval = self._config.sweep_interval_s()
        while not self._closed:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except ServiceError as exc:  # the log is down: expected during an outage; the next pass tries again
                _log.warning("stream_sweep_failed", extra={"error": exc.code})
            except Exception:  # noqa: BLE001 - the watchdog keeps running; the failure is logged
                _log.exception("stream_sweep_failed")

    async def sweep(self) -> None:
        """One watchdog pass: end stalled streams (error ``stalled``) and abandoned ones (``cancelled``/``grace``)."""
        config, now = self._config, self._clock()
        renewals: list[Awaitable[None]] = []
        for run in list(self._runs.values()):
            if not run.active:  # opened but never given a token: forget it once nobody has used it for a while
                if run.consumers == 0 and run.task is None and now - run.last_activity >= config.first_consumer_s:
                    self._forget(run)
                continue
            if run.pending is not None:  # its terminal write failed: retry it (bounded, with backoff)
                if now >= run.retry_at:
                    await self._settle(run, run.pending, run.token)
                continue
            if (
                config.producer_lease_s > 0
                and now - max(run.renewed_at, run.last_activity) >= config.producer_lease_s / 3
            ):
                renewals.append(self._renew(run))
            # A producer that bounds its own silences (a vendor timeout) ends with its own error first: the
            # watchdog is the last resort, one second past that bound.
            stall = max(config.stall_timeout_s, run.silence_s + 1.0) if run.silence_s > 0 else config.stall_timeout_s
            if config.stall_timeout_s > 0 and now - run.last_activity >= stall:
                await self._terminate(run, self._stalled(), "stalled")
                continue
            if run.consumers or run.idle_since is None or run.unattended:
                continue
            grace = config.resume_grace_s if run.had_consumer else max(config.resume_grace_s, config.first_consumer_s)
            if now - run.idle_since >= grace and not await self._read_elsewhere(run, grace):
                await self._terminate(run, Outcome.cancelled("grace"), "grace")
        if renewals:
            await asyncio.gather(*renewals)

    async def _read_elsewhere(self, run: Run, grace: float) -> bool:
        """Whether a reader in another process (sharing the log) touched the stream within the grace period."""
        info = await self._log.get(run.stream_id)
        window = max(grace, 2 * self._config.touch_interval_s)
        return info is not None and info.last_seen > 0 and time.time() - info.last_seen < window

    # --- shutdown: refuse new streams, let running ones finish, end the rest -----------------------------------------

    @property
    def draining(self) -> bool:
        """Whether this manager refuses new streams (``drain`` or ``aclose`` began)."""
        return self._draining or self._closed

    async def drain(self, grace_s: float) -> None:
        """Graceful shutdown: refuse new streams at once, give the producers running here up to ``grace_s`` to end on
        their own (``done``), then end every stream still open here with ``cancelled`` (reason ``shutdown``).

        Waits (up to ``shutdown_timeout_s``) for the cut producers' tasks too, so what they record on the way out
        (usage) is handed to the ledger before it flushes. Readers are untouched: they deliver the terminal events.
        """
        self._draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, grace_s)
        while (left := deadline - loop.time()) > 0 and (running := self._running()):
            tasks = [run.task for run in running if run.task is not None and not run.task.done()]
            if tasks:
                await asyncio.wait(tasks, timeout=min(left, self._config.poll_s), return_when=asyncio.FIRST_COMPLETED)
            else:  # streams driven by an outside dispatcher (no task here): look again shortly
                await asyncio.sleep(min(left, self._config.poll_s))
        remaining = self._running()
        if remaining:
            _log.info("streams_cut_at_shutdown", extra={"streams": len(remaining), "grace_s": grace_s})
        await asyncio.gather(*(self._terminate(run, Outcome.cancelled("shutdown"), "shutdown") for run in remaining))
        tasks = [run.task for run in remaining if run.task is not None and not run.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=self._config.shutdown_timeout_s)

    def _running(self) -> list[Run]:
        return [run for run in self._runs.values() if run.active]


def _error_outcome(exc: ServiceError) -> Outcome:
    """The ``error`` end for a producer's domain error; a rate limit keeps its ``retry_after`` (seconds), so a client
    or a front door answering before any output can say when to come back."""
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        return Outcome.error(exc.code, exc.message, retryable=bool(exc.retryable), retry_after=float(exc.retry_after))
    return Outcome.error(exc.code, exc.message, retryable=bool(exc.retryable))
