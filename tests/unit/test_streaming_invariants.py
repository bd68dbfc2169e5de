"""The five stream invariants, as a hypothesis state machine run against both StreamLog adapters.

1. exactly one terminal event, nothing after it; 2. gap-free increasing seqs, the same for every consumer; 3. a late
join or a resume after N gets exactly the rest, or an explicit gap first; 4. only the current token completes;
5. a slow or dead consumer affects no one. The machine drives the manager through its public API on its own event
loop (hypothesis' stateful runner is synchronous), checks each consumer against a model after every step. Streams are
either opened with a token held by the test or started with ``start()`` and a remote-controlled producer; both can be
superseded, published to in bursts, completed, cancelled and trimmed.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, TypeVar

import pytest
from attrs import define, field
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from domain.errors import CompletionOwnershipError, NotFoundError
from domain.streaming import (
    CompletionToken,
    ConsumerLaggedError,
    Outcome,
    StreamClosedError,
    StreamEvent,
    sequence_problems,
)
from domain.types import JsonValue, StreamId
from ports.stream_log import StreamLog
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig
from tests.fakes.streaming import ALICE, BOB, RemoteProducer, stream_log
from tests.support.services import require_service

T = TypeVar("T")
BUFFER = 6
MAX_STREAMS = 3
TYPES = st.sampled_from(["start", "text", "reasoning", "tool_call", "audio", "usage"])
OUTCOMES = st.sampled_from(["done", "error", "cancelled"])
TERMINAL = {"done": Outcome.done({"n": 1}), "error": Outcome.error("x", "y"), "cancelled": Outcome.cancelled("t")}


@define
class Consumer:
    """One reader: ``fast`` ones drain continuously; ``slow`` ones read only the events the test grants."""

    after: int
    slow: bool
    gate: asyncio.Semaphore
    received: list[StreamEvent] = field(factory=list)
    error: BaseException | None = None
    task: asyncio.Task[None] | None = None
    resumed: bool = False

    @property
    def cursor(self) -> int:
        return self.received[-1].seq if self.received else self.after


@define
class Model:
    """What the stream must contain: the events published, which tokens exist, whether it ended, what was trimmed.

    A started stream has a ``producer``; ``producer_current`` is whether its generation still owns the stream (no
    token was issued since), ``producer_alive`` whether it can still be told to publish or finish.
    """

    stream_id: StreamId
    tokens: list[CompletionToken]
    events: list[tuple[str, dict[str, Any]]] = field(factory=list)
    ended: bool = False
    trimmed: bool = False
    consumers: list[Consumer] = field(factory=list)
    producer: RemoteProducer | None = None
    producer_current: bool = False
    producer_alive: bool = False

    def end(self, outcome: str, payload: dict[str, Any]) -> None:
        self.events.append((outcome, payload))
        self.ended = True
        self.producer_alive = False  # ending a stream cancels its producer task, superseded or not


class StreamMachine(RuleBasedStateMachine):
    backend: ClassVar[str] = "memory"
    local_tail: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self._log_cm: AbstractAsyncContextManager[StreamLog] = stream_log(self.backend, max_events=1000)
        self.log = self.run(self._log_cm.__aenter__())
        config = StreamingConfig(
            consumer_buffer=BUFFER,
            read_batch=3,
            resume_grace_s=3600,
            stall_timeout_s=3600,
            local_tail=self.local_tail,
        )
        self.manager = StreamingManager(self.log, config=config)
        self.streams: list[Model] = []

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def stop(self, tasks: list[asyncio.Task[None]]) -> None:
        """Cancel ``tasks`` and wait for them, bounded, cancelling again any still running.

        An unbounded ``asyncio.wait`` here was the intermittent hang of the Redis machine: redis-py sends each command
        through ``asyncio.wait_for``, which on Python 3.11 can swallow a cancellation that lands as the send completes
        (the command then returns normally), so a reader cancelled at that moment went on to wait for a grant that
        never came. ``test_redis_stream_log`` pins that swallowing on its own.
        """
        deadline = time.monotonic() + 10.0
        pending = [task for task in tasks if not task.done()]
        while pending:
            for task in pending:
                task.cancel()
            _, still = self.run(asyncio.wait(pending, timeout=0.5))
            pending = list(still)
            assert time.monotonic() < deadline, f"cancelled consumers never ended: {pending}"

    def teardown(self) -> None:
        self.stop([c.task for m in self.streams for c in m.consumers if c.task is not None])
        self.run(self.manager.aclose())
        self.run(self._log_cm.__aexit__(None, None, None))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    # --- producing ------------------------------------------------------------------------------------------------

    @precondition(lambda self: len(self.streams) < MAX_STREAMS)
    @rule()
    def open_stream(self) -> None:
        stream_id = self.run(self.manager.open(owner=ALICE))
        self.streams.append(Model(stream_id, [self.run(self.manager.create_completion_token(stream_id))]))

    @precondition(lambda self: len(self.streams) < MAX_STREAMS)
    @rule()
    def start_stream(self) -> None:
        producer = RemoteProducer()
        stream_id = self.run(self.manager.start(owner=ALICE, producer=producer))
        self.streams.append(Model(stream_id, [], producer=producer, producer_current=True, producer_alive=True))

    @precondition(lambda self: self.streams)
    @rule(data=st.data(), type_=TYPES, text=st.text(max_size=5), burst=st.integers(1, 6))
    def publish(self, data: st.DataObject, type_: str, text: str, burst: int) -> None:
        """``burst`` events in a row (readers fall behind, the local tail serves several at once), then settle."""
        model = data.draw(st.sampled_from(self.streams))
        if model.ended:
            with pytest.raises(StreamClosedError):
                self.run(self.manager.publish(model.stream_id, type_, {"text": text}))
            return
        for i in range(burst):
            payload: dict[str, JsonValue] = {"text": text, "i": i}
            if model.tokens:
                publish = self.manager.publisher(model.tokens[-1]).publish(type_, payload)
            else:  # started and never superseded: publish on behalf of the manager's own token
                publish = self.manager.publish(model.stream_id, type_, payload)
            seq = self.run(asyncio.wait_for(publish, 2.0))  # never blocked by readers
            model.events.append((type_, payload))
            assert seq == len(model.events)
        self.settle()

    @precondition(lambda self: any(m.producer_alive for m in self.streams))
    @rule(data=st.data(), type_=TYPES, burst=st.integers(1, 6))
    def produce(self, data: st.DataObject, type_: str, burst: int) -> None:
        """The started producer publishes; once superseded it is refused (and its failure writes nothing)."""
        model = data.draw(st.sampled_from([m for m in self.streams if m.producer_alive]))
        assert model.producer is not None
        for i in range(burst):
            payload: dict[str, JsonValue] = {"p": i}
            result = self.run(asyncio.wait_for(model.producer.emit(type_, payload), 2.0))
            if not model.producer_current:
                assert isinstance(result, CompletionOwnershipError), result
                model.producer_alive = False  # it raised: its task ends with an error nobody may write
                self.let_producer_end(model)
                break
            model.events.append((type_, payload))
            assert result == len(model.events)
        self.settle()

    @precondition(lambda self: any(m.producer_alive for m in self.streams))
    @rule(data=st.data())
    def finish_producer(self, data: st.DataObject) -> None:
        """A started producer returns: `done` with its result, unless superseded (then its late end writes nothing)."""
        model = data.draw(st.sampled_from([m for m in self.streams if m.producer_alive]))
        assert model.producer is not None
        model.producer.finish({"n": 2})
        model.producer_alive = False
        if model.producer_current:
            model.end("done", {"n": 2})
            deadline = time.monotonic() + 5.0
            while self.run(self.log.read(model.stream_id, 0, 0)).status == "open":
                assert time.monotonic() < deadline, "a finished producer's stream never ended"
                self.run(asyncio.sleep(0.001))
        else:
            self.let_producer_end(model)
        self.settle()

    def let_producer_end(self, model: Model) -> None:
        """Give a superseded producer's task time to finish, then check it wrote nothing and took no token."""
        for _ in range(20):
            self.run(asyncio.sleep(0.001 if self.backend == "redis" else 0))
        read = self.run(self.log.read(model.stream_id, 0, 0))
        assert read.last_seq == len(model.events), "a superseded producer's end was written"
        assert read.status == ("open" if not model.ended else read.status)

    @precondition(lambda self: self.streams)
    @rule(data=st.data())
    def supersede(self, data: st.DataObject) -> None:
        model = data.draw(st.sampled_from(self.streams))
        if model.ended:
            with pytest.raises(StreamClosedError):
                self.run(self.manager.create_completion_token(model.stream_id))
            return
        model.tokens.append(self.run(self.manager.create_completion_token(model.stream_id)))
        model.producer_current = False

    @precondition(lambda self: self.streams)
    @rule(
        data=st.data(),
        which=st.sampled_from(["current", "stale", "forged"]),
        forgery=st.sampled_from(["literal", "last_char", "prefix", "suffix", "empty", "next_generation"]),
        outcome=OUTCOMES,
    )
    def complete(self, data: st.DataObject, which: str, forgery: str, outcome: str) -> None:
        model = data.draw(st.sampled_from(self.streams))
        # The test holds the current token unless the stream was started and never superseded (the manager holds it).
        current = model.tokens[-1] if model.tokens and not model.producer_current else None
        token: CompletionToken | None = current
        if which == "stale" and len(model.tokens) > 1:
            token = model.tokens[data.draw(st.integers(0, len(model.tokens) - 2))]
        elif which == "forged" or current is None:
            token = self.forge(model, forgery)
        assert token is not None
        before = self.run(self.log.read(model.stream_id, 0, 0)).last_seq
        if token is current and not model.ended:
            event = self.run(self.manager.signal_completion(token, TERMINAL[outcome]))
            model.end(outcome, dict(TERMINAL[outcome].payload))
            assert event.seq == len(model.events)
        else:
            with pytest.raises(CompletionOwnershipError):
                self.run(self.manager.signal_completion(token, TERMINAL[outcome]))
            assert self.run(self.log.read(model.stream_id, 0, 0)).last_seq == before  # changed nothing
        self.settle()

    def forge(self, model: Model, how: str) -> CompletionToken:
        """A token for the stream's current generation (or the next) whose secret is not the real one."""
        info = self.run(self.log.get(model.stream_id))
        generation = info.generation if info is not None else 0
        real = model.tokens[-1].secret if model.tokens else "x" * 22
        secret = {
            "literal": "forged-secret",
            "last_char": real[:-1] + ("A" if real[-1] != "A" else "B"),
            "prefix": real[:-1],
            "suffix": real + "A",
            "empty": "",
            "next_generation": real,
        }[how]
        return CompletionToken(model.stream_id, generation + (how == "next_generation"), secret)

    @precondition(lambda self: self.streams)
    @rule(data=st.data(), foreign=st.booleans())
    def cancel(self, data: st.DataObject, foreign: bool) -> None:
        model = data.draw(st.sampled_from(self.streams))
        if foreign:
            with pytest.raises(NotFoundError):
                self.run(self.manager.cancel(model.stream_id, owner=BOB))
            return
        self.run(self.manager.cancel(model.stream_id, owner=ALICE))
        if not model.ended:
            model.end("cancelled", {"reason": "client"})
        self.settle()

    @precondition(lambda self: self.streams)
    @rule(data=st.data(), keep=st.integers(1, 4))
    def trim(self, data: st.DataObject, keep: int) -> None:
        model = data.draw(st.sampled_from(self.streams))
        self.run(self.log.trim(model.stream_id, keep))
        model.trimmed = model.trimmed or len(model.events) > keep

    # --- consuming ------------------------------------------------------------------------------------------------

    def _spawn(self, model: Model, consumer: Consumer) -> None:
        async def drain() -> None:
            try:
                async for event in self.manager.subscribe(model.stream_id, owner=ALICE, after=consumer.after):
                    consumer.received.append(event)
                    if consumer.slow:
                        await consumer.gate.acquire()
            except ConsumerLaggedError as exc:
                consumer.error = exc

        consumer.task = self.loop.create_task(drain())
        model.consumers.append(consumer)

    @precondition(lambda self: self.streams)
    @rule(data=st.data(), slow=st.booleans(), back=st.integers(0, 12))
    def join(self, data: st.DataObject, slow: bool, back: int) -> None:
        model = data.draw(st.sampled_from(self.streams))
        after = max(0, len(model.events) - back)
        self._spawn(model, Consumer(after, slow, asyncio.Semaphore(0)))
        self.settle()

    @precondition(lambda self: any(c.slow for m in self.streams for c in m.consumers))
    @rule(data=st.data(), n=st.integers(1, 10))
    def grant(self, data: st.DataObject, n: int) -> None:
        consumer = data.draw(st.sampled_from([c for m in self.streams for c in m.consumers if c.slow]))
        for _ in range(n):
            consumer.gate.release()
        self.settle()

    @precondition(lambda self: any(m.consumers for m in self.streams))
    @rule(data=st.data())
    def disconnect(self, data: st.DataObject) -> None:
        model = data.draw(st.sampled_from([m for m in self.streams if m.consumers]))
        consumer = model.consumers.pop(data.draw(st.integers(0, len(model.consumers) - 1)))
        if consumer.task is not None:
            self.stop([consumer.task])

    def settle(self) -> None:
        """Let fast consumers catch up (they must), and resume dropped slow ones from their cursor."""
        deadline = time.monotonic() + 5.0
        while True:
            self.run(asyncio.sleep(0.001 if self.backend == "redis" else 0))
            for model in self.streams:
                for consumer in list(model.consumers):
                    if isinstance(consumer.error, ConsumerLaggedError):
                        assert consumer.slow, "a fast consumer was dropped"
                        assert consumer.error.after == consumer.cursor
                        model.consumers.remove(consumer)
                        self._spawn(model, Consumer(consumer.cursor, slow=False, gate=consumer.gate, resumed=True))
            lagging = [
                c for m in self.streams for c in m.consumers if not c.slow and c.cursor < len(m.events) and not c.error
            ]
            if not lagging:
                return
            assert time.monotonic() < deadline, f"fast consumers did not catch up: {lagging}"
            for _ in range(3):
                self.run(asyncio.sleep(0))

    # --- invariants -----------------------------------------------------------------------------------------------

    @invariant()
    def every_consumer_sees_the_model(self) -> None:
        for model in self.streams:
            for consumer in model.consumers:
                assert consumer.error is None or isinstance(consumer.error, ConsumerLaggedError)
                assert sequence_problems(consumer.received, after=consumer.after) == []
                for event in consumer.received:
                    assert event.seq > consumer.after
                    if event.type == "gap":
                        assert model.trimmed, "gap without trimming"
                        continue
                    assert (event.type, dict(event.payload)) == model.events[event.seq - 1]
                if not consumer.slow and consumer.received:
                    assert consumer.received[-1].seq == len(model.events)

    @invariant()
    def exactly_one_terminal_at_the_end(self) -> None:
        """The log (not the model) holds one terminal event once the stream ended, as its last, and none before."""
        for model in self.streams:
            read = self.run(self.log.read(model.stream_id, 0, 10_000))
            logged = [event for event in read.events if event.terminal]
            assert len(logged) == (1 if model.ended else 0), logged
            assert read.last_seq == len(model.events)
            if not model.ended:
                assert read.status == "open"
                continue
            assert read.events[-1] is logged[0]
            assert read.status == model.events[-1][0]
            for consumer in model.consumers:
                if not consumer.slow and consumer.task is not None:
                    self.run(asyncio.wait_for(asyncio.shield(consumer.task), 5.0))
                    assert consumer.task.done()
                    joined_before_the_end = consumer.after < len(model.events)
                    assert sum(1 for event in consumer.received if event.terminal) == joined_before_the_end


SETTINGS = {"stateful_step_count": 30, "deadline": None, "suppress_health_check": list(HealthCheck)}
SCALE = float(os.environ.get("SWITCHYARD_HYPOTHESIS_SCALE", "1"))
"""Fewer examples under ``make mutate`` (it sets 0.02): each mutant reruns these machines."""


def examples(full: int) -> int:
    """``full`` examples, scaled by SWITCHYARD_HYPOTHESIS_SCALE (at least 10)."""
    return max(10, int(full * SCALE))


def test_invariants_hold_on_the_memory_log() -> None:
    """All five invariants hold for the in-memory stream log."""
    run_state_machine_as_test(StreamMachine, settings=settings(max_examples=examples(500), **SETTINGS))  # type: ignore[arg-type]


class TailStreamMachine(StreamMachine):
    local_tail = 4  # the in-memory log with the local tail on, so readers several events behind are served from it


def test_invariants_hold_with_the_local_tail() -> None:
    """All five invariants hold when local readers are served from the producer's tail of recent events."""
    run_state_machine_as_test(TailStreamMachine, settings=settings(max_examples=examples(200), **SETTINGS))  # type: ignore[arg-type]


class RedisStreamMachine(StreamMachine):
    backend = "redis"
    local_tail = 4  # small, so the tail's eviction and its fall-back to the log are exercised


@pytest.mark.redis
def test_invariants_hold_on_the_redis_log() -> None:
    """All five invariants hold for Redis Streams (db 15, a unique key prefix per example), local tail on."""
    require_service("redis")
    run_state_machine_as_test(RedisStreamMachine, settings=settings(max_examples=examples(200), **SETTINGS))  # type: ignore[arg-type]
