"""Use case: speech-to-text for a whole file. Check the upload, decode it, then one run of the attempt runner.

Everything that can be refused is refused before any vendor is called, cheapest first: the request's own fields
(``model``, ``language``, ``prompt``), the file's declared type (415 unless ``audio/*`` or a known container; a
generic type is judged by the file name), its size (413 over ``audio.max_upload_bytes``), an empty file (422), the
model and what it can do (404, 422 naming ``timestamps`` or ``prompt``), and last, because it costs a decode, audio
that does not decode or lasts under 0.1 s (422 naming ``file``). The decoded container renames and retypes the
upload, so every vendor is told the real format.

The duration from decoding is what every attempt is billed by (``audio_seconds``, priced per minute), whichever
vendor serves: vendors measure the same audio. Retries, fallbacks (skipping those that cannot do what the request
asks), the silence bound and one usage record per attempt are the runner's. The transcription metrics (audio
seconds, processing time, real-time factor, words) are recorded per provider and model for the attempt that served.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Final

import attrs
from attrs import frozen

from domain.catalog import ModelSpec
from domain.errors import PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from domain.metering import Units
from domain.transcription import (
    MIN_DURATION_S,
    TIMESTAMPS,
    Transcript,
    Transcription,
    TranscriptionRequest,
    TranscriptionUsage,
    audio_media_type,
    renamed,
)
from domain.types import JsonValue
from ports.metrics import Metrics
from ports.transcription import STT_PORT, AudioProbe, TranscriptionProvider
from services.attempts import AttemptRunner, Caller, Candidates
from services.quotas import QuotaGate

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "MAX_PROMPT_CHARACTERS", "Transcribed", "TranscriptionService"]

DEFAULT_MAX_UPLOAD_BYTES: Final = 25 * 1024 * 1024
MAX_PROMPT_CHARACTERS: Final = 2000
"""Longest ``prompt`` (OpenAI reads only its last 224 tokens; a longer one is a mistake, not a hint)."""
_CAPABILITY: Final = "stt"
_LANGUAGE: Final = re.compile(r"^[a-z]{2}$")


@frozen
class Transcribed:
    """The answer and the ``meta`` saying who served it."""

    response: Transcription
    meta: dict[str, JsonValue]


@frozen
class _Timed:
    """A provider's transcript and how long the call took (seconds)."""

    transcript: Transcript
    processing_s: float


def _needs(request: TranscriptionRequest) -> list[str]:
    """The optional abilities ``request`` asks of a model (as catalog ``unsupported_params`` names them)."""
    needs = []
    if request.timestamps != "none":
        needs.append("timestamps")
    if request.prompt is not None:
        needs.append("prompt")
    return needs


def _problem(spec: ModelSpec, needs: list[str]) -> str | None:
    lacking = [need for need in needs if need in spec.unsupported_params]
    if not lacking:
        return None
    return lacking[0]


class TranscriptionService:
    """``transcribe``: the upload's checks, its decoding, and one runner call with its metrics."""

    def __init__(
        self,
        runner: AttemptRunner,
        metrics: Metrics,
        probe: AudioProbe,
        *,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        clock: Callable[[], float] = time.monotonic,
        quotas: QuotaGate | None = None,
    ) -> None:
        self.runner = runner
        self._quotas = quotas or QuotaGate.unlimited()
        self.max_upload_bytes = max_upload_bytes
        self._metrics = metrics
        self._probe = probe
        self._clock = clock

    def plan(self, request: TranscriptionRequest) -> Candidates:
        """The models to try for ``request``, after every check that needs no decoding (see the module docstring)."""
        self._check_fields(request)
        self._check_file(request)
        candidates = self.runner.candidates(request.model, capabilities=[_CAPABILITY], fallbacks=request.fallbacks)
        needs = _needs(request)
        lacking = _problem(candidates.primary, needs)
        if lacking is not None:
            what = "gives no timestamps" if lacking == "timestamps" else "takes no prompt"
            raise ValidationError(
                lacking, f"{candidates.primary.qualified_id} {what}", context={"model": candidates.primary.qualified_id}
            )
        # A fallback that cannot do what the request asks is no fallback for it.
        fit = tuple(spec for spec in candidates.models if _problem(spec, needs) is None)
        return Candidates(candidates.capability, fit)

    async def transcribe(self, request: TranscriptionRequest, caller: Caller) -> Transcribed:
        """The transcript of the upload by the first model that serves it."""
        candidates = self.plan(request)
        info = await self._probe.probe(request.audio)
        if info is None:
            raise ValidationError("file", "is not audio that can be decoded (corrupt, or no audio stream)")
        if info.duration_s < MIN_DURATION_S:
            raise ValidationError(
                "file", f"holds {info.duration_s:g} s of audio, less than the {MIN_DURATION_S:g} s minimum"
            )
        prepared = attrs.evolve(
            request, content_type=info.mime_type, filename=renamed(request.filename, info.extension)
        )
        duration = info.duration_s

        async def invoke(provider: TranscriptionProvider, spec: ModelSpec) -> _Timed:
            started = self._clock()
            transcript = await provider.transcribe(prepared, spec)
            return _Timed(transcript, self._clock() - started)

        # 403 a model the caller's key may not use, 429 over a limit: before any vendor call, once the duration (what
        # the call costs) is known (issue 18).
        async with await self._quotas.admit(caller, candidates, lambda _: Units(audio_seconds=duration)) as admission:
            served = await self.runner.call(
                admission.candidates, caller, STT_PORT, invoke, units=lambda _timed: Units(audio_seconds=duration)
            )
        self._record(served.model, served.value, duration)
        transcript = served.value.transcript
        asked = request.timestamps
        response = Transcription(
            model=served.model.qualified_id,
            text=transcript.text,
            language=transcript.language or request.language,
            duration_s=duration,
            usage=TranscriptionUsage(audio_seconds=served.units.audio_seconds, cost_usd=served.cost_usd),
            segments=list(transcript.segments) if asked != "none" else None,
            words=list(transcript.words) if asked == "word" else None,
        )
        return Transcribed(response, served.meta())

    def _check_fields(self, request: TranscriptionRequest) -> None:
        if not request.model.strip():
            raise ValidationError("model", "must not be empty")
        if request.timestamps not in TIMESTAMPS:
            raise ValidationError("timestamps", f"must be one of {', '.join(TIMESTAMPS)}")
        if request.language is not None and not _LANGUAGE.match(request.language):
            raise ValidationError("language", "expected an ISO-639-1 code in lower case, such as 'en'")
        if request.prompt is not None and len(request.prompt) > MAX_PROMPT_CHARACTERS:
            raise ValidationError("prompt", f"at most {MAX_PROMPT_CHARACTERS} characters")

    def _check_file(self, request: TranscriptionRequest) -> None:
        if audio_media_type(request.content_type, request.filename) is None:
            raise UnsupportedMediaTypeError(
                f"file: expected audio (audio/* or an audio container such as video/mp4), got "
                f"{request.content_type or 'no type'}",
                context={"field": "file", "content_type": request.content_type},
            )
        size = len(request.audio)
        if size > self.max_upload_bytes:
            error = PayloadTooLargeError(self.max_upload_bytes)
            error.message = f"file: {size} bytes is more than the limit of {self.max_upload_bytes} bytes"
            error.context["field"] = "file"
            raise error
        if size == 0:
            raise ValidationError("file", "is empty")

    def _record(self, spec: ModelSpec, timed: _Timed, duration: float) -> None:
        labels = {"provider": spec.provider, "model": spec.qualified_id}
        words = len(timed.transcript.words) or len(timed.transcript.text.split())
        self._metrics.increment("transcription_audio_seconds_total", duration, **labels)
        self._metrics.observe("transcription_processing_seconds", timed.processing_s, **labels)
        self._metrics.observe("transcription_realtime_factor", timed.processing_s / duration, **labels)
        self._metrics.increment("transcription_words_total", float(words), **labels)
