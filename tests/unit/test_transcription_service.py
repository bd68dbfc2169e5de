"""TranscriptionService: every refusal (415, 413, 422, 404) before any vendor call, the upload retyped from its
decoding, retries and fallbacks through the attempt runner, usage in audio seconds with its cost, and the
transcription metrics per provider and model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from adapters.fake.transcription import FakeTranscriptionProvider
from adapters.kit.audio_probe import PyAVAudioProbe
from domain.catalog import ModelSpec
from domain.errors import (
    CapabilityError,
    NotFoundError,
    PayloadTooLargeError,
    ProviderError,
    RateLimitError,
    ServiceError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from domain.transcription import AudioInfo, Transcript, TranscriptionRequest
from domain.types import CustomerId
from entrypoints.http.errors import status_for
from ports.transcription import STT_PORT, TranscriptionProvider
from services.attempts import AttemptRunner, Caller, RetryPolicy
from services.registry import ProviderRegistry
from services.transcription import TranscriptionService
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.providers import vendors_with
from tests.fakes.usage import InMemoryUsageLedger
from tests.support.audio_clips import tone_wav

CALLER = Caller(CustomerId("alice"), "req-1")
CLIP = tone_wav(1.5)


def stt_spec(model_id: str, provider: str = "alpha", **kwargs: Any) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider=provider,
        capabilities=frozenset({"stt"}),
        audio_price_per_minute=kwargs.pop("audio_price_per_minute", 0.006),
        **kwargs,
    )


class Scripted:
    """Wraps a provider: raises the scripted error on the given call numbers (1-based); remembers each request."""

    def __init__(self, inner: TranscriptionProvider, failures: dict[int, ServiceError] | None = None) -> None:
        self.inner = inner
        self.failures = failures or {}
        self.requests: list[TranscriptionRequest] = []

    @property
    def name(self) -> str:
        return self.inner.name

    async def transcribe(self, request: TranscriptionRequest, model: ModelSpec) -> Transcript:
        self.requests.append(request)
        failure = self.failures.get(len(self.requests))
        if failure is not None:
            raise failure
        return await self.inner.transcribe(request, model)


class CountingProbe:
    """The real PyAV probe, counting its decodes (a refusal before decoding costs none)."""

    def __init__(self) -> None:
        self.calls = 0
        self._inner = PyAVAudioProbe()

    async def probe(self, data: bytes) -> AudioInfo | None:
        self.calls += 1
        return await self._inner.probe(data)


class Ticking:
    """A clock advancing ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Harness:
    def __init__(
        self,
        providers: dict[str, TranscriptionProvider],
        catalog: Sequence[ModelSpec],
        *,
        max_upload_bytes: int = 1024 * 1024,
        clock: Ticking | None = None,
    ) -> None:
        self.usage = InMemoryUsageLedger()
        self.metrics = RecordingMetrics()
        self.sleeps: list[float] = []
        self.probe = CountingProbe()
        registry = ProviderRegistry(catalog, vendors_with(STT_PORT, providers))
        runner = AttemptRunner(registry, self.usage, self.metrics, RetryPolicy(max_retries=2), sleep=self._sleep)
        self.service = TranscriptionService(
            runner, self.metrics, self.probe, max_upload_bytes=max_upload_bytes, clock=clock or Ticking(0.3)
        )

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def transcribe(self, model: str = "alpha/stt", **changes: Any) -> Any:
        changes.setdefault("audio", CLIP)
        changes.setdefault("filename", "clip.wav")
        changes.setdefault("content_type", "audio/wav")
        return await self.service.transcribe(TranscriptionRequest(model=model, **changes), CALLER)


def _fake(name: str = "alpha") -> Scripted:
    return Scripted(FakeTranscriptionProvider(name=name))


async def test_a_wav_is_transcribed_and_billed_by_its_decoded_seconds() -> None:
    """1.5 s of WAV: the fake's transcript, the decoded duration, usage of 1.5 audio seconds at the per-minute price,
    one usage record with capability ``stt``, and no timings unless asked."""
    harness = Harness({"alpha": _fake()}, [stt_spec("stt")])
    result = await harness.transcribe()
    response = result.response
    assert response.model == "alpha/stt"
    assert response.text
    assert response.language == "en"
    assert response.duration_s == 1.5
    assert (response.segments, response.words) == (None, None)
    assert response.usage.audio_seconds == 1.5
    assert response.usage.cost_usd == pytest.approx(1.5 / 60 * 0.006)
    [record] = harness.usage.records
    assert (record.capability, record.outcome, record.audio_seconds) == ("stt", "done", 1.5)
    assert record.cost_usd == pytest.approx(1.5 / 60 * 0.006)
    assert result.meta["model"] == "alpha/stt"


async def test_timestamps_give_segments_and_words() -> None:
    """``segment`` answers segments only; ``word`` answers words and segments."""
    harness = Harness({"alpha": _fake()}, [stt_spec("stt")])
    segments = (await harness.transcribe(timestamps="segment")).response
    assert segments.segments
    assert segments.words is None
    words = (await harness.transcribe(timestamps="word")).response
    assert words.segments
    assert words.words
    assert [w.text for w in words.words] == words.text.lower().replace(".", "").split()


async def test_the_upload_is_named_and_typed_by_its_decoding() -> None:
    """A WAV sent as ``take.mp3`` (audio/mpeg) reaches the vendor as ``take.wav``, ``audio/wav``."""
    provider = _fake()
    harness = Harness({"alpha": provider}, [stt_spec("stt")])
    await harness.transcribe(filename="take.mp3", content_type="audio/mpeg")
    [sent] = provider.requests
    assert (sent.filename, sent.content_type) == ("take.wav", "audio/wav")


@pytest.mark.parametrize(
    ("changes", "error", "status", "decoded"),
    [
        ({"content_type": "text/plain"}, UnsupportedMediaTypeError, 415, False),
        ({"content_type": "image/png", "filename": "clip.wav"}, UnsupportedMediaTypeError, 415, False),
        ({"content_type": "application/octet-stream", "filename": "notes.txt"}, UnsupportedMediaTypeError, 415, False),
        ({"content_type": "text/plain", "audio": CLIP * 40}, UnsupportedMediaTypeError, 415, False),
        ({"audio": CLIP * 40}, PayloadTooLargeError, 413, False),
        ({"audio": CLIP * 40, "model": "alpha/nope"}, PayloadTooLargeError, 413, False),
        ({"audio": b""}, ValidationError, 422, False),
        ({"model": "alpha/nope"}, NotFoundError, 404, False),
        ({"model": "alpha/text"}, CapabilityError, 422, False),
        ({"language": "english"}, ValidationError, 422, False),
        ({"prompt": "x" * 2001}, ValidationError, 422, False),
        ({"model": " "}, ValidationError, 422, False),
        ({"audio": b"definitely not audio" * 50}, ValidationError, 422, True),
        ({"audio": tone_wav(0.05)}, ValidationError, 422, True),
    ],
)
async def test_refusals_come_before_any_vendor_call(
    changes: dict[str, Any], error: type[ServiceError], status: int, decoded: bool
) -> None:
    """Each refusal raises its error (mapped to its status) before the provider is called; only the last checks
    (undecodable or too short audio) cost a decode. A wrong type wins over a size, a size over the model."""
    provider = _fake()
    text_model = ModelSpec(id="text", provider="alpha", capabilities=frozenset({"text"}))
    harness = Harness({"alpha": provider}, [stt_spec("stt"), text_model])
    with pytest.raises(error) as refused:
        await harness.transcribe(**changes)
    assert status_for(refused.value) == status
    assert provider.requests == []
    assert harness.usage.records == []
    assert harness.probe.calls == (1 if decoded else 0)
    if isinstance(refused.value, ValidationError | UnsupportedMediaTypeError | PayloadTooLargeError):
        field = refused.value.context.get("field")
        assert field in ("file", "language", "prompt", "model")


async def test_a_generic_type_is_judged_by_the_file_name() -> None:
    """``application/octet-stream`` (what ``curl -F file=@clip.wav`` sends) is accepted for a ``.wav`` name."""
    harness = Harness({"alpha": _fake()}, [stt_spec("stt")])
    result = await harness.transcribe(content_type="application/octet-stream")
    assert result.response.duration_s == 1.5


@pytest.mark.parametrize(("field", "changes"), [("timestamps", {"timestamps": "word"}), ("prompt", {"prompt": "Hi"})])
async def test_what_the_model_cannot_do_is_refused_naming_the_field(field: str, changes: dict[str, Any]) -> None:
    """A model whose catalog entry lists ``timestamps`` (or ``prompt``) as unsupported refuses it before any call."""
    provider = _fake()
    spec = stt_spec("stt", unsupported_params=frozenset({"timestamps", "prompt"}))
    harness = Harness({"alpha": provider}, [spec])
    with pytest.raises(ValidationError) as refused:
        await harness.transcribe(**changes)
    assert refused.value.field == field
    assert provider.requests == []


async def test_rate_limit_then_success_is_retried_with_retry_after() -> None:
    """A 429 with Retry-After is retried after that delay; two usage records, only the served one billed."""
    limited = RateLimitError("alpha: rate limited", retry_after=1.5)
    provider = Scripted(FakeTranscriptionProvider(name="alpha"), {1: limited})
    harness = Harness({"alpha": provider}, [stt_spec("stt")])
    result = await harness.transcribe()
    assert result.response.text
    assert harness.sleeps == [1.5]
    assert result.meta["retries"] == 1
    assert len(provider.requests) == 2
    records = harness.usage.records
    assert [(r.outcome, r.audio_seconds) for r in records] == [("rate_limited", 0.0), ("done", 1.5)]
    assert harness.metrics.total("provider_retries_total") == 1


async def test_fallbacks_that_cannot_give_timestamps_are_skipped() -> None:
    """With ``timestamps``, a fallback without timings is skipped: the next one that has them serves."""
    primary = stt_spec("stt", fallbacks=("beta/plain", "gamma/timed"))
    plain = stt_spec("plain", provider="beta", unsupported_params=frozenset({"timestamps"}))
    timed = stt_spec("timed", provider="gamma")
    failing = Scripted(FakeTranscriptionProvider(name="alpha"), {1: ProviderError("alpha", "broken")})
    beta = _fake("beta")
    harness = Harness({"alpha": failing, "beta": beta, "gamma": _fake("gamma")}, [primary, plain, timed])
    result = await harness.transcribe(timestamps="segment")
    assert result.meta["fallback_used"] == "gamma/timed"
    assert result.response.segments
    assert beta.requests == []
    assert [(r.model, r.outcome) for r in harness.usage.records] == [
        ("alpha/stt", "provider_error"),
        ("gamma/timed", "done"),
    ]


async def test_transcription_metrics_per_provider_and_model() -> None:
    """Audio seconds, processing time (the serving call), real-time factor and words, labelled by provider and
    model."""
    harness = Harness({"alpha": _fake()}, [stt_spec("stt")], clock=Ticking(0.3))
    result = await harness.transcribe()
    labels = (("model", "alpha/stt"), ("provider", "alpha"))
    metrics = harness.metrics
    assert metrics.counters[("transcription_audio_seconds_total", labels)] == 1.5
    assert metrics.observations[("transcription_processing_seconds", labels)] == [pytest.approx(0.3)]
    assert metrics.observations[("transcription_realtime_factor", labels)] == [pytest.approx(0.2)]
    assert metrics.counters[("transcription_words_total", labels)] == len(result.response.text.split())
    assert metrics.counters[("usage_units_total", (*labels, ("unit", "audio_seconds")))] == 1.5


async def test_a_vendor_failure_records_no_transcription_metrics() -> None:
    """When every attempt fails, the error is raised and no audio is counted as transcribed."""
    provider = Scripted(FakeTranscriptionProvider(name="alpha"), {1: ProviderError("alpha", "broken")})
    harness = Harness({"alpha": provider}, [stt_spec("stt")])
    with pytest.raises(ProviderError):
        await harness.transcribe()
    assert harness.metrics.total("transcription_audio_seconds_total") == 0
    [record] = harness.usage.records
    assert (record.outcome, record.audio_seconds, record.cost_usd) == ("provider_error", 0.0, 0.0)


def test_the_audio_never_appears_in_a_repr() -> None:
    """A request's repr (what a log line or a traceback shows) gives the audio's size, never its bytes."""
    request = TranscriptionRequest(model="alpha/stt", audio=b"RIFF\x00\x01secret-audio")
    assert "secret-audio" not in repr(request)
    assert "<18 bytes>" in repr(request)
