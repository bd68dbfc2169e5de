"""The SpeechProvider contract: one set of scenarios run against the ``fake`` provider and every adapter through its
real SDK at the vendor emulator (OpenAI ``audio/speech``, ElevenLabs streaming TTS, a Gemini TTS model), so the
audio (decoded back with PyAV: its format and its duration), the streaming, the voices and the domain errors of
every fault cannot drift apart.

The emulator picks the scenario from the ``x-emulator-scenario`` header, which each target's SDK client sends; the
fake plays the same scenario from a marker in the text.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import av
import pytest
from attrs import frozen
from elevenlabs.client import AsyncElevenLabs
from google import genai
from google.genai import types as genai_types
from openai import AsyncOpenAI

from adapters.elevenlabs.speech import ElevenLabsSpeechProvider
from adapters.fake.speech import CHARACTER_SECONDS, FakeSpeechProvider
from adapters.gemini.speech import GeminiSpeechProvider
from adapters.gemini.vendor import DEFAULT_API_VERSION as GEMINI_API_VERSION
from adapters.openai.speech import OpenAISpeechProvider
from domain.catalog import ModelSpec
from domain.errors import ProviderError, RateLimitError, ServiceError, ValidationError
from domain.speech import AUDIO_FORMATS, SpeechRequest
from ports.speech import SpeechProvider
from tests.emulator import Fault, RunningEmulator, Scenario
from tests.emulator.speech import (
    ELEVENLABS_VOICES,
    GEMINI_VOICES,
    OPENAI_VOICES,
    SECONDS_PER_CHARACTER,
    gemini_voice,
)
from tests.emulator.wire import LEAKY_KEY

TEXT = "The quick brown fox jumps over the lazy dog"
#: What the fake is told (a marker in the text) to play each emulator scenario.
FAKE_FAULTS: dict[str, str] = {
    "text": "",
    "fault-401": "[[fake fake_error=auth]]",
    "fault-429": "[[fake fake_error=rate_limited fake_retry_after=0]]",
    "fault-500": "[[fake fake_error=overloaded]]",
    "fault-truncated": "[[fake fake_error=overloaded fake_fail_after=2]]",
}
#: (demuxer, decoder name prefix) per format, as PyAV names what it decoded.
DECODED = {
    "mp3": ("mp3", "mp3"),
    "opus": ("ogg", "opus"),
    "aac": ("aac", "aac"),
    "flac": ("flac", "flac"),
    "wav": ("wav", "pcm_s16le"),
}


@frozen
class Target:
    """One adapter under contract, the model it is handed, a voice it has, and its audio per character."""

    name: str
    model: ModelSpec
    voice: str
    seconds_per_character: float
    api: str | None = None
    """The emulator's request-log name for this target's speech requests (``None``: the fake)."""
    client: Callable[[RunningEmulator, dict[str, str]], Any] | None = None

    def request(self, scenario: str = "text", text: str = TEXT, **changes: Any) -> SpeechRequest:
        marker = FAKE_FAULTS[scenario] if self.client is None else ""
        changes.setdefault("voice", self.voice)
        return SpeechRequest(model=self.model.qualified_id, input=text + marker, **changes)

    def seconds(self, text: str = TEXT, speed: float = 1.0) -> float:
        return len(text) * self.seconds_per_character / speed


def _openai(emulator: RunningEmulator, headers: dict[str, str]) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key="sk-test-key", base_url=emulator.openai_base_url, max_retries=0, default_headers=headers, timeout=10.0
    )


def _elevenlabs(emulator: RunningEmulator, headers: dict[str, str]) -> AsyncElevenLabs:
    return AsyncElevenLabs(api_key="xi-test-key", base_url=emulator.root_url, headers=headers, timeout=10.0)


def _gemini(emulator: RunningEmulator, headers: dict[str, str]) -> genai.Client:
    options = genai_types.HttpOptions(
        base_url=emulator.gemini_base_url,
        api_version=GEMINI_API_VERSION,
        headers=headers,
        timeout=10_000,
        retry_options=genai_types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key="test-key", http_options=options)


def _spec(provider: str, model: str, voices: frozenset[str] | tuple[str, ...] = ()) -> ModelSpec:
    return ModelSpec(id=model, provider=provider, capabilities=frozenset({"tts"}), voices=tuple(sorted(voices)))


TARGETS = [
    Target("fake", _spec("fake", "speech", ("alloy", "nova")), "alloy", CHARACTER_SECONDS),
    Target(
        "openai",
        _spec("openai", "gpt-4o-mini-tts", OPENAI_VOICES),
        "alloy",
        SECONDS_PER_CHARACTER,
        "openai_speech",
        _openai,
    ),
    Target(
        "elevenlabs",
        _spec("elevenlabs", "eleven_flash_v2_5"),
        "21m00Tcm4TlvDq8ikWAM",
        SECONDS_PER_CHARACTER,
        "elevenlabs_tts",
        _elevenlabs,
    ),
    Target(
        "gemini",
        _spec("gemini", "gemini-2.5-flash-preview-tts", GEMINI_VOICES),
        "Kore",
        SECONDS_PER_CHARACTER,
        "gemini",
        _gemini,
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
        self._fake = FakeSpeechProvider(name="fake")

    def __call__(self, scenario: str = "text") -> SpeechProvider:
        target = self._target
        if target.client is None:
            return self._fake
        client = target.client(self._emulator, {"x-emulator-scenario": scenario})
        self._clients.append(client)
        name = target.model.provider
        if isinstance(client, AsyncOpenAI):
            return OpenAISpeechProvider(client, name=name)
        if isinstance(client, AsyncElevenLabs):
            return ElevenLabsSpeechProvider(client, name=name)
        return GeminiSpeechProvider(client, name=name)

    async def close(self) -> None:
        for client in self._clients:
            if isinstance(client, AsyncOpenAI):
                await client.close()
            elif isinstance(client, genai.Client):
                await client.aio.aclose()
            else:
                await client._client_wrapper.httpx_client.httpx_client.aclose()


@pytest.fixture
async def providers(target: Target, emulator: RunningEmulator) -> AsyncIterator[Providers]:
    """A provider factory for ``target``; every client it made is closed after the test."""
    made = Providers(target, emulator)
    yield made
    await made.close()


async def _chunks(provider: SpeechProvider, request: SpeechRequest, model: ModelSpec) -> list[bytes]:
    return [chunk async for chunk in provider.synthesize(request, model)]


def _decoded(data: bytes) -> tuple[str, str, float]:
    """(container, codec, seconds) of an encoded clip, decoded to its last sample."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        samples = sum(int(frame.samples) for frame in container.decode(stream))
        return container.format.name, stream.codec_context.name, samples / stream.codec_context.sample_rate


def _close_to(seconds: float, expected: float) -> bool:
    """Within the codecs' padding (an MP3 or AAC frame of priming and flush, ~0.1 s) and 10%."""
    return abs(seconds - expected) <= 0.12 + 0.1 * expected


# --- success ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("audio_format", [f for f in AUDIO_FORMATS if f != "pcm"])
async def test_each_format_decodes_with_the_length_of_the_text(
    target: Target, providers: Providers, audio_format: str
) -> None:
    """The concatenated chunks are a real file of the asked format whose duration follows the text."""
    chunks = await _chunks(providers(), target.request(format=audio_format), target.model)
    container, codec, seconds = _decoded(b"".join(chunks))
    demuxer, decoder = DECODED[audio_format]
    assert container == demuxer
    assert codec.startswith(decoder)
    assert _close_to(seconds, target.seconds()), seconds


@pytest.mark.parametrize("rate", [24000, 16000, 44100])
async def test_pcm_is_raw_16_bit_mono_at_the_asked_rate(target: Target, providers: Providers, rate: int) -> None:
    """Raw PCM has exactly ``rate`` samples (2 bytes each) per second of speech, whatever the vendor's own rate."""
    data = b"".join(await _chunks(providers(), target.request(format="pcm", sample_rate=rate), target.model))
    assert len(data) % 2 == 0
    assert _close_to(len(data) / 2 / rate, target.seconds())


async def test_audio_streams_in_several_chunks(target: Target, providers: Providers) -> None:
    """A sentence arrives in pieces (the first long before the whole), never as one buffered clip."""
    chunks = await _chunks(providers(), target.request(format="mp3"), target.model)
    assert len(chunks) >= 2
    assert all(chunks)
    assert len(chunks[0]) < sum(map(len, chunks)) / 2


async def test_the_voices_include_the_one_used(target: Target, providers: Providers) -> None:
    """``voices`` lists the model's voices by the id a request names."""
    voices = await providers().voices(target.model)
    assert target.voice in [voice.id for voice in voices]
    assert all(voice.name for voice in voices)


async def test_an_unknown_voice_is_a_validation_error_on_voice(target: Target, providers: Providers) -> None:
    """A voice the model lacks is the caller's mistake about ``voice`` (a 422), not a vendor failure."""
    with pytest.raises(ValidationError) as caught:
        await _chunks(providers(), target.request(voice="no-such-voice"), target.model)
    assert caught.value.field == "voice"


async def test_what_reaches_the_vendor(target: Target, providers: Providers, emulator: RunningEmulator) -> None:
    """The SDK call carries the model, the voice, the text and the format the vendor expects."""
    if target.api is None:
        pytest.skip("the fake sends nothing")
    await _chunks(providers(), target.request(format="mp3"), target.model)
    recorded = emulator.state.last(target.api)
    body = recorded.body
    if target.name == "openai":
        assert (body["model"], body["voice"], body["input"], body["response_format"]) == (
            "gpt-4o-mini-tts",
            "alloy",
            TEXT,
            "mp3",
        )
    elif target.name == "elevenlabs":
        assert body["_voice_id"] == target.voice
        assert (body["text"], body["model_id"]) == (TEXT, "eleven_flash_v2_5")
        assert body["_query"]["output_format"] == "mp3_44100_128"
    else:
        config = body["generationConfig"]
        assert config["responseModalities"] == ["AUDIO"]
        assert gemini_voice(body) == "Kore"
        assert body["contents"][0]["parts"][0]["text"] == TEXT


# --- faults -----------------------------------------------------------------------------------------------------


async def test_401_is_a_non_retryable_provider_error_without_the_key(target: Target, providers: Providers) -> None:
    """Refused credentials fail the call for good, and the vendor's body (quoting the key) does not pass."""
    with pytest.raises(ProviderError) as caught:
        await _chunks(providers("fault-401"), target.request("fault-401"), target.model)
    assert not caught.value.retryable
    assert LEAKY_KEY not in repr(caught.value)


async def test_429_is_a_rate_limit_with_retry_after(target: Target, providers: Providers) -> None:
    """A vendor 429 is a ``RateLimitError`` carrying the vendor's retry delay."""
    with pytest.raises(RateLimitError) as caught:
        await _chunks(providers("fault-429"), target.request("fault-429"), target.model)
    assert caught.value.retryable
    assert caught.value.retry_after == 0.0


async def test_429_then_success(target: Target, providers: Providers, emulator: RunningEmulator) -> None:
    """A rate limit on the first call and audio on the second (the retry the attempt runner makes)."""
    name = f"speech-429-then-ok-{target.name}"
    emulator.state.script(name, Scenario(fault=Fault("rate_limited")), Scenario())
    request = target.request()
    if target.client is None:  # the fake: fail once for this key, then speak
        request = target.request(text=TEXT + f"[[fake fake_error=rate_limited fake_fail_times=1 fake_key={name}]]")
    provider = providers(name)
    with pytest.raises(RateLimitError):
        await _chunks(provider, request, target.model)
    chunks = await _chunks(provider, request, target.model)
    assert _close_to(_decoded(b"".join(chunks))[2], target.seconds())


async def test_a_stream_cut_after_some_audio_is_a_retryable_provider_error(
    target: Target, providers: Providers
) -> None:
    """Audio went out, then the vendor's stream broke: the chunks already received stay, then a retryable
    ``ProviderError`` (which the attempt runner will not retry, since audio was delivered)."""
    received: list[bytes] = []

    async def listen() -> None:
        async for chunk in providers("fault-truncated").synthesize(target.request("fault-truncated"), target.model):
            received.append(chunk)

    with pytest.raises(ProviderError) as caught:
        await listen()
    assert received
    assert caught.value.retryable


async def test_5xx_is_a_retryable_provider_error(target: Target, providers: Providers) -> None:
    """A vendor 500 before any audio may be retried."""
    with pytest.raises(ServiceError) as caught:
        await _chunks(providers("fault-500"), target.request("fault-500"), target.model)
    assert isinstance(caught.value, ProviderError)
    assert caught.value.retryable


def test_every_emulated_elevenlabs_voice_is_listed() -> None:
    """The emulator's voice list is what the ElevenLabs target names (guards the fixture data itself)."""
    assert TARGETS[2].voice in ELEVENLABS_VOICES


async def test_speed_reaches_the_vendor_or_is_refused_by_name(
    target: Target, providers: Providers, emulator: RunningEmulator
) -> None:
    """``speed`` travels as each vendor takes it (OpenAI's ``speed``, ElevenLabs' ``voice_settings.speed``; the
    fake speaks faster); Gemini has no speed control, a ``ValidationError`` on ``speed``."""
    request = target.request(format="wav", speed=1.2)
    if target.name == "gemini":
        with pytest.raises(ValidationError) as caught:
            await _chunks(providers(), request, target.model)
        assert caught.value.field == "speed"
        return
    data = b"".join(await _chunks(providers(), request, target.model))
    if target.name == "fake":
        assert _close_to(_decoded(data)[2], target.seconds(speed=1.2))
    elif target.name == "openai":
        assert emulator.state.last("openai_speech").body["speed"] == 1.2
    else:
        assert emulator.state.last("elevenlabs_tts").body["voice_settings"]["speed"] == 1.2


async def test_instructions_reach_the_vendor_or_are_refused_by_name(
    target: Target, providers: Providers, emulator: RunningEmulator
) -> None:
    """``instructions`` go in OpenAI's field and ahead of Gemini's prompt; ElevenLabs takes none (a
    ``ValidationError`` on ``instructions``); the fake ignores them."""
    request = target.request(instructions="Whisper it")
    if target.name == "elevenlabs":
        with pytest.raises(ValidationError) as caught:
            await _chunks(providers(), request, target.model)
        assert caught.value.field == "instructions"
        return
    assert await _chunks(providers(), request, target.model)
    if target.name == "openai":
        assert emulator.state.last("openai_speech").body["instructions"] == "Whisper it"
    elif target.name == "gemini":
        assert emulator.state.last("gemini").body["contents"][0]["parts"][0]["text"] == f"Whisper it: {TEXT}"


async def test_elevenlabs_voices_are_fetched_once_and_cached(emulator: RunningEmulator) -> None:
    """The voice list is the vendor's (every voice, with its name and language), asked for once per cache period."""
    client = _elevenlabs(emulator, {})
    now = [0.0]
    provider = ElevenLabsSpeechProvider(client, clock=lambda: now[0])
    model = TARGETS[2].model
    before = len([r for r in emulator.state.requests if r.api == "elevenlabs_voices"])
    first = await provider.voices(model)
    again = await provider.voices(model)
    now[0] = 301.0
    await provider.voices(model)
    calls = [r for r in emulator.state.requests if r.api == "elevenlabs_voices"][before:]
    await client._client_wrapper.httpx_client.httpx_client.aclose()
    assert [v.id for v in first] == list(ELEVENLABS_VOICES)
    assert first == again
    assert first[0].name == "Rachel"
    assert first[0].language == "en"
    assert len(calls) == 2
    assert calls[0].body["_query"]["page_size"] == "100"
