"""Driven adapter: ``FakeRealtimeProvider``, a deterministic speech-to-speech model that answers every user turn.

A user turn ends with ``commit`` (any turn detection), ``send_text``, a tool result, or, with ``server_vad``, a pause
of ``vad_silence_ms`` of silence after speech (a chunk is speech when a sample reaches ``SPEECH_LEVEL``). The fake
"hears" one word of the file fake's vocabulary per 400 ms of speech (``live_word``, so the same audio always reads
the same) and answers:

1. the user's transcript (``final``, when ``input_transcription`` is on and the turn was spoken),
2. the assistant's words as transcript deltas, each followed by ``chunk_ms`` of a 24 kHz pcm16 tone, with
   ``chunk_pause_s`` between chunks (so a client can talk over it or cancel it),
3. the assistant's final transcript, then ``RealtimeTurnDone("completed")`` with its token usage.

The answer to a spoken turn is "You said: <words>."; to a text, "You said: <text>"; to a tool result, "The <tool> tool
says: <output>". With ``server_vad``, the start of speech is ``RealtimeSpeechStarted`` and the pause that ends it
``RealtimeSpeechStopped`` (before the answer); speech that starts while an answer plays interrupts it
(``RealtimeTurnDone("interrupted")``). ``cancel`` ends the answer in progress as ``cancelled``.

Tools: when the session has tools and its metadata names one in ``fake_tool`` (or the user's text names one), a user
turn is answered with ``RealtimeToolCall`` (arguments ``{"text": <what the user said>}``) and a completed turn; the
session goes on once ``send_tool_result`` answers that call (an unknown ``call_id`` is a ``ValidationError``).

Faults come from ``config.metadata`` (or the entry's ``default_params``), as for the other fakes: ``fake_error``
(``rate_limited``, ``provider_error``, ``overloaded``, ``timeout``, ``auth``) fails ``open``, or, with
``fake_fail_after = N``, the session after its N-th audio chunk; ``fake_drop_after = N`` drops the "connection"
after the N-th chunk (a retryable ``ProviderError``); ``fake_fail_times``/``fake_key``/``fake_retry_after``/
``fake_delay_ms`` as elsewhere. ``fake_audio_ms`` makes every answer that long (a long answer for tests of slow
clients) and ``fake_chunk_pause_ms`` sets the pause between chunks.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from adapters.fake.faults import FailureCounter, scripted_fault
from adapters.fake.live_transcription import live_word
from adapters.fake.transcription import FAKE_TRANSCRIPTION_ERRORS
from domain.catalog import ModelSpec
from domain.errors import ProviderError, ServiceError, ValidationError
from domain.metering import Units
from domain.realtime import (
    REALTIME_OUTPUT_RATE,
    RealtimeAudio,
    RealtimeConfig,
    RealtimeEvent,
    RealtimeSpeechStarted,
    RealtimeSpeechStopped,
    RealtimeToolCall,
    RealtimeTranscript,
    RealtimeTurnDone,
    TurnStatus,
)

__all__ = ["CHUNK_MS", "SPEECH_LEVEL", "FakeRealtimeProvider", "FakeRealtimeSession", "tone_chunk"]

CHUNK_MS: Final = 100
SPEECH_LEVEL: Final = 500
"""A chunk holding a sample this loud (of 32767) is speech; quieter ones are silence."""
_WORD_MS: Final = 400
_SAMPLE_BYTES: Final = 2
_END: Final = object()


def tone_chunk(ms: int = CHUNK_MS, *, frequency: float = 330.0) -> bytes:
    """``ms`` of the fake's voice: a soft sine tone, pcm16 mono at ``REALTIME_OUTPUT_RATE``."""
    count = REALTIME_OUTPUT_RATE * ms // 1000
    return b"".join(
        struct.pack("<h", int(6_000 * math.sin(2 * math.pi * frequency * i / REALTIME_OUTPUT_RATE)))
        for i in range(count)
    )


def _is_speech(chunk: bytes) -> bool:
    samples = array("h")
    samples.frombytes(chunk[: len(chunk) - len(chunk) % _SAMPLE_BYTES])
    return any(sample >= SPEECH_LEVEL or sample <= -SPEECH_LEVEL for sample in samples)


def _sentence(words: list[str]) -> str:
    text = " ".join(words)
    return text[:1].upper() + text[1:] + "."


class _Playing:
    """The answer playing now: its number, the tokens of what it answers, the chunks it sent."""

    def __init__(self, number: int, input_tokens: int) -> None:
        self.number = number
        self.response_id = f"resp_{number}"
        self.input_tokens = input_tokens
        self.chunks = 0

    def usage(self) -> Units:
        return Units(input_tokens=self.input_tokens, output_tokens=self.chunks * 2)


class FakeRealtimeSession:
    """One fake session: the user's turns are heard as they come, each answer plays in a task of its own."""

    def __init__(
        self,
        provider: str,
        config: RealtimeConfig,
        *,
        chunk_pause_s: float,
        vad_silence_ms: int,
        audio_ms: int | None,
        fail_after: int | None,
        failure: ServiceError | None,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._provider = provider
        self._config = config
        self._pause_s = chunk_pause_s
        self._audio_ms = audio_ms
        self._fail_after = fail_after
        self._failure = failure
        self._sleep = sleep
        self._bytes_per_ms = config.input_sample_rate * _SAMPLE_BYTES / 1000
        self._vad_silence_bytes = int(vad_silence_ms * self._bytes_per_ms)
        self._slot_bytes = int(_WORD_MS * self._bytes_per_ms) // _SAMPLE_BYTES * _SAMPLE_BYTES
        self._voice = tone_chunk()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._heard = bytearray()  # the user's speech in the current turn
        self._speaking = False
        self._silence = 0
        self._response: asyncio.Task[None] | None = None
        self._playing: _Playing | None = None
        self._responses = 0
        self._chunks_sent = 0
        self._calls: dict[str, str] = {}  # call_id -> tool name, until answered
        self._closed = False
        self.audio_bytes = 0
        self.texts: list[str] = []
        self.tool_results: list[tuple[str, str]] = []

    # --- the client's side ---------------------------------------------------------------------------------------

    async def send_audio(self, chunk: bytes) -> None:
        self._check_open()
        if len(chunk) % _SAMPLE_BYTES:
            raise ValidationError("audio", f"{self._provider}: audio must be whole pcm16 samples")
        self.audio_bytes += len(chunk)
        if self._config.turn_detection == "none":
            self._heard += chunk  # no VAD: everything is the turn, until the client commits
            return
        if _is_speech(chunk):
            if not self._speaking:
                self._speaking = True
                self._queue.put_nowait(RealtimeSpeechStarted())
                self._stop_response("interrupted")
            self._silence = 0
            self._heard += chunk
        elif self._speaking:
            self._silence += len(chunk)
            if self._silence >= self._vad_silence_bytes:
                self._speaking = False
                self._silence = 0
                self._queue.put_nowait(RealtimeSpeechStopped())
                self._answer_heard()

    async def commit(self) -> None:
        self._check_open()
        self._speaking = False
        self._silence = 0
        self._answer_heard()

    async def send_text(self, text: str) -> None:
        self._check_open()
        self.texts.append(text)
        self._respond(text, f"You said: {text}")

    async def send_tool_result(self, call_id: str, output: str) -> None:
        self._check_open()
        name = self._calls.pop(call_id, None)
        if name is None:
            raise ValidationError("call_id", f"{self._provider}: no tool call {call_id!r} is waiting for a result")
        self.tool_results.append((call_id, output))
        self._respond(None, f"The {name} tool says: {output}")

    async def cancel(self) -> None:
        self._check_open()
        self._stop_response("cancelled")

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, ServiceError):
                raise item
            assert isinstance(item, RealtimeEvent)
            yield item

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._playing = None
        if self._response is not None:
            self._response.cancel()
        self._queue.put_nowait(_END)

    # --- the model's side ----------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderError(self._provider, f"{self._provider}: the session is closed")

    def _answer_heard(self) -> None:
        heard = bytes(self._heard)
        self._heard.clear()
        words = [live_word(heard[i : i + self._slot_bytes]) for i in range(0, len(heard), self._slot_bytes)]
        said = _sentence(words) if words else ""
        self._respond(said, f"You said: {said}" if said else "I heard nothing.", spoken=bool(words))

    def _respond(self, said: str | None, answer: str, *, spoken: bool = False) -> None:
        self._stop_response("cancelled")  # a new turn replaces an answer still playing
        self._responses += 1
        number = self._responses
        if spoken and said and self._config.input_transcription:
            self._queue.put_nowait(RealtimeTranscript("user", said, final=True, item_id=f"item_user_{number}"))
        tool = self._tool_for(said) if said is not None else None
        if tool is not None:
            call_id = f"call_{number}"
            self._calls[call_id] = tool
            self._queue.put_nowait(RealtimeToolCall(call_id, tool, json.dumps({"text": said})))
            usage = Units(input_tokens=self._tokens(said or ""), output_tokens=8)
            self._queue.put_nowait(RealtimeTurnDone(f"resp_{number}", "completed", usage))
            return
        self._playing = _Playing(number, self._tokens(said or ""))
        self._response = asyncio.create_task(self._play(self._playing, answer), name="fake-realtime-answer")

    def _tool_for(self, said: str) -> str | None:
        names = [tool.name for tool in self._config.tools]
        if not names:
            return None
        scripted = self._config.metadata.get("fake_tool")
        if scripted in names:
            return scripted
        return next((name for name in names if name in said), None)

    async def _play(self, playing: _Playing, answer: str) -> None:
        words = answer.split()
        chunks = max(len(words), (self._audio_ms or 0) // CHUNK_MS)
        item_id = f"item_assistant_{playing.number}"
        for index in range(chunks):
            if index < len(words):
                delta = words[index] if index == 0 else " " + words[index]
                self._queue.put_nowait(RealtimeTranscript("assistant", delta, final=False, item_id=item_id))
            self._queue.put_nowait(RealtimeAudio(self._voice, playing.response_id))
            playing.chunks += 1
            self._chunks_sent += 1
            if self._fail_after is not None and self._chunks_sent >= self._fail_after and self._failure:
                self._queue.put_nowait(self._failure)
                self._failure = None
                self._playing = None
                return
            if self._pause_s > 0:
                await self._sleep(self._pause_s)
            else:
                await asyncio.sleep(0)  # let the client be heard between chunks
        self._queue.put_nowait(RealtimeTranscript("assistant", answer, final=True, item_id=item_id))
        self._playing = None
        self._queue.put_nowait(RealtimeTurnDone(playing.response_id, "completed", playing.usage()))

    def _stop_response(self, status: TurnStatus) -> None:
        """End the answer playing now (its turn ends with ``status``, before anything else is said)."""
        playing, self._playing = self._playing, None
        if playing is None:
            return
        if self._response is not None:
            self._response.cancel()
        self._queue.put_nowait(RealtimeTurnDone(playing.response_id, status, playing.usage()))

    @staticmethod
    def _tokens(text: str) -> int:
        return 4 + len(text.split())


class FakeRealtimeProvider:
    """The ``fake`` vendor's ``RealtimeProvider``. ``sleep`` paces the answers' chunks (injectable for tests)."""

    def __init__(
        self,
        *,
        name: str = "fake",
        chunk_pause_s: float = 0.02,
        vad_silence_ms: int = 400,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._name = name
        self._pause_s = chunk_pause_s
        self._vad_silence_ms = vad_silence_ms
        self._sleep = sleep
        self._failures = FailureCounter()
        self.sessions: list[FakeRealtimeSession] = []

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def open(self, model: ModelSpec, config: RealtimeConfig) -> FakeRealtimeSession:
        """A session, or the scripted fault."""

        def option(key: str) -> Any:
            return config.metadata[key] if key in config.metadata else model.default_params.get(key)

        delay_ms = option("fake_delay_ms")
        if delay_ms is not None:
            await self._sleep(float(delay_ms) / 1000.0)
        fail_after = option("fake_fail_after")
        drop_after = option("fake_drop_after")
        failure: ServiceError | None = None
        kind = self._failures.failure(option, model.qualified_id)
        if kind is not None:
            retry_after = option("fake_retry_after")
            failure = scripted_fault(
                self._name,
                kind,
                float(retry_after) if retry_after is not None else None,
                kinds=FAKE_TRANSCRIPTION_ERRORS,
            )
            if fail_after is None or isinstance(failure, ValidationError):
                raise failure
        elif drop_after is not None:
            fail_after = drop_after
            failure = ProviderError(self._name, f"{self._name}: the vendor closed the connection", retryable=True)
        pause_ms = option("fake_chunk_pause_ms")
        audio_ms = option("fake_audio_ms")
        session = FakeRealtimeSession(
            self._name,
            config,
            chunk_pause_s=float(pause_ms) / 1000.0 if pause_ms is not None else self._pause_s,
            vad_silence_ms=self._vad_silence_ms,
            audio_ms=int(audio_ms) if audio_ms is not None else None,
            fail_after=int(fail_after) if fail_after is not None else None,
            failure=failure,
            sleep=self._sleep,
        )
        self.sessions.append(session)
        return session
