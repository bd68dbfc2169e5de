"""Use case: text-to-speech. Validate the request, run it through the attempt runner, and hand back the audio as it
streams, once its first chunk is here.

``start`` returns only when the serving vendor's first chunk arrived, so everything before it (an unknown model, a bad
field, a vendor refusing, a 429 retried away, a fallback) is settled while an ordinary error answer is still
possible. The first chunk commits the run to its attempt: after it nothing is retried or repeated, and a failure ends
the audio where it is (the client has a clip that stops short), logged as ``speech_stream_cut`` and counted in
``speech_streams_cut_total``. Each attempt is billed in characters of input (what the vendors charge for) once it
produced audio; an attempt refused before any audio costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Final

import attrs
from attrs import frozen

from domain.catalog import ModelSpec
from domain.errors import CapabilityError, ProviderError, ServiceError, ValidationError
from domain.metering import Units
from domain.pricing import cost_usd
from domain.speech import (
    AUDIO_FORMATS,
    MAX_SPEED,
    MIN_SPEED,
    PCM_SAMPLE_RATES,
    AudioChunk,
    SpeechRequest,
    VoiceList,
    content_type,
)
from domain.types import JsonValue, StreamId
from ports.metrics import Metrics, NullMetrics
from ports.speech import TTS_PORT, SpeechProvider
from services.attempts import Attempt, AttemptRunner, Bill, Caller, Candidates, Finished, Output
from services.quotas import Admission, QuotaGate

__all__ = ["MAX_INPUT_CHARACTERS", "SpeechPlan", "SpeechService", "SpeechStream"]

MAX_INPUT_CHARACTERS: Final = 10_000
"""Most characters one request may speak on any model (a catalog entry's ``max_input_characters`` may be lower)."""
MAX_INSTRUCTIONS_CHARACTERS: Final = 4096
_CAPABILITY: Final = "tts"
_log = logging.getLogger("switchyard.speech")


@frozen
class SpeechPlan:
    """A valid request and the models to try, primary first (each able to speak it as asked)."""

    request: SpeechRequest
    candidates: Candidates

    @property
    def primary(self) -> ModelSpec:
        return self.candidates.primary


class _SpeechAttempt:
    """One attempt's body for the runner: the vendor's audio chunks, billed in characters once audio came."""

    def __init__(self, provider: SpeechProvider, spec: ModelSpec, request: SpeechRequest) -> None:
        self._provider = provider
        self._spec = spec
        self.request = request

    async def outputs(self) -> AsyncIterator[AudioChunk]:
        chunks = self._provider.synthesize(self.request, self._spec)
        spoke = False
        try:
            async for chunk in chunks:
                if chunk:
                    spoke = True
                    yield chunk
        finally:
            aclose = getattr(chunks, "aclose", None)  # the port promises an iterator; SDK streams hold a connection
            if aclose is not None:
                await aclose()
        if not spoke:
            raise ProviderError(self._spec.provider, f"{self._spec.provider} answered no audio", retryable=True)

    async def bill(self, attempt: Attempt, outcome: str) -> Bill:
        # Vendors charge for the text they spoke; an attempt refused (or cut off) before any audio spoke none.
        units = Units(characters=len(self.request.input)) if attempt.committed else Units()
        return Bill(units, cost_usd(units, self._spec))


class SpeechStream:
    """A started speech: who serves it and its first chunk are known; ``chunks`` streams the whole clip."""

    def __init__(
        self,
        steps: AsyncGenerator[Output[AudioChunk] | Finished, None],
        first: Output[AudioChunk],
        plan: SpeechPlan,
        metrics: Metrics,
    ) -> None:
        self._steps = steps
        self._first = first
        self._plan = plan
        self._metrics = metrics
        self.bill: Bill | None = None
        """The serving attempt's bill, once the clip ended."""
        self.cut: ServiceError | None = None
        """The error that cut the clip short, if one did."""

    @property
    def model(self) -> ModelSpec:
        """The model serving the audio."""
        return self._first.attempt.spec

    @property
    def content_type(self) -> str:
        return content_type(self._plan.request)

    @property
    def characters(self) -> int:
        return len(self._plan.request.input)

    @property
    def cost_usd(self) -> float | None:
        """What the clip costs at the serving model's price (known up front: characters are the unit)."""
        return cost_usd(Units(characters=self.characters), self.model)

    def meta(self) -> dict[str, JsonValue]:
        """Who serves the audio (the same keys every modality reports)."""
        return self._first.attempt.meta()

    async def chunks(self) -> AsyncGenerator[AudioChunk, None]:
        """The first chunk, then the rest as the vendor sends them. A failure after the first ends the clip
        cleanly (it is logged and counted, and kept in ``cut``); closing this iterator early cancels the vendor
        call (billed by the runner as ``cancelled``)."""
        try:
            yield self._first.value
            async for step in self._steps:
                if isinstance(step, Finished):
                    self.bill = step.bill
                    return
                yield step.value
        except ServiceError as exc:
            self.cut = exc
            spec = self.model
            self._metrics.increment("speech_streams_cut_total", provider=spec.provider, model=spec.qualified_id)
            _log.warning(
                "speech_stream_cut",
                extra={"model": spec.qualified_id, "error_code": exc.code, "error": exc.message},
            )
        finally:
            await self._steps.aclose()

    async def aclose(self) -> None:
        """Stop the vendor call without reading on (when the audio will not be delivered)."""
        await self._steps.aclose()


class SpeechService:
    """``start`` a speech (validated, resolved, first chunk in hand) and list a model's ``voices``."""

    def __init__(
        self,
        runner: AttemptRunner,
        metrics: Metrics | None = None,
        *,
        max_input_characters: int = MAX_INPUT_CHARACTERS,
        quotas: QuotaGate | None = None,
    ) -> None:
        self.runner = runner
        self._metrics = metrics or NullMetrics()
        self._max_characters = max_input_characters
        self._quotas = quotas or QuotaGate.unlimited()

    def plan(self, request: SpeechRequest) -> SpeechPlan:
        """The models to try for a valid ``request`` (``ValidationError`` naming the field otherwise; 404 unknown
        model, 422 a model without ``tts``). Catalog fallbacks that cannot speak it as asked are skipped."""
        self._check(request)
        candidates = self.runner.candidates(request.model, capabilities=[_CAPABILITY])
        problem = _problem(request, candidates.primary)
        if problem is not None:
            raise problem
        fit = tuple(spec for spec in candidates.models if _problem(request, spec) is None)
        return SpeechPlan(request, Candidates(candidates.capability, fit))

    async def start(self, request: SpeechRequest, caller: Caller) -> SpeechStream:
        """Run ``request`` until its first audio chunk; raise the error that ended it before any audio."""
        # The audio outlives this call, so the admission is settled when the run closes (``guard``).
        plan, admission = await self.admit(self.plan(request), caller, characters=len(request.input))
        steps = admission.guard(self.run(plan, caller))
        try:
            first = await anext(steps)
        except BaseException:
            await steps.aclose()
            raise
        if not isinstance(first, Output):  # the body raises on a clip without audio, so this cannot finish first
            await steps.aclose()
            raise ProviderError(plan.primary.provider, "the provider ended without audio")
        return SpeechStream(steps, first, plan, self._metrics)

    async def admit(self, plan: SpeechPlan, caller: Caller, *, characters: int) -> tuple[SpeechPlan, Admission]:
        """``plan`` as the caller's key and quotas allow it (403 a model the key may not use, 429 over a limit: before
        any vendor call, issue 18), holding ``characters`` of speech, and its admission: settle it when the speech
        ends."""
        admission = await self._quotas.admit(caller, plan.candidates, lambda _: Units(characters=characters))
        return SpeechPlan(plan.request, admission.candidates), admission

    def run(
        self, plan: SpeechPlan, caller: Caller, *, stream_id: StreamId | None = None
    ) -> AsyncGenerator[Output[AudioChunk] | Finished, None]:
        """The attempt runner speaking an admitted ``plan``: an ``Output`` per audio chunk of the serving attempt,
        then ``Finished`` (retries and fallbacks only before the first chunk); usage records carry ``stream_id``."""

        def body(provider: SpeechProvider, spec: ModelSpec) -> _SpeechAttempt:
            return _SpeechAttempt(provider, spec, _for_model(plan.request, spec))

        return self.runner.run(plan.candidates, caller, TTS_PORT, body, stream_id=stream_id)

    async def speak(self, request: SpeechRequest, caller: Caller) -> AsyncIterator[AudioChunk]:
        """The whole clip as it streams (``start`` and ``chunks`` in one, for callers with no error boundary)."""
        stream = await self.start(request, caller)
        chunks = stream.chunks()
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()
        if stream.cut is not None:
            raise stream.cut

    async def voices(self, model: str) -> VoiceList:
        """The voices ``model`` offers (404 unknown model, 422 a model without ``tts``)."""
        if not model.strip():
            raise ValidationError("model", "must name a text-to-speech model")
        spec = self.runner.registry.resolve(model, capabilities=[_CAPABILITY])
        provider = self.runner.registry.provider(spec, TTS_PORT)
        if provider is None:
            raise CapabilityError(spec.qualified_id, _CAPABILITY, f"provider {spec.provider!r} serves no speech here")
        return VoiceList(spec.qualified_id, await provider.voices(spec))

    def _check(self, request: SpeechRequest) -> None:
        """The rules every model shares; each error names its field."""
        if not request.model.strip():
            raise ValidationError("model", "must not be empty")
        if not request.input.strip():
            raise ValidationError("input", "must not be empty or blank")
        if len(request.input) > self._max_characters:
            raise ValidationError(
                "input",
                f"at most {self._max_characters} characters, got {len(request.input)}",
                context={"limit": self._max_characters},
            )
        if request.format not in AUDIO_FORMATS:
            raise ValidationError("format", f"must be one of {', '.join(AUDIO_FORMATS)}")
        if request.sample_rate is not None:
            if request.format != "pcm":
                raise ValidationError("sample_rate", "applies to format 'pcm' only (the other formats say their own)")
            if request.sample_rate not in PCM_SAMPLE_RATES:
                raise ValidationError("sample_rate", f"must be one of {', '.join(map(str, PCM_SAMPLE_RATES))}")
        if request.speed is not None and not MIN_SPEED <= request.speed <= MAX_SPEED:
            raise ValidationError("speed", f"must be between {MIN_SPEED} and {MAX_SPEED}")
        if request.instructions is not None:
            if not request.instructions.strip():
                raise ValidationError("instructions", "must not be blank (leave it out instead)")
            if len(request.instructions) > MAX_INSTRUCTIONS_CHARACTERS:
                raise ValidationError("instructions", f"at most {MAX_INSTRUCTIONS_CHARACTERS} characters")
        if request.voice is not None and not request.voice.strip():
            raise ValidationError("voice", "must not be blank")


def _default_voice(spec: ModelSpec) -> str | None:
    voice = spec.default_params.get("voice")
    return voice if isinstance(voice, str) and voice else None


def _for_model(request: SpeechRequest, spec: ModelSpec) -> SpeechRequest:
    """``request`` as ``spec`` hears it: its default voice when the request names none."""
    if request.voice is not None:
        return request
    return attrs.evolve(request, voice=_default_voice(spec))


def _problem(request: SpeechRequest, spec: ModelSpec) -> ValidationError | None:
    """Why ``spec`` cannot speak ``request`` as asked (``None``: it can)."""
    model = spec.qualified_id
    context = {"model": model}
    if request.voice is None and _default_voice(spec) is None:
        return ValidationError(
            "voice", f"model {model!r} needs a voice (GET /api/v1/voices?model={model})", context=context
        )
    if request.voice is not None and spec.voices and request.voice not in spec.voices:
        offered = ", ".join(spec.voices)
        return ValidationError(
            "voice", f"model {model!r} has no voice {request.voice!r}; it offers: {offered}", context=context
        )
    for name in ("speed", "instructions"):
        if getattr(request, name) is not None and name in spec.unsupported_params:
            return ValidationError(name, f"model {model!r} does not take {name}", context=context)
    limit = spec.max_input_characters
    if limit is not None and len(request.input) > limit:
        return ValidationError(
            "input", f"model {model!r} speaks at most {limit} characters", context=context | {"limit": limit}
        )
    return None
