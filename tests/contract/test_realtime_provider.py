"""The RealtimeProvider contract: one set of scenarios run against the ``fake`` provider and every adapter through its
real SDK at the vendor emulator, so a spoken turn, a text turn, a tool call and its result, an interruption, the end
of a session and the domain errors of every fault (401 and 429 at connect, an error mid-session, a dropped
connection) cannot drift apart.

Adding an adapter is one ``Target`` in ``TARGETS``: its model and a ``make`` that builds the provider for a scenario
(and says how to close what it built). The emulator picks a scenario from the ``x-emulator-scenario`` header (the SDKs
send the client's default headers on the WebSocket handshake); the fake plays the same scenario from session metadata
(``FAKE_SCENARIOS``). Scenarios: ``text`` (a conversation), ``server_vad`` (turns the vendor's VAD hears, with its
start and end of speech: Gemini Live says them only with the emulator's ``voice_activity``, as only some live models
do), ``tool``, ``fault-401``, ``fault-429``, ``fault-mid-stream``, ``truncated``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx2
import pytest
from attrs import field, frozen
from google import genai
from google.genai import types as genai_types
from openai import AsyncOpenAI

from adapters.fake.realtime import FakeRealtimeProvider
from adapters.gemini.realtime import GeminiRealtimeProvider
from adapters.openai.realtime import OpenAIRealtimeProvider
from domain.catalog import ModelSpec
from domain.errors import ProviderError, RateLimitError, ServiceError
from domain.realtime import (
    REALTIME_OUTPUT_RATE,
    RealtimeAudio,
    RealtimeConfig,
    RealtimeEvent,
    RealtimeSpeechStarted,
    RealtimeSpeechStopped,
    RealtimeTool,
    RealtimeToolCall,
    RealtimeTranscript,
    RealtimeTurnDone,
)
from ports.realtime import RealtimeProvider, RealtimeSession
from tests.emulator.tls import client_context
from tests.support.live_audio import frames, silence, tone_pcm

TURN_TIMEOUT_S = 10.0
WEATHER = RealtimeTool(
    "get_weather",
    "The weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

#: What the fake is told (session metadata) to play each emulator scenario.
FAKE_SCENARIOS: dict[str, dict[str, str]] = {
    "text": {},
    "server_vad": {},
    "tool": {"fake_tool": "get_weather"},
    "fault-401": {"fake_error": "auth"},
    "fault-429": {"fake_error": "rate_limited", "fake_retry_after": "0"},
    "fault-mid-stream": {"fake_error": "overloaded", "fake_fail_after": "1"},
    "truncated": {"fake_drop_after": "1"},
}

Closer = Callable[[], Awaitable[None]]
Maker = Callable[[Any, str], tuple[RealtimeProvider, Closer]]
"""``(emulator, scenario) -> (provider, close)``: the adapter on its SDK's client, pointed at the emulator and
asking it for ``scenario`` (the ``x-emulator-scenario`` header)."""


@frozen
class Target:
    """One adapter under contract: the model it is handed, how to build it (``None``: the fake), and the scenarios
    its vendor cannot play (``skips``, with the reason in the target's module)."""

    name: str
    model: ModelSpec
    make: Maker | None = None
    skips: frozenset[str] = field(factory=frozenset)


def _spec(provider: str, model: str) -> ModelSpec:
    return ModelSpec(
        id=model,
        provider=provider,
        capabilities=frozenset({"realtime"}),
        input_price_per_mtok=32.0,
        output_price_per_mtok=64.0,
    )


def _openai(emulator: Any, scenario: str) -> tuple[RealtimeProvider, Closer]:
    """The OpenAI Realtime adapter on ``AsyncOpenAI`` (``gpt-realtime``), at the emulator."""
    client = AsyncOpenAI(
        api_key="sk-test-key",
        base_url=emulator.openai_base_url,
        max_retries=0,
        default_headers={"x-emulator-scenario": scenario},
    )
    return OpenAIRealtimeProvider(client, name="openai"), client.close


def _gemini(emulator: Any, scenario: str) -> tuple[RealtimeProvider, Closer]:
    """The Gemini Live adapter on ``genai.Client`` (``gemini-live-2.5-flash-preview``), at the emulator's TLS port
    (google-genai opens Gemini Live as ``wss://`` only), on ``v1beta`` as the vendor builder sets it."""
    options = genai_types.HttpOptions(
        base_url=emulator.gemini_live_base_url,
        api_version="v1beta",
        headers={"x-emulator-scenario": scenario},
        async_client_args={"transport": httpx2.AsyncHTTPTransport(), "ssl": client_context()},
    )
    client = genai.Client(api_key="AIza-test-key", http_options=options)
    return GeminiRealtimeProvider(client, name="gemini"), client.aio.aclose


TARGETS: list[Target] = [
    Target("fake", _spec("fake", "realtime")),
    Target("openai", _spec("openai", "gpt-realtime"), _openai),
    Target("gemini", _spec("gemini", "gemini-live-2.5-flash-preview"), _gemini),
]


@pytest.fixture(params=TARGETS, ids=lambda t: t.name)
def target(request: pytest.FixtureRequest) -> Target:
    """Each adapter under contract."""
    chosen: Target = request.param
    return chosen


class Providers:
    """Builds the target's provider for a scenario and the session config that plays it; closes what it made."""

    def __init__(self, target: Target, request: pytest.FixtureRequest) -> None:
        self.target = target
        self._request = request
        self._closers: list[Closer] = []

    def __call__(self, scenario: str = "text") -> RealtimeProvider:
        if self.target.make is None:
            return FakeRealtimeProvider(name="fake", chunk_pause_s=0.01)
        emulator = self._request.getfixturevalue("emulator")  # started only for targets that talk to it
        provider, close = self.target.make(emulator, scenario)
        self._closers.append(close)
        return provider

    def config(self, scenario: str = "text", **changes: Any) -> RealtimeConfig:
        metadata = dict(FAKE_SCENARIOS[scenario]) if self.target.make is None else {}
        return RealtimeConfig(metadata=metadata, **changes)

    async def open(self, scenario: str = "text", **changes: Any) -> Session:
        session = await self(scenario).open(self.target.model, self.config(scenario, **changes))
        return Session(session)

    async def close(self) -> None:
        for close in self._closers:
            await close()


@pytest.fixture
async def providers(target: Target, request: pytest.FixtureRequest) -> AsyncIterator[Providers]:
    """A provider factory for ``target``; every client it made is closed after the test."""
    made = Providers(target, request)
    yield made
    await made.close()


def skip_unless(target: Target, scenario: str) -> None:
    if scenario in target.skips:
        pytest.skip(f"{target.name} cannot play {scenario!r}")


class Session:
    """An open session with a reader task collecting its events (as the service reads them, from another task)."""

    def __init__(self, session: RealtimeSession) -> None:
        self.session = session
        self.events: asyncio.Queue[RealtimeEvent | BaseException | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for event in self.session.events():
                self.events.put_nowait(event)
            self.events.put_nowait(None)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.events.put_nowait(exc)

    async def next(self) -> RealtimeEvent | None:
        """The next event (``None`` at the end); the error the events raised is raised here."""
        item = await asyncio.wait_for(self.events.get(), TURN_TIMEOUT_S)
        if isinstance(item, BaseException):
            raise item
        return item

    async def turn(self) -> list[RealtimeEvent]:
        """Events up to and including the next ``RealtimeTurnDone``."""
        got: list[RealtimeEvent] = []
        while True:
            event = await self.next()
            assert event is not None, f"the events ended before the turn did: {got}"
            got.append(event)
            if isinstance(event, RealtimeTurnDone):
                return got

    async def send_pcm(self, pcm: bytes, rate: int) -> None:
        for frame in frames(pcm, rate=rate):
            await self.session.send_audio(frame)

    async def close(self) -> None:
        await self.session.aclose()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


def transcripts(events: list[RealtimeEvent], speaker: str) -> list[RealtimeTranscript]:
    return [e for e in events if isinstance(e, RealtimeTranscript) and e.speaker == speaker]


def audio_bytes(events: list[RealtimeEvent]) -> int:
    return sum(len(e.data) for e in events if isinstance(e, RealtimeAudio))


def check_answer(events: list[RealtimeEvent]) -> RealtimeTurnDone:
    """A completed spoken answer: assistant transcript deltas then its final (their text), audio in whole pcm16
    samples at 24 kHz, and the turn's end last."""
    done = events[-1]
    assert isinstance(done, RealtimeTurnDone)
    assert done.status == "completed"
    said = transcripts(events, "assistant")
    assert said, events
    final = [t for t in said if t.final]
    assert len(final) == 1
    assert final[0].text.strip()
    deltas = "".join(t.text for t in said if not t.final)
    assert deltas.strip() == final[0].text.strip()
    assert said[-1] is final[0]
    chunks = [e for e in events if isinstance(e, RealtimeAudio)]
    assert chunks
    assert all(len(c.data) % 2 == 0 for c in chunks)
    assert {c.response_id for c in chunks} <= {done.response_id, ""}
    assert audio_bytes(events) >= REALTIME_OUTPUT_RATE * 2 // 10  # at least 100 ms of voice
    return done


# --- sessions and turns ---------------------------------------------------------------------------------------------


async def test_a_session_opens_and_closes_quietly(target: Target, providers: Providers) -> None:
    """Opening returns a session; ``aclose`` ends its events without an error, and a second ``aclose`` does nothing."""
    session = await providers.open()
    await session.session.aclose()
    assert await session.next() is None
    await session.session.aclose()
    await session.close()


@pytest.mark.parametrize("rate", [24_000, 16_000])
async def test_a_committed_spoken_turn_is_transcribed_and_answered(
    target: Target, providers: Providers, rate: int
) -> None:
    """Turn detection ``none``: audio, then ``commit``: the user's final transcript, the assistant's transcript and
    audio, then the turn's end, completed (its usage in tokens when the vendor reports it)."""
    session = await providers.open(turn_detection="none", input_sample_rate=rate)
    try:
        await session.send_pcm(tone_pcm(1.2, rate=rate), rate)
        await session.session.commit()
        events = await session.turn()
    finally:
        await session.close()
    heard = transcripts(events, "user")
    assert [t.final for t in heard][-1:] == [True]
    assert heard[-1].text.strip()
    done = check_answer(events)
    if done.usage is not None:
        assert done.usage.input_tokens > 0
        assert done.usage.output_tokens > 0


async def test_a_pause_ends_a_spoken_turn_with_server_vad(target: Target, providers: Providers) -> None:
    """Server VAD: speech starts (``RealtimeSpeechStarted``), a pause ends it (``RealtimeSpeechStopped``, once, before
    the answer's first audio: the end of the user's turn the first-audio metric is timed from) and the model answers
    the turn."""
    skip_unless(target, "server_vad")
    session = await providers.open("server_vad", turn_detection="server_vad")
    try:
        await session.send_pcm(tone_pcm(1.0, rate=24_000) + silence(1.0, rate=24_000), 24_000)
        events = await session.turn()
    finally:
        await session.close()
    kinds = [type(e) for e in events]
    assert kinds.count(RealtimeSpeechStarted) == 1, events
    assert kinds.count(RealtimeSpeechStopped) == 1, events
    stopped = kinds.index(RealtimeSpeechStopped)
    assert kinds.index(RealtimeSpeechStarted) < stopped < kinds.index(RealtimeAudio), events
    check_answer(events)


async def test_a_text_turn_is_answered(target: Target, providers: Providers) -> None:
    """A text message: the assistant answers in transcript and audio; there is no user transcript of a text."""
    session = await providers.open()
    try:
        await session.session.send_text("Hello, who are you?")
        events = await session.turn()
    finally:
        await session.close()
    assert transcripts(events, "user") == []
    check_answer(events)


async def test_two_turns_follow_each_other(target: Target, providers: Providers) -> None:
    """A conversation: each turn gets its own answer and response id."""
    session = await providers.open()
    try:
        await session.session.send_text("First question.")
        first = check_answer(await session.turn())
        await session.session.send_text("Second question.")
        second = check_answer(await session.turn())
    finally:
        await session.close()
    assert first.response_id != second.response_id


async def test_a_tool_call_is_answered_after_its_result(target: Target, providers: Providers) -> None:
    """With tools, the model calls one (a JSON object of arguments); the session goes on once the result is sent."""
    session = await providers.open("tool", tools=(WEATHER,))
    try:
        await session.session.send_text("What is the weather in Paris? Use get_weather.")
        asked = await session.turn()
        calls = [e for e in asked if isinstance(e, RealtimeToolCall)]
        assert len(calls) == 1, asked
        call = calls[0]
        assert call.name == "get_weather"
        assert call.call_id
        assert isinstance(json.loads(call.arguments), dict)
        await session.session.send_tool_result(call.call_id, json.dumps({"temperature_c": 21}))
        answered = await session.turn()
    finally:
        await session.close()
    check_answer(answered)


async def test_cancel_ends_the_answer_in_progress(target: Target, providers: Providers) -> None:
    """``cancel`` after the first audio of an answer: its turn ends ``cancelled``; the session goes on."""
    session = await providers.open()
    try:
        await session.session.send_text("Tell me a long story.")
        while not isinstance(await session.next(), RealtimeAudio):
            pass
        await session.session.cancel()
        ended = (await session.turn())[-1]
        assert isinstance(ended, RealtimeTurnDone)
        assert ended.status == "cancelled"
        await session.session.send_text("Hello again.")
        check_answer(await session.turn())
    finally:
        await session.close()


async def test_cancel_without_an_answer_does_nothing(target: Target, providers: Providers) -> None:
    """``cancel`` with nothing playing: no error, no turn; the next turn is answered as usual."""
    session = await providers.open()
    try:
        await session.session.cancel()
        await session.session.send_text("Hello.")
        events = await session.turn()
    finally:
        await session.close()
    check_answer(events)


# --- faults ---------------------------------------------------------------------------------------------------------


async def test_a_refused_key_at_connect_is_a_final_provider_error(target: Target, providers: Providers) -> None:
    """A 401 at the handshake: a ProviderError that is not retried."""
    with pytest.raises(ProviderError) as failed:
        await providers("fault-401").open(target.model, providers.config("fault-401"))
    assert not failed.value.retryable


async def test_a_rate_limit_at_connect_is_retryable(target: Target, providers: Providers) -> None:
    """A 429 at the handshake: a RateLimitError carrying the vendor's wait."""
    with pytest.raises(RateLimitError) as limited:
        await providers("fault-429").open(target.model, providers.config("fault-429"))
    assert limited.value.retryable
    assert limited.value.retry_after == 0.0


async def test_a_vendor_error_mid_session_ends_the_events(target: Target, providers: Providers) -> None:
    """An error from the vendor after the answer began: the events raise a retryable ProviderError."""
    session = await providers.open("fault-mid-stream")
    try:
        await session.session.send_text("Hello.")
        with pytest.raises(ServiceError) as failed:
            await session.turn()
    finally:
        await session.close()
    assert isinstance(failed.value, ProviderError)
    assert failed.value.retryable


async def test_a_dropped_connection_ends_the_events(target: Target, providers: Providers) -> None:
    """The vendor closing the connection under a running session is a retryable ProviderError, never a quiet end."""
    session = await providers.open("truncated")
    try:
        await session.session.send_text("Hello.")
        with pytest.raises(ProviderError) as failed:
            await session.turn()
    finally:
        await session.close()
    assert failed.value.retryable
