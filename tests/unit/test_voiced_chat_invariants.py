"""Voiced chat's invariants, as a hypothesis state machine over the interleavings that could break them.

One voiced chat stream per example: a text vendor the machine makes say words, finish or fail; a speech vendor whose
calls (one per segment) the machine feeds chunks, ends or fails in any order; owner cancels, the grace period after the
last client left (a manual clock), clients joining from any cursor and leaving, forged, foreign and stale completion
tokens. After every step the stream's log and every client are checked:

1. exactly one terminal event once the stream ended, nothing after it, and the stream does end when nothing more can
   happen (text finished, every speech call over);
2. audio segments in order, each once: a segment's audio is exactly what its call sent, in order, ending with one
   ``final_chunk``; the next segment starts only after it; at most one ``speech_error`` and no audio after it;
3. ``done`` never before the last segment is voiced: it says ``ok`` only when every segment was voiced to its final
   chunk and together they hold the whole text, ``failed`` only after a ``speech_error``;
4. text is never held back by speech: everything the vendor said is in the stream at once, in order;
5. nothing is left running once the stream ended: no voice or producer task, no open vendor call; and never more
   speech calls at once than the parallelism setting;
6. every client sees the log's events after its cursor, in seq order.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, TypeVar

import pytest
from attrs import define, field
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Message
from domain.errors import CompletionOwnershipError, NotFoundError, ProviderError
from domain.speech import SpeechOptions
from domain.streaming import CompletionToken, Outcome, StreamEvent, sequence_problems
from ports.metrics import NullMetrics
from ports.speech import TTS_PORT
from ports.stream_log import StreamLog
from ports.text import TEXT_PORT
from services.attempts import AttemptRunner, RetryPolicy
from services.chat import ChatCaller, ChatService
from services.registry import ProviderRegistry
from services.speech import SpeechService
from services.speech_segments import SegmentRules
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig
from services.voiced_chat import VoiceConfig, VoicePipeline
from tests.fakes.clock import FakeClock, no_sleep
from tests.fakes.providers import vendors_with
from tests.fakes.streaming import ALICE, BOB, stream_log
from tests.fakes.usage import InMemoryUsageLedger
from tests.fakes.voice import RemoteCall, RemoteSpeechProvider, RemoteTextProvider
from tests.support.services import require_service

T = TypeVar("T")
GRACE_S = 5.0
MAX_CHUNK = 8
PARALLELISM = 2
CATALOG = [
    ModelSpec("chat", "words", frozenset({"text"})),
    ModelSpec("voice", "tts", frozenset({"tts"}), character_price_per_m=10.0),
]
_WORD = re.compile(r"w\d+")


def words(text: str) -> list[str]:
    return _WORD.findall(text)


@define
class Client:
    after: int
    received: list[StreamEvent] = field(factory=list)
    task: asyncio.Task[None] | None = None


class VoicedChatMachine(RuleBasedStateMachine):
    backend: ClassVar[str] = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self._log_cm: AbstractAsyncContextManager[StreamLog] = stream_log(self.backend, max_events=10_000)
        self.log = self.run(self._log_cm.__aenter__())
        config = StreamingConfig(
            resume_grace_s=GRACE_S,
            first_consumer_s=GRACE_S,
            stall_timeout_s=0,  # the watchdog is not under test; the grace period is, on the manual clock
            producer_lease_s=0,
            consumer_buffer=100_000,
            max_attachment_bytes=MAX_CHUNK,
        )
        self.manager = StreamingManager(self.log, config=config, clock=self.clock)
        self.text = RemoteTextProvider("words")
        self.speech = RemoteSpeechProvider("tts")
        vendors = vendors_with(TEXT_PORT, {"words": self.text}) | vendors_with(TTS_PORT, {"tts": self.speech})
        runner = AttemptRunner(
            ProviderRegistry(CATALOG, vendors),
            InMemoryUsageLedger(),
            NullMetrics(),
            RetryPolicy(max_retries=0),
            sleep=no_sleep,
        )
        voice = VoicePipeline(SpeechService(runner), VoiceConfig(SegmentRules(16, 3600.0), PARALLELISM, MAX_CHUNK))
        chat = ChatService(runner, self.manager, voice=voice)
        request = ChatRequest(
            "words/chat", [Message("user", "hi")], stream=True, speech=SpeechOptions("tts/voice", "v", "opus")
        )
        self.stream_id = self.run(chat.start_stream(request, ChatCaller(ALICE, "req")))
        self.said = ""
        self.next_word = 0
        self.text_open = True
        self.text_finished = False
        self.expected_end: tuple[str, str] | None = None  # (type, code or reason) the ending the machine caused
        self.clients: list[Client] = []
        self.steps = 0
        self.patience = 0
        self.settle()

    @initialize(patience=st.integers(0, 40))
    def be_patient(self, patience: int) -> None:
        """The text's end, and endings from outside (cancel, grace, an LLM failure, a takeover), wait ``patience``
        steps: otherwise most streams would end before any segment was voiced."""
        self.patience = patience

    def may_end(self) -> bool:
        return self.steps >= self.patience

    def live_clients(self) -> list[Client]:
        return [c for c in self.clients if c.task is not None and not c.task.done()]

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            if not self.ended:
                self.run(self.manager.cancel(self.stream_id, owner=ALICE))
                self.settle()
            self.check_nothing_runs()
        finally:
            self.stop([c.task for c in self.clients if c.task is not None])
            self.run(self.manager.aclose())
            self.run(self._log_cm.__aexit__(None, None, None))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def stop(self, tasks: list[asyncio.Task[None]]) -> None:
        pending = [task for task in tasks if not task.done()]
        deadline = time.monotonic() + 10.0
        while pending:
            for task in pending:
                task.cancel()
            _, still = self.run(asyncio.wait(pending, timeout=0.5))
            pending = list(still)
            assert time.monotonic() < deadline, f"cancelled clients never ended: {pending}"

    def settle(self) -> None:
        """Run the loop until nothing is left to do (everything waits on the machine, a client or a timer)."""
        self.steps += 1
        quiet, last, deadline = 0, None, time.monotonic() + 10.0
        while quiet < (3 if self.backend == "memory" else 8):
            self.run(asyncio.sleep(0 if self.backend == "memory" else 0.002))
            # The in-memory log does no I/O: an empty ready queue means every task waits. Redis: watch the state.
            busy = bool(getattr(self.loop, "_ready", ())) if self.backend == "memory" else False
            state = (self.last_seq(), len(self.speech.calls), len(self.speech.open_calls), self.received_total())
            quiet = 0 if busy or state != last else quiet + 1
            last = state
            assert time.monotonic() < deadline, "the voiced stream never settled"

    # --- the stream as it stands --------------------------------------------------------------------------------

    def events(self) -> list[StreamEvent]:
        return list(self.run(self.log.read(self.stream_id, 0, 100_000)).events)

    def last_seq(self) -> int:
        return self.run(self.log.read(self.stream_id, 0, 0)).last_seq

    def received_total(self) -> int:
        return sum(len(c.received) for c in self.clients)

    @property
    def ended(self) -> bool:
        return self.run(self.log.read(self.stream_id, 0, 0)).status != "open"

    def live_calls(self) -> list[RemoteCall]:
        return [call for call in self.speech.calls if call.started and not call.closed and not call.over]

    # --- the text vendor -------------------------------------------------------------------------------------------

    @precondition(lambda self: self.text_open)
    @rule(count=st.integers(1, 4), end=st.sampled_from(["", ".", "!", "?", ",", ".\n", "…"]), space=st.booleans())
    def say(self, count: int, end: str, space: bool) -> None:
        piece = "".join(f" w{self.next_word + i}" for i in range(count)) + end + (" " if space else "")
        self.next_word += count
        if not self.ended:  # asked before the vendor moves: reading the log runs the loop
            self.said += piece
        self.text.say(piece)
        self.settle()

    @precondition(lambda self: self.text_open and self.may_end())
    @rule()
    def finish_text(self) -> None:
        self.text_finished = not self.ended
        self.text.finish()
        self.text_open = False
        self.settle()

    # --- the speech vendor: any call, in any order -----------------------------------------------------------------

    @precondition(lambda self: self.live_calls())
    @rule(data=st.data(), size=st.integers(1, 2 * MAX_CHUNK + 3))
    def send_chunk(self, data: st.DataObject, size: int) -> None:
        call = data.draw(st.sampled_from(self.live_calls()))
        index = self.speech.calls.index(call)
        call.chunk((f"<{index}.{len(call.sent)}>" * size).encode()[:size])
        self.settle()

    @precondition(lambda self: self.live_calls())
    @rule(data=st.data(), how=st.sampled_from(["end", "end", "end", "fail"]))
    def end_call(self, data: st.DataObject, how: str) -> None:
        """A call ends well (with a last chunk), or fails, before or after its first chunk."""
        call = data.draw(st.sampled_from(self.live_calls()))
        if how == "end":
            call.chunk(f"<{self.speech.calls.index(call)}.end>".encode())
            call.end()
        else:
            call.fail(ProviderError("tts", "the voice broke"))
        self.settle()

    # --- endings from outside: cancel, grace, tokens -------------------------------------------------------------

    @precondition(lambda self: self.may_end() and not self.ended)
    @rule(how=st.sampled_from(["fail_text", "cancel", "grace", "take_over"]))
    def end_from_outside(self, how: str) -> None:
        """The text vendor fails, the owner cancels, the grace period after the last client passes, or another
        dispatcher takes the stream over: the voice stops, and the stream ends as each says."""
        if how == "fail_text" and self.text_open:
            self.expected_end = ("error", "provider_error")
            self.text.fail(ProviderError("words", "the model broke"))
            self.text_open = False
        elif how == "grace":
            self.stop([c.task for c in self.live_clients() if c.task is not None])  # the last client leaves ...
            self.clock.advance(GRACE_S + 1)  # ... and does not come back
            self.expected_end = ("cancelled", "grace")
            self.run(self.manager.sweep())
        elif how == "take_over":
            stale = self.run(self.manager.create_completion_token(self.stream_id))
            current = self.run(self.manager.create_completion_token(self.stream_id))
            with pytest.raises(CompletionOwnershipError):  # superseded at once: stale
                self.run(self.manager.signal_completion(stale, Outcome.done({})))
            self.expected_end = ("error", "taken_over")
            self.run(self.manager.signal_completion(current, Outcome.error("taken_over", "another dispatcher")))
        else:
            self.expected_end = ("cancelled", "client")
            self.run(self.manager.cancel(self.stream_id, owner=ALICE))
        self.settle()

    @rule()
    def foreign_cancel(self) -> None:
        """Another customer cannot cancel (or even see) the stream."""
        with pytest.raises(NotFoundError):
            self.run(self.manager.cancel(self.stream_id, owner=BOB))

    @rule(how=st.sampled_from(["forged", "foreign", "stale"]), outcome=st.sampled_from(["done", "error", "cancelled"]))
    def complete_without_the_token(self, how: str, outcome: str) -> None:
        """Only the dispatcher's token ends the stream: a forged secret, another stream's token, a superseded one."""
        info = self.run(self.log.get(self.stream_id))
        assert info is not None
        before = self.last_seq()
        ending = {"done": Outcome.done({}), "error": Outcome.error("x", "y"), "cancelled": Outcome.cancelled("z")}
        other: CompletionToken | None = None
        if how == "forged":
            token = CompletionToken(self.stream_id, info.generation, "forged-secret")
        elif how == "foreign":
            other_id = self.run(self.manager.open(owner=ALICE))
            other = self.run(self.manager.create_completion_token(other_id))
            token = CompletionToken(self.stream_id, other.generation, other.secret)
        else:
            token = CompletionToken(self.stream_id, max(0, info.generation - 1), "stale-secret")
        with pytest.raises(CompletionOwnershipError):
            self.run(self.manager.signal_completion(token, ending[outcome]))
        if other is not None:
            self.run(self.manager.signal_completion(other, Outcome.done({})))
        assert self.last_seq() == before, "a completion without the current token wrote something"
        self.settle()

    # --- clients ---------------------------------------------------------------------------------------------------

    @precondition(lambda self: len(self.live_clients()) < 3 and len(self.clients) < 8)
    @rule(back=st.integers(0, 30))
    def join(self, back: int) -> None:
        client = Client(max(0, self.last_seq() - back))

        async def read() -> None:
            async for event in self.manager.subscribe(self.stream_id, owner=ALICE, after=client.after):
                client.received.append(event)

        client.task = self.loop.create_task(read())
        self.clients.append(client)
        self.settle()

    @precondition(lambda self: self.live_clients())
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        client = data.draw(st.sampled_from(self.live_clients()))
        assert client.task is not None
        self.stop([client.task])
        self.settle()

    # --- invariants ------------------------------------------------------------------------------------------------

    @invariant()
    def one_terminal_and_the_ending_caused(self) -> None:
        events = self.events()
        assert sequence_problems(events) == []
        if not events or not events[-1].terminal:
            # Liveness: with the text over and every speech call over, nothing can keep the stream open.
            over = not self.text_open and all(call.closed for call in self.speech.calls)
            assert not over, "the text and every speech call are over, but the stream never ended"
            return
        end = events[-1]
        if self.expected_end is not None:
            code = end.payload.get("code", end.payload.get("reason"))
            assert (end.type, code) == self.expected_end
        else:
            assert end.type == "done"
            assert self.text_finished

    @invariant()
    def audio_in_segment_order_each_once(self) -> None:
        events = self.events()
        calls = {call.request.input: call for call in self.speech.calls}
        segments: list[tuple[str, bytes, bool]] = []  # text, audio so far, final
        failed_at: int | None = None
        for event in events:
            if event.type == "speech_error":
                assert failed_at is None, "a second speech_error"
                failed_at = int(str(event.payload["segment"]))
                finished = len(segments) if not segments or segments[-1][2] else len(segments) - 1
                assert failed_at == finished, "the speech_error is not for the segment being delivered"
            elif event.type == "audio":
                assert failed_at is None, "audio after a speech_error"
                assert event.data is not None
                assert len(event.data) <= MAX_CHUNK
                index, text = event.payload["segment"], str(event.payload["text"])
                if not segments or segments[-1][2]:
                    assert index == len(segments), "a segment out of order, or twice"
                    segments.append((text, b"", False))
                assert index == len(segments) - 1
                assert text == segments[-1][0]
                _, sent, _ = segments[-1]
                segments[-1] = (text, sent + event.data, bool(event.payload["final_chunk"]))
        for text, audio, final in segments:
            expected = b"".join(calls[text].sent)
            assert (audio == expected) if final else expected.startswith(audio), f"segment {text!r} audio"
        spoken = [w for text, *_ in segments for w in words(text)]
        assert spoken == words(self.said)[: len(spoken)], "segments out of step with the text"
        assert [w for call in self.speech.calls for w in words(call.request.input)] == words(self.said)[
            : sum(len(words(call.request.input)) for call in self.speech.calls)
        ], "calls made out of segment order"
        if events and events[-1].type == "done":
            speech: Any = events[-1].payload["speech"]
            if failed_at is None:
                assert speech["status"] == "ok"
                assert all(final for *_, final in segments), "done before the last segment was voiced"
                assert spoken == words(self.said), "done before the whole text was voiced"
                assert speech["segments"] == len(segments)
            else:
                assert speech["status"] == "failed"
                assert speech["error"]["segment"] == failed_at

    @invariant()
    def text_is_never_held_back(self) -> None:
        events = self.events()
        published = "".join(str(e.payload["text"]) for e in events if e.type == "text")
        if events and events[-1].terminal:
            assert self.said.startswith(published)
        else:
            assert published == self.said, "text the vendor said is not in the stream"

    @invariant()
    def bounded_parallelism(self) -> None:
        assert len(self.speech.open_calls) <= PARALLELISM, "more speech calls at once than the setting allows"

    @invariant()
    def nothing_runs_after_the_end(self) -> None:
        if self.ended:
            self.check_nothing_runs()

    def check_nothing_runs(self) -> None:
        mine = [t for t in asyncio.all_tasks(self.loop) if t.get_name().startswith(("voice", "stream-producer"))]
        if mine:
            # Cancelled tasks end within a few turns of the loop (Redis: a round trip or two).
            self.run(asyncio.wait(mine, timeout=0.5 if self.backend == "memory" else 3.0))
        assert [t.get_name() for t in mine if not t.done()] == [], "a voiced stream's task outlived it"
        assert self.speech.open_calls == [], "a speech call outlived the stream"
        assert not self.text.open, "the text call outlived the stream"

    @invariant()
    def clients_see_the_log(self) -> None:
        log = {event.seq: event for event in self.events()}
        for client in self.clients:
            assert sequence_problems(client.received, after=client.after) == []
            for event in client.received:
                assert log[event.seq] == event
            if client.task is not None and not client.task.done():
                assert len(client.received) == max(0, len(log) - client.after), "a live client fell behind"


SETTINGS = {"stateful_step_count": 60, "deadline": None, "suppress_health_check": list(HealthCheck)}
SCALE = float(os.environ.get("SWITCHYARD_HYPOTHESIS_SCALE", "1"))


def examples(full: int) -> int:
    """``full`` examples, scaled by SWITCHYARD_HYPOTHESIS_SCALE (at least 10)."""
    return max(10, int(full * SCALE))


def test_voiced_chat_invariants_hold_on_the_memory_log() -> None:
    """The six invariants hold over any interleaving, on the in-memory stream log."""
    run_state_machine_as_test(VoicedChatMachine, settings=settings(max_examples=examples(200), **SETTINGS))  # type: ignore[arg-type]


class RedisVoicedChatMachine(VoicedChatMachine):
    backend = "redis"


@pytest.mark.redis
def test_voiced_chat_invariants_hold_on_the_redis_log() -> None:
    """The same on Redis Streams (audio attachments as their own entry field)."""
    require_service("redis")
    run_state_machine_as_test(RedisVoicedChatMachine, settings=settings(max_examples=examples(25), **SETTINGS))  # type: ignore[arg-type]
