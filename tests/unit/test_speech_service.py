"""SpeechService: the request's rules, the first chunk committing the run (retries and fallbacks only before it, a
failure after it ending the clip cleanly and counted), and the usage record of each attempt in characters."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from domain.catalog import ModelSpec
from domain.errors import CapabilityError, NotFoundError, ProviderError, RateLimitError, ValidationError
from domain.speech import SpeechRequest, Voice
from domain.types import CustomerId
from ports.speech import TTS_PORT, SpeechProvider
from services.attempts import AttemptRunner, Caller, RetryPolicy
from services.registry import ProviderRegistry
from services.speech import SpeechService
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.providers import vendors_with
from tests.fakes.speech import ScriptedCall, ScriptedSpeechProvider
from tests.fakes.usage import InMemoryUsageLedger

CALLER = Caller(CustomerId("alice"), "req-1")
TEXT = "Hello there, general."


def tts_spec(model_id: str = "voice", provider: str = "alpha", **kwargs: Any) -> ModelSpec:
    kwargs.setdefault("voices", ("amy", "bob"))
    kwargs.setdefault("character_price_per_m", 20.0)
    return ModelSpec(id=model_id, provider=provider, capabilities=frozenset({"tts"}), **kwargs)


class Harness:
    def __init__(self, providers: dict[str, SpeechProvider], catalog: Sequence[ModelSpec]) -> None:
        self.usage = InMemoryUsageLedger()
        self.metrics = RecordingMetrics()
        self.sleeps: list[float] = []
        registry = ProviderRegistry(catalog, vendors_with(TTS_PORT, providers))
        runner = AttemptRunner(registry, self.usage, self.metrics, RetryPolicy(max_retries=2), sleep=self._sleep)
        self.service = SpeechService(runner, self.metrics)

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def speak(self, model: str = "alpha/voice", **fields: Any) -> list[bytes]:
        fields.setdefault("input", TEXT)
        fields.setdefault("voice", "amy")
        stream = await self.service.start(SpeechRequest(model=model, **fields), CALLER)
        return [chunk async for chunk in stream.chunks()]


async def test_the_clip_streams_and_is_billed_in_characters() -> None:
    """Every chunk comes through in order; the one attempt is billed ``len(input)`` characters at the entry's price."""
    provider = ScriptedSpeechProvider()
    harness = Harness({"alpha": provider}, [tts_spec()])
    assert await harness.speak() == [b"chunk-1", b"chunk-2", b"chunk-3"]
    [record] = harness.usage.records
    assert (record.capability, record.outcome, record.characters) == ("tts", "done", len(TEXT))
    assert record.cost_usd == pytest.approx(len(TEXT) * 20.0 / 1e6)
    assert harness.metrics.total("usage_units_total") == len(TEXT)
    assert provider.closed == 1


async def test_429_then_success_before_the_first_chunk_is_retried() -> None:
    """A 429 before any audio is retried after the vendor's delay; the refused attempt costs nothing."""
    provider = ScriptedSpeechProvider(
        script=[ScriptedCall(chunks=(), error=RateLimitError("slow down", retry_after=0.5)), ScriptedCall()]
    )
    harness = Harness({"alpha": provider}, [tts_spec()])
    stream = await harness.service.start(SpeechRequest("alpha/voice", TEXT, "amy"), CALLER)
    assert stream.meta()["retries"] == 1
    assert [chunk async for chunk in stream.chunks()] == [b"chunk-1", b"chunk-2", b"chunk-3"]
    assert harness.sleeps == [0.5]
    refused, served = harness.usage.records
    assert (refused.outcome, refused.characters, refused.cost_usd) == ("rate_limited", 0, 0.0)
    assert (served.outcome, served.characters, served.retries) == ("done", len(TEXT), 1)


async def test_a_failure_after_the_first_chunk_is_not_retried_and_ends_the_clip() -> None:
    """Audio went out: the retryable error ends the clip where it is (no second call), is kept in ``cut`` and
    counted; the attempt is still billed its characters."""
    cut = ProviderError("alpha", "alpha broke", retryable=True)
    provider = ScriptedSpeechProvider(script=[ScriptedCall(chunks=(b"a", b"b"), error=cut), ScriptedCall()])
    harness = Harness({"alpha": provider}, [tts_spec()])
    stream = await harness.service.start(SpeechRequest("alpha/voice", TEXT, "amy"), CALLER)
    assert [chunk async for chunk in stream.chunks()] == [b"a", b"b"]
    assert stream.cut is cut
    assert provider.calls == 1
    assert harness.metrics.total("speech_streams_cut_total") == 1
    [record] = harness.usage.records
    assert (record.outcome, record.characters) == ("provider_error", len(TEXT))


async def test_speak_raises_the_error_that_cut_the_clip() -> None:
    """``speak`` (the CLI's way) yields the audio it got, then raises the cut's error."""
    cut = ProviderError("alpha", "alpha broke", retryable=True)
    provider = ScriptedSpeechProvider(script=[ScriptedCall(chunks=(b"a",), error=cut)])
    harness = Harness({"alpha": provider}, [tts_spec()])
    received: list[bytes] = []

    async def listen() -> None:
        async for chunk in harness.service.speak(SpeechRequest("alpha/voice", TEXT, "amy"), CALLER):
            received.append(chunk)

    with pytest.raises(ProviderError):
        await listen()
    assert received == [b"a"]


async def test_an_error_before_any_audio_raises_from_start() -> None:
    """A non-retryable refusal surfaces from ``start`` (the HTTP route answers it as an envelope)."""
    refused = ProviderError("alpha", "no credentials")
    provider = ScriptedSpeechProvider(script=[ScriptedCall(chunks=(), error=refused)])
    harness = Harness({"alpha": provider}, [tts_spec()])
    with pytest.raises(ProviderError) as caught:
        await harness.speak()
    assert caught.value is refused
    assert provider.calls == 1


async def test_a_clip_without_audio_is_a_retryable_failure() -> None:
    """A vendor that ends without a byte is retried (the retry speaks), never answered as an empty clip."""
    provider = ScriptedSpeechProvider(script=[ScriptedCall(chunks=()), ScriptedCall(chunks=(b"x",))])
    harness = Harness({"alpha": provider}, [tts_spec()])
    assert await harness.speak() == [b"x"]
    assert provider.calls == 2


async def test_closing_after_the_first_chunk_cancels_and_bills_the_characters() -> None:
    """A client gone after the first chunk closes the vendor stream; the attempt is recorded ``cancelled``."""
    provider = ScriptedSpeechProvider()
    harness = Harness({"alpha": provider}, [tts_spec()])
    stream = await harness.service.start(SpeechRequest("alpha/voice", TEXT, "amy"), CALLER)
    chunks = stream.chunks()
    assert await anext(chunks) == b"chunk-1"
    await chunks.aclose()
    [record] = harness.usage.records
    assert (record.outcome, record.characters) == ("cancelled", len(TEXT))
    for _ in range(3):  # the runner leaves the vendor stream to the event loop's async-generator finaliser
        await asyncio.sleep(0)
    assert provider.closed == 1


async def test_a_fallback_before_the_first_chunk_serves_and_says_so() -> None:
    """The primary overloaded before audio: the catalog fallback that has the voice serves."""
    overloaded = ProviderError("alpha", "overloaded", retryable=True)
    alpha = ScriptedSpeechProvider(script=[ScriptedCall(chunks=(), error=overloaded)])
    beta = ScriptedSpeechProvider(name="beta")
    catalog = [
        tts_spec(fallbacks=("beta/other", "beta/voice")),
        tts_spec("other", "beta", voices=("zed",)),
        tts_spec("voice", "beta"),
    ]
    harness = Harness({"alpha": alpha, "beta": beta}, catalog)
    stream = await harness.service.start(SpeechRequest("alpha/voice", TEXT, "amy"), CALLER)
    assert stream.meta()["fallback_used"] == "beta/voice"  # beta/other lacks the voice: skipped
    assert [c async for c in stream.chunks()] == [b"chunk-1", b"chunk-2", b"chunk-3"]
    assert alpha.calls == 3


async def test_the_default_voice_is_used_when_none_is_named() -> None:
    """A model with a default voice speaks it; the provider sees the voice filled in."""
    provider = ScriptedSpeechProvider()
    harness = Harness({"alpha": provider}, [tts_spec(default_params={"voice": "bob"})])
    await harness.speak(voice=None)
    assert provider.requests[0].voice == "bob"


@pytest.mark.parametrize(
    ("fields", "spec_changes", "field"),
    [
        ({"input": "  "}, {}, "input"),
        ({"input": "x" * 10_001}, {}, "input"),
        ({"input": "x" * 101}, {"max_input_characters": 100}, "input"),
        ({"voice": None}, {}, "voice"),
        ({"voice": "zed"}, {}, "voice"),
        ({"voice": " "}, {}, "voice"),
        ({"format": "ogg"}, {}, "format"),
        ({"sample_rate": 16000}, {}, "sample_rate"),
        ({"format": "pcm", "sample_rate": 12345}, {}, "sample_rate"),
        ({"speed": 0.1}, {}, "speed"),
        ({"speed": 1.5}, {"unsupported_params": frozenset({"speed"})}, "speed"),
        ({"instructions": "whisper"}, {"unsupported_params": frozenset({"instructions"})}, "instructions"),
        ({"instructions": ""}, {}, "instructions"),
        ({"model": " "}, {}, "model"),
    ],
)
async def test_invalid_requests_name_the_field_and_call_no_vendor(
    fields: dict[str, Any], spec_changes: dict[str, Any], field: str
) -> None:
    """Each rule is a ``ValidationError`` naming its field, raised before any vendor call."""
    provider = ScriptedSpeechProvider()
    harness = Harness({"alpha": provider}, [tts_spec(**spec_changes)])
    with pytest.raises(ValidationError) as caught:
        await harness.speak(**fields)
    assert caught.value.field == field
    assert provider.calls == 0


async def test_a_model_without_tts_or_unknown_is_refused() -> None:
    """A catalogued model without ``tts`` is a 422 CapabilityError; an unknown one a 404."""
    text_only = ModelSpec(id="chat", provider="alpha", capabilities=frozenset({"text"}))
    harness = Harness({"alpha": ScriptedSpeechProvider()}, [tts_spec(), text_only])
    with pytest.raises(CapabilityError):
        await harness.speak("alpha/chat")
    with pytest.raises(NotFoundError):
        await harness.speak("alpha/nope")


async def test_voices_come_from_the_serving_provider() -> None:
    """``voices`` resolves the model and asks its provider; an unknown model is a 404."""
    provider = ScriptedSpeechProvider(voice_list=[Voice("amy", "Amy"), Voice("bob", "Bob")])
    harness = Harness({"alpha": provider}, [tts_spec(aliases=("nice",))])
    found = await harness.service.voices("nice")
    assert found.model == "alpha/voice"
    assert [v.id for v in found.voices] == ["amy", "bob"]
    with pytest.raises(NotFoundError):
        await harness.service.voices("alpha/none")
