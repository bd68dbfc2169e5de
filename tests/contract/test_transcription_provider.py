"""The TranscriptionProvider contract: one set of scenarios run against the ``fake`` provider and every adapter
through its real SDK at the vendor emulator (OpenAI ``whisper-1`` and ``gpt-4o-transcribe``, ElevenLabs Scribe,
Gemini audio understanding), with real audio made in the test, so transcripts, timings, the request's translation
and the domain errors of every fault cannot drift apart.

The emulator picks the scenario from the ``x-emulator-scenario`` header, which each target's SDK client sends; the
fake plays the same scenario from request metadata.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from attrs import frozen
from elevenlabs.client import AsyncElevenLabs
from google import genai
from google.genai import types as genai_types
from openai import AsyncOpenAI

from adapters.elevenlabs.transcription import ElevenLabsTranscriptionProvider
from adapters.fake.transcription import VOCABULARY, FakeTranscriptionProvider
from adapters.gemini.transcription import GeminiTranscriptionProvider
from adapters.gemini.vendor import DEFAULT_API_VERSION as GEMINI_API_VERSION
from adapters.openai.transcription import OpenAITranscriptionProvider
from domain.catalog import ModelSpec
from domain.errors import ProviderError, RateLimitError, ValidationError
from domain.transcription import Timestamps, Transcript, TranscriptionRequest
from ports.transcription import TranscriptionProvider
from tests.emulator import SCENARIOS, RunningEmulator
from tests.emulator.wire import LEAKY_KEY
from tests.support.audio_clips import CONTAINERS, encoded, tone_wav

SECONDS = 1.5
CLIP = tone_wav(SECONDS)
EMULATED_TEXT = SCENARIOS["text"].text

#: What the fake is told (request metadata) to play each emulator scenario.
FAKE_FAULTS: dict[str, dict[str, str]] = {
    "text": {},
    "fault-429": {"fake_error": "rate_limited", "fake_retry_after": "0"},
    "fault-500": {"fake_error": "overloaded"},
    "fault-401": {"fake_error": "auth"},
}


@frozen
class Target:
    """One adapter under contract, the model it is handed, and what its vendor gives."""

    name: str
    model: ModelSpec
    timestamps: bool
    prompt: bool = True
    api: str | None = None
    """The emulator's request-log name for this target's requests (``None``: the fake, which sends none)."""
    client: Callable[[RunningEmulator, dict[str, str]], Any] | None = None

    def request(self, scenario: str = "text", **changes: Any) -> TranscriptionRequest:
        changes.setdefault("metadata", dict(FAKE_FAULTS[scenario]) if self.client is None else {})
        changes.setdefault("audio", CLIP)
        changes.setdefault("filename", "clip.wav")
        changes.setdefault("content_type", "audio/wav")
        return TranscriptionRequest(model=self.model.qualified_id, **changes)


def _openai_client(emulator: RunningEmulator, headers: dict[str, str]) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key="sk-test-key", base_url=emulator.openai_base_url, max_retries=0, default_headers=headers, timeout=10.0
    )


def _elevenlabs_client(emulator: RunningEmulator, headers: dict[str, str]) -> AsyncElevenLabs:
    http = httpx.AsyncClient(timeout=10.0)
    return AsyncElevenLabs(api_key="xi-test-key", base_url=emulator.root_url, headers=headers, httpx_client=http)


def _genai_client(emulator: RunningEmulator, headers: dict[str, str]) -> genai.Client:
    options = genai_types.HttpOptions(
        base_url=emulator.gemini_base_url,
        api_version=GEMINI_API_VERSION,
        headers=headers,
        timeout=10_000,
        retry_options=genai_types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key="test-key", http_options=options)


def _spec(provider: str, model: str, vendor_model: str | None = None) -> ModelSpec:
    return ModelSpec(id=model, provider=provider, capabilities=frozenset({"stt"}), vendor_model=vendor_model)


TARGETS = [
    Target("fake", _spec("fake", "transcribe"), timestamps=True),
    Target("openai_whisper", _spec("openai", "whisper-1"), True, api="openai_transcriptions", client=_openai_client),
    Target(
        "openai_gpt4o",
        _spec("openai", "gpt-4o-transcribe"),
        False,
        api="openai_transcriptions",
        client=_openai_client,
    ),
    Target(
        "elevenlabs_scribe",
        _spec("elevenlabs", "scribe_v1"),
        True,
        prompt=False,
        api="elevenlabs_stt",
        client=_elevenlabs_client,
    ),
    Target(
        "gemini",
        _spec("gemini", "gemini-2.5-flash-transcribe", vendor_model="gemini-2.5-flash"),
        False,
        api="gemini",
        client=_genai_client,
    ),
]


@pytest.fixture(params=TARGETS, ids=lambda t: t.name)
def target(request: pytest.FixtureRequest) -> Target:
    """Each adapter under contract."""
    chosen: Target = request.param
    return chosen


class Providers:
    """Builds the target's provider for a scenario (a client per scenario: the header chooses it) and closes them."""

    def __init__(self, target: Target, emulator: RunningEmulator) -> None:
        self._target = target
        self._emulator = emulator
        self._clients: list[Any] = []
        self.fake = FakeTranscriptionProvider(name="fake")

    def __call__(self, scenario: str = "text") -> TranscriptionProvider:
        target = self._target
        if target.client is None:
            return self.fake
        client = target.client(self._emulator, {"x-emulator-scenario": scenario})
        self._clients.append(client)
        name = target.model.provider
        if isinstance(client, AsyncOpenAI):
            return OpenAITranscriptionProvider(client, name=name)
        if isinstance(client, AsyncElevenLabs):
            return ElevenLabsTranscriptionProvider(client, name=name)
        return GeminiTranscriptionProvider(client, name=name)

    async def close(self) -> None:
        for client in self._clients:
            if isinstance(client, AsyncOpenAI):
                await client.close()
            elif isinstance(client, AsyncElevenLabs):
                await client._client_wrapper.httpx_client.httpx_client.aclose()
            else:
                await client.aio.aclose()


@pytest.fixture
async def providers(target: Target, emulator: RunningEmulator) -> AsyncIterator[Providers]:
    """A provider factory for ``target``; every client it made is closed after the test."""
    made = Providers(target, emulator)
    yield made
    await made.close()


def _sent(emulator: RunningEmulator, target: Target) -> dict[str, Any]:
    assert target.api is not None
    return emulator.state.last(target.api).body


def _gemini_instruction(body: dict[str, Any]) -> str:
    parts = body["contents"][-1]["parts"]
    return " ".join(part["text"] for part in parts if "text" in part)


def _check_text(target: Target, transcript: Transcript) -> None:
    if target.client is None:
        words = transcript.text.lower().replace(".", "").split()
        assert words
        assert set(words) <= set(VOCABULARY)
    else:
        assert transcript.text == EMULATED_TEXT


# --- success ----------------------------------------------------------------------------------------------------


async def test_a_generated_wav_is_transcribed(target: Target, providers: Providers) -> None:
    """A real WAV comes back as text (the fake's from the audio, the emulator's scenario text) with no timings
    unless asked, and a duration, when the vendor reports one, that matches the clip."""
    transcript = await providers().transcribe(target.request(), target.model)
    _check_text(target, transcript)
    assert transcript.segments == ()
    assert transcript.words == ()
    if transcript.duration_s is not None:
        assert transcript.duration_s == pytest.approx(SECONDS, abs=0.05)


@pytest.mark.parametrize("container", ["mp3", "ogg", "flac"])
async def test_other_containers_are_transcribed(target: Target, providers: Providers, container: str) -> None:
    """MP3, Ogg Opus and FLAC of the same clip transcribe like the WAV (named and typed as the service sends them)."""
    _muxer, _codec, extension, mime = CONTAINERS[container]
    request = target.request(audio=encoded(CLIP, container), filename=f"clip{extension}", content_type=mime)
    transcript = await providers().transcribe(request, target.model)
    _check_text(target, transcript)


@pytest.mark.parametrize("timestamps", ["segment", "word"])
async def test_timestamps_lie_within_the_audio(target: Target, providers: Providers, timestamps: Timestamps) -> None:
    """Asked for timings, a model that gives them answers segments (and words for ``word``) in order, inside the
    audio, covering the transcript; a model that gives none refuses before any request is sent."""
    provider = providers()
    request = target.request(timestamps=timestamps)
    if not target.timestamps:
        sent_before = len(providers._emulator.state.requests)
        with pytest.raises(ValidationError) as refused:
            await provider.transcribe(request, target.model)
        assert refused.value.field == "timestamps"
        assert len(providers._emulator.state.requests) == sent_before
        return
    transcript = await provider.transcribe(request, target.model)
    assert transcript.segments
    timed = list(transcript.segments) + list(transcript.words)
    assert all(0.0 <= item.start_s <= item.end_s <= SECONDS + 0.05 for item in timed)
    starts = [segment.start_s for segment in transcript.segments]
    assert starts == sorted(starts)
    assert " ".join(segment.text for segment in transcript.segments).split() == transcript.text.split()
    if timestamps == "word":
        assert [w.start_s for w in transcript.words] == sorted(w.start_s for w in transcript.words)
        assert len(transcript.words) == len(transcript.text.split())
    else:
        assert transcript.words == ()


async def test_the_same_audio_reads_the_same(target: Target, providers: Providers) -> None:
    """Transcripts are deterministic: the same clip twice gives the same text."""
    first = await providers().transcribe(target.request(), target.model)
    second = await providers().transcribe(target.request(), target.model)
    assert first.text == second.text


# --- request translation (what the vendor was sent) ----------------------------------------------------------------


async def test_the_request_reaches_the_vendor_translated(
    target: Target, providers: Providers, emulator: RunningEmulator
) -> None:
    """The model's wire name, the file (name, type, every byte), the language and the prompt arrive where each vendor
    expects them; the SDK's own retries are off."""
    if target.client is None:
        pytest.skip("the fake sends nothing")
    prompt = "Names: Switchyard." if target.prompt else None
    transcript = await providers().transcribe(target.request(language="fr", prompt=prompt), target.model)
    assert transcript.language in ("fr", None)
    sent = _sent(emulator, target)
    record = emulator.state.last(target.api)
    assert record.model == target.model.wire_name
    if target.api == "gemini":
        blob = sent["contents"][-1]["parts"][0]["inlineData"]
        assert (blob.get("mimeType") or blob.get("mime_type")) == "audio/wav"
        instruction = _gemini_instruction(sent)
        assert "'fr'" in instruction
        assert "Switchyard" in instruction
        assert sent["generationConfig"]["temperature"] == 0.0
        return
    assert sent["file"]["filename"] == "clip.wav"
    assert sent["file"]["content_type"] == "audio/wav"
    assert sent["file"]["size"] == len(CLIP)
    assert sent["file"]["duration_s"] == pytest.approx(SECONDS, abs=0.01)
    if target.api == "openai_transcriptions":
        assert sent["language"] == "fr"
        assert sent["prompt"] == "Names: Switchyard."
        assert sent["response_format"] == ("verbose_json" if target.timestamps else "json")
        assert record.headers.get("x-stainless-retry-count") == "0"
    else:
        assert sent["language_code"] == "fr"
        assert sent["tag_audio_events"] == "false"
        assert sent["timestamps_granularity"] == "none"
        assert "prompt" not in sent


async def test_word_timestamps_are_asked_for(target: Target, providers: Providers, emulator: RunningEmulator) -> None:
    """``timestamps = word`` asks Whisper for word and segment granularities, Scribe for word timings."""
    if target.client is None or not target.timestamps:
        pytest.skip("only emulated models that give timings")
    await providers().transcribe(target.request(timestamps="word"), target.model)
    sent = _sent(emulator, target)
    if target.api == "openai_transcriptions":
        assert sent["timestamp_granularities[]"] == ["word", "segment"]
    else:
        assert sent["timestamps_granularity"] == "word"


async def test_a_prompt_is_refused_where_the_model_takes_none(target: Target, providers: Providers) -> None:
    """A model without prompts refuses one before the call, naming ``prompt``."""
    if target.prompt:
        pytest.skip("this model takes a prompt")
    with pytest.raises(ValidationError) as refused:
        await providers().transcribe(target.request(prompt="Names: Switchyard."), target.model)
    assert refused.value.field == "prompt"


# --- faults -----------------------------------------------------------------------------------------------------


async def test_undecodable_audio_is_refused_naming_the_file(target: Target, providers: Providers) -> None:
    """Bytes that are not audio are the vendor's 400, a ``ValidationError`` on ``file`` (never a 5xx)."""
    request = target.request(audio=b"this is not audio at all" * 20)
    with pytest.raises(ValidationError) as refused:
        await providers().transcribe(request, target.model)
    assert refused.value.field == "file"


async def test_unauthorized_is_a_final_provider_error_without_the_key(target: Target, providers: Providers) -> None:
    """A 401 is a non-retryable ``ProviderError`` whose message never quotes the vendor's body (which may hold the
    key)."""
    with pytest.raises(ProviderError) as failed:
        await providers("fault-401").transcribe(target.request("fault-401"), target.model)
    assert failed.value.retryable is False
    assert LEAKY_KEY not in repr(failed.value)


async def test_rate_limit_is_retryable(target: Target, providers: Providers) -> None:
    """A 429 is a ``RateLimitError`` (retryable) carrying the vendor's Retry-After when it sent one."""
    with pytest.raises(RateLimitError) as limited:
        await providers("fault-429").transcribe(target.request("fault-429"), target.model)
    assert limited.value.retryable is True
    if target.client is not None:
        assert limited.value.retry_after == 0.0


async def test_server_error_is_retryable(target: Target, providers: Providers) -> None:
    """A 500 is a retryable ``ProviderError``."""
    with pytest.raises(ProviderError) as failed:
        await providers("fault-500").transcribe(target.request("fault-500"), target.model)
    assert failed.value.retryable is True


async def test_429_then_success_is_one_request_each(
    target: Target, providers: Providers, emulator: RunningEmulator
) -> None:
    """A 429 then a success: the first call raises ``RateLimitError`` after exactly one request (the SDK retries
    nothing itself) and the second transcribes."""
    if target.client is None:
        provider = providers()
        flaky = {"fake_error": "rate_limited", "fake_fail_times": "1", "fake_key": "contract-429"}
        with pytest.raises(RateLimitError):
            await provider.transcribe(target.request(metadata=flaky), target.model)
        transcript = await provider.transcribe(target.request(metadata=flaky), target.model)
        _check_text(target, transcript)
        return
    name = f"stt-429-then-ok-{target.name}"
    emulator.state.script(name, SCENARIOS["fault-429"], SCENARIOS["text"])
    provider = providers(name)
    before = len(emulator.state.requests)
    with pytest.raises(RateLimitError):
        await provider.transcribe(target.request(), target.model)
    assert len(emulator.state.requests) == before + 1
    transcript = await provider.transcribe(target.request(), target.model)
    assert transcript.text == EMULATED_TEXT
    assert len(emulator.state.requests) == before + 2
