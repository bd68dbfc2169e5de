"""The LiveTranscriptionProvider contract: one set of scenarios run against the ``fake`` provider and every adapter
through its real SDK at the vendor emulator (the OpenAI Realtime transcription session for ``gpt-4o-transcribe`` and
``whisper-1``, ElevenLabs realtime Scribe for ``scribe_v1``), with real audio made in the test and streamed in 100 ms
frames, so partials, finals, the end of a session, what reaches each vendor and the domain errors of every fault
(401 and 429 at connect, an error mid-session, a dropped connection) cannot drift apart.

The emulator picks an OpenAI scenario from the ``x-emulator-scenario`` header (the SDK sends the client's default
headers on the WebSocket handshake); the ElevenLabs SDK sends only its key there, so its scenario is scripted for the
realtime model's name for the length of a test. The fake plays the same scenario from session metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from attrs import frozen
from elevenlabs.client import AsyncElevenLabs
from openai import AsyncOpenAI

from adapters.elevenlabs.live_transcription import REALTIME_MODEL, ElevenLabsLiveTranscriptionProvider
from adapters.fake.live_transcription import FakeLiveTranscriptionProvider
from adapters.fake.transcription import VOCABULARY
from adapters.openai.live_transcription import OpenAILiveTranscriptionProvider
from domain.catalog import ModelSpec
from domain.errors import ProviderError, RateLimitError, ServiceError
from domain.live_transcription import LiveConfig, LiveTranscript
from ports.live_transcription import LiveSession, LiveTranscriptionProvider
from tests.emulator import SCENARIOS, RunningEmulator
from tests.emulator.wire import LEAKY_KEY
from tests.support.live_audio import frames, silence, tone_pcm, two_utterances

SECONDS = 1.5
EMULATED_TEXT = SCENARIOS["text"].text

#: What the fake is told (session metadata) to play each emulator scenario.
FAKE_FAULTS: dict[str, dict[str, str]] = {
    "text": {},
    "fault-401": {"fake_error": "auth"},
    "fault-429": {"fake_error": "rate_limited", "fake_retry_after": "0"},
    "fault-mid-stream": {"fake_error": "overloaded", "fake_fail_after": "1"},
}


@frozen
class Target:
    """One adapter under contract, the model it is handed, and the emulator's request-log name for its sessions."""

    name: str
    model: ModelSpec
    api: str | None = None
    client: Callable[[RunningEmulator, dict[str, str]], Any] | None = None


def _openai_client(emulator: RunningEmulator, headers: dict[str, str]) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key="sk-test-key", base_url=emulator.openai_base_url, max_retries=0, default_headers=headers, timeout=10.0
    )


def _elevenlabs_client(emulator: RunningEmulator, headers: dict[str, str]) -> AsyncElevenLabs:
    return AsyncElevenLabs(
        api_key="xi-test-key", base_url=emulator.root_url, headers=headers, httpx_client=httpx.AsyncClient()
    )


def _spec(provider: str, model: str) -> ModelSpec:
    return ModelSpec(id=model, provider=provider, capabilities=frozenset({"stt"}), audio_price_per_minute=0.006)


TARGETS = [
    Target("fake", _spec("fake", "transcribe")),
    Target("openai_gpt4o", _spec("openai", "gpt-4o-transcribe"), "openai_realtime", _openai_client),
    Target("openai_whisper", _spec("openai", "whisper-1"), "openai_realtime", _openai_client),
    Target("elevenlabs_scribe", _spec("elevenlabs", "scribe_v1"), "elevenlabs_realtime", _elevenlabs_client),
]


@pytest.fixture(params=TARGETS, ids=lambda t: t.name)
def target(request: pytest.FixtureRequest) -> Target:
    """Each adapter under contract."""
    chosen: Target = request.param
    return chosen


class Providers:
    """Builds the target's provider for a scenario and the session config that plays it; closes what it made."""

    def __init__(self, target: Target, emulator: RunningEmulator) -> None:
        self.target = target
        self.emulator = emulator
        self._clients: list[Any] = []
        self._scripted: list[str] = []

    def __call__(self, scenario: str = "text") -> LiveTranscriptionProvider:
        target = self.target
        if target.client is None:
            return FakeLiveTranscriptionProvider(name="fake")
        client = target.client(self.emulator, {"x-emulator-scenario": scenario})
        self._clients.append(client)
        if isinstance(client, AsyncOpenAI):
            return OpenAILiveTranscriptionProvider(client, name="openai")
        self.emulator.state.script(REALTIME_MODEL, SCENARIOS[scenario])
        self._scripted.append(REALTIME_MODEL)
        return ElevenLabsLiveTranscriptionProvider(client, name="elevenlabs")

    def config(self, scenario: str = "text", **changes: Any) -> LiveConfig:
        metadata = dict(FAKE_FAULTS[scenario]) if self.target.client is None else {}
        return LiveConfig(metadata=metadata, **changes)

    async def close(self) -> None:
        for name in self._scripted:
            self.emulator.state.sequences.pop(name, None)
        for client in self._clients:
            if isinstance(client, AsyncOpenAI):
                await client.close()
            else:
                await client._client_wrapper.httpx_client.httpx_client.aclose()


@pytest.fixture
async def providers(target: Target, emulator: RunningEmulator) -> AsyncIterator[Providers]:
    """A provider factory for ``target``; every client it made is closed after the test."""
    made = Providers(target, emulator)
    yield made
    await made.close()


async def stream(session: LiveSession, pcm: bytes, *, rate: int = 16_000, end: bool = True) -> list[LiveTranscript]:
    """Send ``pcm`` in 100 ms frames (then ``end``) while reading the session's events to their end."""
    received: list[LiveTranscript] = []

    async def read() -> None:
        async for event in session.events():
            received.append(event)

    reader = asyncio.create_task(read())
    await asyncio.sleep(0)  # the reader waits for events before any audio goes out, as the service's does
    try:
        for frame in frames(pcm, rate=rate):
            await session.send_audio(frame)
        if end:
            await session.end()
        await asyncio.wait_for(reader, 10.0)
    finally:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
        await session.aclose()
    return received


async def transcribe(
    provider: LiveTranscriptionProvider, target: Target, config: LiveConfig, pcm: bytes
) -> list[LiveTranscript]:
    session = await provider.open(target.model, config)
    return await stream(session, pcm, rate=config.sample_rate)


def finals(events: list[LiveTranscript]) -> list[LiveTranscript]:
    return [event for event in events if event.kind == "final"]


def check_text(target: Target, text: str) -> None:
    if target.client is None:
        words = text.lower().replace(".", "").split()
        assert words
        assert set(words) <= set(VOCABULARY)
    else:
        assert text == EMULATED_TEXT


# --- transcripts ----------------------------------------------------------------------------------------------------


async def test_a_streamed_clip_gives_partials_then_its_final(target: Target, providers: Providers) -> None:
    """Partials of a segment come before its final; every final's segment is new; the events end after ``end``."""
    events = await transcribe(providers(), target, providers.config(), tone_pcm(SECONDS))
    assert events[0].kind == "partial"
    assert events[-1].kind == "final"
    closed: set[int] = set()
    for event in events:
        assert event.segment not in closed, "an event for a segment that already had its final"
        if event.kind == "final":
            closed.add(event.segment)
    assert [f.segment for f in finals(events)] == sorted(closed)
    check_text(target, " ".join(f.text for f in finals(events)))


async def test_partials_grow_towards_the_final(target: Target, providers: Providers) -> None:
    """Each partial of a segment extends the one before; the final holds the last partial's words."""
    events = await transcribe(providers(), target, providers.config(), tone_pcm(SECONDS))
    partials = [e.text for e in events if e.kind == "partial" and e.segment == 0]
    assert partials
    for before, after in itertools.pairwise(partials):
        assert after.startswith(before.rstrip(".,!?"))
    final = finals(events)[0].text
    assert final.lower().rstrip(".!").split()[: len(partials[-1].split())] == partials[-1].lower().rstrip(".!").split()


async def test_the_same_audio_reads_the_same(target: Target, providers: Providers) -> None:
    """Transcripts are deterministic."""
    first = await transcribe(providers(), target, providers.config(), tone_pcm(SECONDS))
    second = await transcribe(providers(), target, providers.config(), tone_pcm(SECONDS))
    assert [f.text for f in finals(first)] == [f.text for f in finals(second)]


async def test_silence_alone_gives_no_transcript(target: Target, providers: Providers) -> None:
    """A session of silence, or of no audio at all, ends without a final carrying words (the fake hears words in
    any audio, so it is held to the empty session only)."""
    for pcm in (b"",) if target.client is None else (b"", silence(1.0)):
        events = await transcribe(providers(), target, providers.config(), pcm)
        assert [e for e in events if e.text] == []


@pytest.mark.parametrize("rate", [8_000, 24_000, 48_000])
async def test_other_sample_rates_are_taken(target: Target, providers: Providers, rate: int) -> None:
    """Audio at any rate a client may declare transcribes like 16 kHz audio."""
    config = providers.config(sample_rate=rate)
    events = await transcribe(providers(), target, config, tone_pcm(SECONDS, rate=rate))
    check_text(target, " ".join(f.text for f in finals(events)))


async def test_a_pause_splits_two_utterances_where_the_vendor_cuts_at_pauses(
    target: Target, providers: Providers
) -> None:
    """OpenAI's server VAD ends a segment at a pause: two utterances give two finals, in order, placed in the audio."""
    if target.api != "openai_realtime":
        pytest.skip("only OpenAI's sessions cut segments at pauses (ElevenLabs commits on the adapter's clock)")
    events = await transcribe(providers(), target, providers.config(), two_utterances())
    texts = finals(events)
    assert [f.text for f in texts] == [EMULATED_TEXT, EMULATED_TEXT]
    assert [f.segment for f in texts] == [0, 1]
    first, second = texts
    assert first.start_s is not None
    assert first.end_s is not None
    assert second.start_s is not None
    assert 0.0 <= first.start_s < first.end_s <= second.start_s


# --- what reaches the vendor -------------------------------------------------------------------------------------


def _decoded_audio(emulator: RunningEmulator, api: str, since: int) -> int:
    total = 0
    for recorded in emulator.state.requests[since:]:
        if recorded.api == api and "audio_base_64" in recorded.body:
            total += int(recorded.body["audio_base_64"].strip("<> bytes"))
    return total


async def test_the_session_reaches_the_vendor_translated(
    target: Target, providers: Providers, emulator: RunningEmulator
) -> None:
    """The model, the audio format, the language and every byte of audio arrive where each vendor expects them."""
    if target.client is None:
        pytest.skip("the fake sends nothing")
    since = len(emulator.state.requests)
    pcm = tone_pcm(SECONDS)
    await transcribe(providers(), target, providers.config(language="en"), pcm)
    connect = emulator.state.last(target.api)
    assert "authorization" not in connect.headers
    assert "xi-api-key" not in connect.headers
    if target.api == "openai_realtime":
        assert connect.body["query"] == {"intent": "transcription"}
        update = next(r.body for r in emulator.state.requests[since:] if r.body.get("type") == "session.update")
        audio_input = update["session"]["audio"]["input"]
        assert update["session"]["type"] == "transcription"
        assert audio_input["format"] == {"type": "audio/pcm", "rate": 24_000}
        assert audio_input["transcription"] == {"model": target.model.wire_name, "language": "en"}
        assert audio_input["turn_detection"]["type"] == "server_vad"
        appended = [
            r.body["audio"]
            for r in emulator.state.requests[since:]
            if r.api == "openai_realtime_event" and r.body.get("type") == "input_audio_buffer.append"
        ]
        sent = sum(int(a.split()[0].strip("<")) for a in appended) * 3 // 4
        assert sent == pytest.approx(len(pcm) * 24_000 / 16_000, rel=0.01)  # resampled to 24 kHz, all of it
    else:
        assert connect.body["query"]["model_id"] == REALTIME_MODEL
        assert connect.body["query"]["audio_format"] == "pcm_16000"
        assert connect.body["query"]["commit_strategy"] == "manual"
        assert connect.body["query"]["language_code"] == "en"
        assert _decoded_audio(emulator, "elevenlabs_realtime_message", since) == len(pcm)


# --- faults -------------------------------------------------------------------------------------------------------


async def test_a_refused_key_at_connect_is_a_final_provider_error(target: Target, providers: Providers) -> None:
    """A 401 at the handshake: a ProviderError that is not retried and does not quote the key."""
    with pytest.raises(ProviderError) as failed:
        await providers("fault-401").open(target.model, providers.config("fault-401"))
    assert not failed.value.retryable
    assert LEAKY_KEY not in str(failed.value)
    assert LEAKY_KEY not in repr(failed.value.context)


async def test_a_rate_limit_at_connect_is_retryable(target: Target, providers: Providers) -> None:
    """A 429 at the handshake: a RateLimitError carrying the vendor's wait."""
    with pytest.raises(RateLimitError) as limited:
        await providers("fault-429").open(target.model, providers.config("fault-429"))
    assert limited.value.retryable
    assert limited.value.retry_after == 0.0


async def test_a_vendor_error_mid_session_ends_the_events(target: Target, providers: Providers) -> None:
    """An error event after the first transcript: the events raise a retryable domain error after that partial."""
    session = await providers("fault-mid-stream").open(target.model, providers.config("fault-mid-stream"))
    received: list[LiveTranscript] = []
    with pytest.raises(ServiceError) as failed:
        received.extend(await stream(session, tone_pcm(SECONDS)))
    assert failed.value.retryable
    assert isinstance(failed.value, ProviderError)


async def test_a_dropped_connection_ends_the_events(target: Target, providers: Providers) -> None:
    """The vendor closing the connection under a running session is a retryable ProviderError, never a quiet end."""
    if target.client is None:
        pytest.skip("the fake has no connection to drop")
    session = await providers("fault-truncated").open(target.model, providers.config())
    with pytest.raises(ProviderError) as failed:
        await stream(session, tone_pcm(SECONDS))
    assert failed.value.retryable


def _commits(emulator: RunningEmulator, since: int) -> list[dict[str, Any]]:
    """The client messages since ``since`` that ask the vendor to finish a segment (OpenAI commit, ElevenLabs
    ``commit: true``)."""
    return [
        r.body
        for r in emulator.state.requests[since:]
        if r.body.get("type") == "input_audio_buffer.commit" or r.body.get("commit") is True
    ]


async def _settled(emulator: RunningEmulator) -> None:
    """Until the emulator (its own thread) has recorded what reached it: its log stops growing (bounded)."""
    seen = -1
    for _ in range(100):
        if len(emulator.state.requests) == seen:
            return
        seen = len(emulator.state.requests)
        await asyncio.sleep(0.05)


async def test_closing_a_session_early_is_quiet(
    target: Target, providers: Providers, emulator: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """``aclose`` mid-session (the client left) releases it at once and quietly: it never finishes the segment (no
    commit reaches the vendor, no final comes out: what was not transcribed is dropped), a second ``aclose`` does
    nothing, no task of the session or its SDK is left running, a reader still on ``events`` ends (never hangs),
    and nothing is logged at WARNING or above (an unretrieved task exception included)."""
    caplog.set_level(logging.WARNING)
    since = len(emulator.state.requests)
    before = asyncio.all_tasks()
    session = await providers().open(target.model, providers.config())
    for frame in frames(tone_pcm(0.5)):
        await session.send_audio(frame)
    await session.aclose()
    await session.aclose()
    left = asyncio.all_tasks() - before - {asyncio.current_task()}
    if left:
        await asyncio.wait(left, timeout=5.0)
    assert [task.get_name() for task in left if not task.done()] == []
    after: list[LiveTranscript] = []
    with contextlib.suppress(ServiceError):  # a domain error (the connection is gone) is an end too
        async with asyncio.timeout(5.0):
            async for event in session.events():
                after.append(event)
    assert [event for event in after if event.kind == "final"] == []
    await _settled(emulator)
    assert _commits(emulator, since) == []
    gc.collect()  # an unretrieved task exception is logged when the task is collected
    assert [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING] == []
