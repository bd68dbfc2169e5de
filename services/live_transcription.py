"""Use case: live speech-to-text. Check the session's framing and model, open a vendor session through the attempt
runner, relay the client's audio to it and its transcripts back, and end the session exactly once.

``plan`` refuses what can be refused before any vendor is called: the encoding (``pcm16`` only), the sample rate,
the language hint, the model (404 unknown, 422 without ``stt``, 422 when its vendor has no live API). ``start``
hands back a ``LiveRun`` for one socket: the client's audio goes in through ``feed`` (which waits while a couple of
seconds of audio are queued: a client faster than the vendor is held back, never buffered without bound) and ``end``;
``updates`` is read by one task and yields ``LiveStarted`` once a vendor session is open (opening is the attempt the
runner retries and falls back on), the vendor's partials and finals, then exactly one terminal: ``LiveDone`` with the
totals, ``LiveFailed`` (a vendor failure, a client silent for ``idle_timeout_s``, a session past ``max_seconds`` of
audio, a protocol error) or ``LiveCancelled`` (the client left).

``start`` passes the quota gate first (``services/quotas.py``): a session is one request, holds one slot in flight
(``concurrent_streams``) for as long as it runs, and reserves, against the tokens-free budgets, the price of a whole
session of ``max_seconds`` of audio at the dearest candidate. That bound is known before the first byte and is never
exceeded (the session is cut at ``max_seconds``), so a budget cannot be overspent by sessions in flight, whatever
they send; the price is the cost of holding it (lower ``audio.live_max_seconds`` to hold less per session). The hold
is renewed while the session runs and settled when it ends: what the session actually cost is counted from its usage
records, the hold given back.

Every attempt leaves one usage record (``stt``, the audio seconds forwarded, their cost) through the runner. The
transcription metrics of a session that opened: audio seconds and words (however it ended), time to first partial
(from the first audio byte), and, for one that ended well, the processing time (first audio byte to the last final),
the real-time factor and the time from the end of the audio to the last final.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Final

from attrs import frozen

from domain.catalog import ModelSpec
from domain.errors import CapabilityError, ServiceError, ValidationError
from domain.live_transcription import (
    LIVE_ENCODINGS,
    LIVE_SAMPLE_RATES,
    SAMPLE_BYTES,
    LiveConfig,
    LiveSummary,
    LiveTranscript,
)
from domain.metering import Units
from domain.types import JsonValue
from ports.live_transcription import LIVE_STT_PORT, LiveTranscriptionProvider
from ports.metrics import Metrics
from services.attempts import AttemptRunner, Caller, Candidates, Finished
from services.live_attempt import AudioBuffer, LiveAttempt, Opened, Progress, Stopped
from services.open_interrupt import OpenInterrupt
from services.quotas import Admission, QuotaGate

__all__ = [
    "LiveCancelled",
    "LiveDone",
    "LiveFailed",
    "LiveRun",
    "LiveStarted",
    "LiveTranscriptionService",
    "LiveUpdate",
]

_CAPABILITY: Final = "stt"
_LANGUAGE: Final = re.compile(r"^[a-z]{2}$")
_log = logging.getLogger("switchyard.live_transcription")


@frozen
class LiveStarted:
    """A vendor session is open; ``meta`` says which model serves (``model``, ``provider``, ``fallback_used``,
    ``retries``)."""

    meta: dict[str, JsonValue]


@frozen
class LiveDone:
    """The session ended well: every final is in."""

    summary: LiveSummary
    meta: dict[str, JsonValue]


@frozen
class LiveFailed:
    """The session ended with ``error``."""

    error: BaseException


@frozen
class LiveCancelled:
    """The client left before the session ended."""

    reason: str = "client_disconnected"


LiveUpdate = LiveStarted | LiveTranscript | LiveDone | LiveFailed | LiveCancelled


class LiveRun:
    """One live session: the client's side (``feed``, ``end``, ``abort``) and the updates for it (``updates``)."""

    def __init__(
        self,
        service: LiveTranscriptionService,
        candidates: Candidates,
        config: LiveConfig,
        caller: Caller,
        admission: Admission | None = None,
    ):
        self._service = service
        self._candidates = candidates
        self._admission = admission
        self._config = config
        self._caller = caller
        bytes_per_second = config.sample_rate * SAMPLE_BYTES
        self._audio = AudioBuffer(max(SAMPLE_BYTES, int(service.queue_seconds * bytes_per_second)))
        self._max_bytes = int(service.max_seconds * bytes_per_second)
        self._aborted = asyncio.Event()
        self._abort_error: ServiceError | None = None
        self._attempt: LiveAttempt | None = None
        self._finals: dict[int, LiveTranscript] = {}

    @property
    def config(self) -> LiveConfig:
        return self._config

    async def feed(self, chunk: bytes) -> bool:
        """Queue ``chunk`` for the vendor, waiting while the buffer is full; ``False`` once the session takes no more
        audio. A chunk that is not whole ``pcm16`` samples is a ``ValidationError`` naming ``audio``."""
        if len(chunk) % SAMPLE_BYTES:
            raise ValidationError("audio", f"a binary frame must hold whole pcm16 samples, got {len(chunk)} bytes")
        return await self._audio.put(chunk)

    async def end(self) -> None:
        """The client sent all its audio."""
        await self._audio.finish()

    def abort(self, error: ServiceError | None = None) -> None:
        """End the session now: with ``error`` (the client broke the protocol), or as cancelled (it left)."""
        if not self._aborted.is_set():
            self._abort_error = error
            self._aborted.set()

    async def updates(self) -> AsyncGenerator[LiveUpdate, None]:
        """``LiveStarted``, transcripts, then exactly one terminal update (read from one task only)."""
        service = self._service
        terminal: LiveUpdate | None = None
        first_partial_at: float | None = None
        opening = OpenInterrupt(self._aborted, name="live-stt-open-interrupt")
        try:
            run = service.runner.run(self._candidates, self._caller, LIVE_STT_PORT, self._body)
            async with aclosing(run) as steps:
                async for step in steps:
                    if isinstance(step, Finished):
                        terminal = LiveDone(self._summary(step), step.attempt.meta())
                        break
                    value = step.value
                    if isinstance(value, Opened):
                        opening.opened()
                        yield LiveStarted(step.attempt.meta())
                    elif isinstance(value, LiveTranscript):
                        if first_partial_at is None:
                            first_partial_at = service.clock()
                        if value.kind == "final":
                            self._finals[value.segment] = value
                        yield value
                    elif isinstance(value, Stopped):
                        terminal = self._stopped(value)
                        break  # closing the run: the attempt is accounted as cancelled
                    else:
                        assert isinstance(value, Progress)
        except asyncio.CancelledError:
            if not opening.interrupted():
                raise
            terminal = self._stopped(Stopped("aborted"))
        except ServiceError as exc:
            terminal = LiveFailed(exc)
        except Exception as exc:  # noqa: BLE001 - a bug: the session still ends with one terminal (internal error)
            _log.exception("live_transcription_crashed")
            terminal = LiveFailed(exc)
        finally:
            opening.close()
            await self._audio.close()
            if self._admission is not None:  # after the runner wrote its records: the cost is counted, then unheld
                await self._admission.release()
        self._record(terminal, first_partial_at)
        yield terminal if terminal is not None else LiveFailed(ServiceError("the live session ended without a result"))

    def _body(self, provider: LiveTranscriptionProvider, spec: ModelSpec) -> LiveAttempt:
        self._finals.clear()  # a new attempt starts before anything of the last one went out
        self._attempt = LiveAttempt(
            provider,
            spec,
            self._config,
            self._audio,
            idle_timeout_s=self._service.idle_timeout_s,
            max_bytes=self._max_bytes,
            aborted=self._aborted,
            clock=self._service.clock,
        )
        return self._attempt

    def _stopped(self, stop: Stopped) -> LiveUpdate:
        service = self._service
        if stop.reason == "idle":
            return LiveFailed(ValidationError("audio", f"no audio for {service.idle_timeout_s:g} s: the session ended"))
        if stop.reason == "too_long":
            return LiveFailed(ValidationError("audio", f"a live session takes at most {service.max_seconds:g} s"))
        if self._abort_error is not None:
            return LiveFailed(self._abort_error)
        return LiveCancelled()

    def _summary(self, finished: Finished) -> LiveSummary:
        finals = [self._finals[segment] for segment in sorted(self._finals)]
        texts = [final.text for final in finals if final.text]
        return LiveSummary(
            text=" ".join(texts),
            audio_seconds=finished.bill.units.audio_seconds,
            segments=len(texts),
            words=sum(len(text.split()) for text in texts),
            cost_usd=finished.bill.cost_usd,
        )

    def _record(self, terminal: LiveUpdate | None, first_partial_at: float | None) -> None:
        attempt = self._attempt
        if attempt is None or attempt.first_audio_at is None:
            return
        metrics = self._service.metrics
        spec = attempt.spec
        labels = {"provider": spec.provider, "model": spec.qualified_id}
        audio_s = attempt.audio_seconds
        words = sum(len(final.text.split()) for final in self._finals.values())
        metrics.increment("transcription_audio_seconds_total", audio_s, **labels)
        metrics.increment("transcription_words_total", float(words), **labels)
        if first_partial_at is not None:
            metrics.observe(
                "transcription_live_first_partial_seconds",
                max(0.0, first_partial_at - attempt.first_audio_at),
                **labels,
            )
        if not isinstance(terminal, LiveDone) or attempt.done_at is None:
            return
        processing = attempt.done_at - attempt.first_audio_at
        metrics.observe("transcription_processing_seconds", processing, **labels)
        if audio_s > 0:
            metrics.observe("transcription_realtime_factor", processing / audio_s, **labels)
        if attempt.ended_at is not None:
            metrics.observe("transcription_live_final_seconds", attempt.done_at - attempt.ended_at, **labels)


class LiveTranscriptionService:
    """``plan`` and ``start`` live sessions (see the module docstring)."""

    def __init__(
        self,
        runner: AttemptRunner,
        metrics: Metrics,
        *,
        idle_timeout_s: float = 10.0,
        max_seconds: float = 3600.0,
        queue_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        quotas: QuotaGate | None = None,
    ) -> None:
        self.runner = runner
        self.quotas = quotas or QuotaGate.unlimited()
        self.metrics = metrics
        self.idle_timeout_s = idle_timeout_s
        self.max_seconds = max_seconds
        self.queue_seconds = queue_seconds
        self.clock = clock

    def plan(self, model: str, config: LiveConfig) -> Candidates:
        """The models to try for a session with ``config``: the requested one, then its catalog fallbacks that have
        a live API here. Refuses a bad field or model before any vendor is called."""
        if not model.strip():
            raise ValidationError("model", "is required: ?model=<a model with the stt capability>")
        if config.encoding not in LIVE_ENCODINGS:
            raise ValidationError("encoding", f"must be one of {', '.join(LIVE_ENCODINGS)}")
        if config.sample_rate not in LIVE_SAMPLE_RATES:
            rates = ", ".join(str(rate) for rate in LIVE_SAMPLE_RATES)
            raise ValidationError("sample_rate", f"must be one of {rates}")
        if config.language is not None and not _LANGUAGE.match(config.language):
            raise ValidationError("language", "expected an ISO-639-1 code in lower case, such as 'en'")
        candidates = self.runner.candidates(model, capabilities=[_CAPABILITY])
        primary = candidates.primary
        if self.runner.registry.provider(primary, LIVE_STT_PORT) is None:
            raise CapabilityError(
                primary.qualified_id,
                _CAPABILITY,
                f"model {primary.qualified_id!r} has no live transcription on this server (provider "
                f"{primary.provider!r} offers files only)",
            )
        live = [spec for spec in candidates.models[1:] if self.runner.registry.provider(spec, LIVE_STT_PORT)]
        return Candidates(candidates.capability, (primary, *live))

    async def start(self, model: str, config: LiveConfig, caller: Caller) -> LiveRun:
        """A run for one client session, admitted by the quota gate (429 over a limit, 403 a model its key may not
        use); the vendor is called when its ``updates`` are first read, and the admission is settled when they end."""
        candidates = self.plan(model, config)
        seconds = self.max_seconds
        admission = await self.quotas.admit(caller, candidates, lambda _: Units(audio_seconds=seconds))
        return LiveRun(self, admission.candidates, config, caller, admission)
