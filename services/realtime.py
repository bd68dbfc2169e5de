"""Use case: realtime voice. Check the session's configuration and model, admit it through the quota gate, open a
vendor session through the attempt runner, relay the client's audio, text, commits, cancels and tool results to it and
the model's audio, transcripts, tool calls and turn ends back, and end the session exactly once.

``plan`` refuses what can be refused before any vendor is called, naming the ``session.update`` field: the input
sample rate, the turn detection, the tools (names, schemas), the temperature, the voice (when the catalog lists the
model's voices), a field the model's sessions cannot honour (its catalog ``unsupported_params`` names it: OpenAI's GA
realtime sessions have no ``temperature``; a refusal rather than a setting silently dropped); the model (404
unknown, 422 without ``realtime``, 422 when its vendor has no realtime API here).
``start`` admits the session through the quota gate (403 a model the caller's key may not use, 429 over a limit; it
holds one slot in flight while it runs) and hands back a
``RealtimeRun`` for one socket: the client's side goes in through ``feed``/``commit``/``send_text``/``tool_result``/
``cancel``/``end`` (in order, through a bounded queue: a client faster than the vendor waits), and ``updates`` is read
by one task: ``RealtimeStarted`` once a vendor session is open (opening is the attempt the runner retries and falls
back on), the domain events, then exactly one terminal: ``RealtimeDone`` after ``end`` with the session's totals,
``RealtimeFailed`` (a vendor failure or stall, a session idle for ``idle_timeout_s`` or older than ``max_seconds``, a
client too slow to read, a protocol error) or ``RealtimeCancelled`` (the client left).

A session leaves one usage record (``realtime``: the tokens its turns reported, the audio seconds both ways, their
cost) through the runner, the realtime metrics (sessions by outcome, audio seconds each way, turns by status, time to
first audio per turn) and one log line with its totals (never audio).
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
from domain.errors import CapabilityError, ClientTooSlowError, ServiceError, ValidationError
from domain.live_transcription import SAMPLE_BYTES
from domain.metering import Units
from domain.pricing import cost_usd
from domain.realtime import (
    REALTIME_INPUT_RATES,
    REALTIME_OUTPUT_RATE,
    TURN_DETECTIONS,
    RealtimeConfig,
    RealtimeEvent,
    RealtimeSummary,
)
from domain.types import JsonValue
from ports.metrics import Metrics
from ports.realtime import REALTIME_PORT, RealtimeProvider
from services.attempts import AttemptRunner, Caller, Candidates, Finished
from services.open_interrupt import OpenInterrupt
from services.quotas import Admission, QuotaGate
from services.realtime_attempt import ClientInput, Control, Opened, Progress, RealtimeAttempt, Stopped

__all__ = [
    "RealtimeCancelled",
    "RealtimeDone",
    "RealtimeFailed",
    "RealtimeRun",
    "RealtimeService",
    "RealtimeStarted",
    "RealtimeUpdate",
]

_CAPABILITY: Final = "realtime"
_TOOL_NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_TOOLS: Final = 128
_log = logging.getLogger("switchyard.realtime")


@frozen
class RealtimeStarted:
    """A vendor session is open; ``meta`` says who serves (``model``, ``provider``, ``fallback_used``, ``retries``)
    and the audio coming back (``output_sample_rate``)."""

    meta: dict[str, JsonValue]


@frozen
class RealtimeDone:
    """The session ended well (after the client's ``end``)."""

    summary: RealtimeSummary
    meta: dict[str, JsonValue]


@frozen
class RealtimeFailed:
    """The session ended with ``error``."""

    error: BaseException


@frozen
class RealtimeCancelled:
    """The client left before the session ended."""

    reason: str = "client_disconnected"


RealtimeUpdate = RealtimeStarted | RealtimeEvent | RealtimeDone | RealtimeFailed | RealtimeCancelled
TERMINAL_UPDATES: Final = (RealtimeDone, RealtimeFailed, RealtimeCancelled)


class RealtimeRun:
    """One realtime session: the client's side and the updates for it (``updates``, read by one task)."""

    def __init__(
        self,
        service: RealtimeService,
        candidates: Candidates,
        config: RealtimeConfig,
        caller: Caller,
        admission: Admission | None = None,
    ) -> None:
        self._service = service
        self._candidates = candidates
        self._config = config
        self._caller = caller
        self._admission = admission
        bytes_per_second = config.input_sample_rate * SAMPLE_BYTES
        self._input = ClientInput(max(SAMPLE_BYTES, int(service.inbound_queue_seconds * bytes_per_second)))
        self._aborted = asyncio.Event()
        self._abort_error: ServiceError | None = None
        self._attempt: RealtimeAttempt | None = None
        self._started_at = service.clock()

    @property
    def config(self) -> RealtimeConfig:
        return self._config

    async def feed(self, chunk: bytes) -> bool:
        """Queue ``chunk`` of audio for the vendor, waiting while the queue is full; ``False`` once the session takes
        no more. A chunk that is not whole pcm16 samples is a ``ValidationError`` naming ``audio``."""
        if len(chunk) % SAMPLE_BYTES:
            raise ValidationError("audio", f"a binary frame must hold whole pcm16 samples, got {len(chunk)} bytes")
        return await self._input.put(chunk)

    async def commit(self) -> bool:
        """The user's turn is over: the model answers what it heard."""
        return await self._input.put(Control("commit"))

    async def send_text(self, text: str) -> bool:
        """A user message in text."""
        if not text.strip():
            raise ValidationError("text", "must not be empty")
        return await self._input.put(Control("text", text))

    async def tool_result(self, call_id: str, output: str) -> bool:
        """The result of the model's tool call ``call_id``."""
        if not call_id.strip():
            raise ValidationError("call_id", "must name the tool call being answered")
        return await self._input.put(Control("tool_result", output, call_id))

    async def cancel(self) -> bool:
        """Stop the answer in progress."""
        return await self._input.put(Control("cancel"))

    async def end(self) -> bool:
        """The client is done: the session ends once what it sent before reached the vendor."""
        return await self._input.put(Control("end"))

    def abort(self, error: ServiceError | None = None) -> None:
        """End the session now: with ``error`` (the client broke the protocol, or stopped reading), or as cancelled
        (it left)."""
        if not self._aborted.is_set():
            self._abort_error = error
            self._aborted.set()

    async def updates(self) -> AsyncGenerator[RealtimeUpdate, None]:
        """``RealtimeStarted``, the domain events, then exactly one terminal update."""
        terminal: RealtimeUpdate | None = None
        # A client that leaves while the session opens (a connect, a retry's backoff) ends it now, not when the
        # runner next looks.
        opening = OpenInterrupt(self._aborted, name="realtime-open-interrupt")
        try:
            run = self._service.runner.run(self._candidates, self._caller, REALTIME_PORT, self._body)
            async with aclosing(run) as steps:
                async for step in steps:
                    if isinstance(step, Finished):
                        terminal = RealtimeDone(self._summary(), step.attempt.meta())
                        break
                    value = step.value
                    if isinstance(value, Opened):
                        opening.opened()
                        yield RealtimeStarted({**step.attempt.meta(), "output_sample_rate": REALTIME_OUTPUT_RATE})
                    elif isinstance(value, Stopped):
                        terminal = self._stopped(value)
                        break  # closing the run: the attempt is accounted as cancelled
                    elif not isinstance(value, Progress):
                        yield value
        except asyncio.CancelledError:
            if not opening.interrupted():
                raise
            terminal = self._stopped(Stopped("aborted"))
        except ServiceError as exc:
            terminal = RealtimeFailed(exc)
        except Exception as exc:  # noqa: BLE001 - a bug: the session still ends with one terminal (internal error)
            _log.exception("realtime_crashed")
            terminal = RealtimeFailed(exc)
        finally:
            opening.close()
            await self._input.close()
            if self._admission is not None:
                await self._admission.release()
        if terminal is None:
            terminal = RealtimeFailed(ServiceError("the realtime session ended without a result"))
        self._record(terminal)
        yield terminal

    def _body(self, provider: RealtimeProvider, spec: ModelSpec) -> RealtimeAttempt:
        service = self._service
        self._attempt = RealtimeAttempt(
            provider,
            spec,
            self._config,
            self._input,
            idle_timeout_s=service.idle_timeout_s,
            max_seconds=service.max_seconds,
            outbound_limit=service.outbound_queue_events,
            aborted=self._aborted,
            metrics=service.metrics,
            clock=service.clock,
        )
        return self._attempt

    def _stopped(self, stop: Stopped) -> RealtimeUpdate:
        service = self._service
        match stop.reason:
            case "idle":
                wait = service.idle_timeout_s
                return RealtimeFailed(ValidationError("session", f"nothing was said for {wait:g} s: the session ended"))
            case "too_long":
                return RealtimeFailed(
                    ValidationError("session", f"a realtime session lasts at most {service.max_seconds:g} s")
                )
            case "too_slow":
                limit = service.outbound_queue_events
                return RealtimeFailed(
                    ClientTooSlowError(
                        f"the client did not read the session's output ({limit} messages waited): disconnected",
                        context={"queued_messages": limit},
                    )
                )
        if self._abort_error is not None:
            return RealtimeFailed(self._abort_error)
        return RealtimeCancelled()

    def _summary(self) -> RealtimeSummary:
        attempt = self._attempt
        duration = round(self._service.clock() - self._started_at, 3)
        if attempt is None:
            return RealtimeSummary(0.0, 0.0, 0, Units(), None, duration)
        units = attempt.units()
        return RealtimeSummary(
            input_audio_seconds=round(attempt.input_seconds, 3),
            output_audio_seconds=round(attempt.output_seconds, 3),
            turns=attempt.turns,
            units=units,
            cost_usd=cost_usd(units, attempt.spec),
            duration_s=duration,
        )

    def _record(self, terminal: RealtimeUpdate) -> None:
        """The session's metrics and its one log line."""
        attempt = self._attempt
        spec = attempt.spec if attempt is not None and attempt.opened_at is not None else self._candidates.primary
        if isinstance(terminal, RealtimeDone):
            outcome, summary = "done", terminal.summary
        else:
            summary = self._summary()
            outcome = "cancelled" if isinstance(terminal, RealtimeCancelled) else _code(terminal)
        metrics = self._service.metrics
        labels = {"provider": spec.provider, "model": spec.qualified_id}
        metrics.increment("realtime_sessions_total", 1.0, outcome=outcome, **labels)
        if summary.input_audio_seconds:
            metrics.increment("realtime_audio_seconds_total", summary.input_audio_seconds, direction="in", **labels)
        if summary.output_audio_seconds:
            metrics.increment("realtime_audio_seconds_total", summary.output_audio_seconds, direction="out", **labels)
        units = summary.units
        _log.info(
            "realtime_session_ended",
            extra={
                "customer_id": self._caller.customer_id,
                "request_id": self._caller.request_id,
                "model": spec.qualified_id,
                "provider": spec.provider,
                "outcome": outcome,
                "turns": summary.turns,
                "input_audio_seconds": summary.input_audio_seconds,
                "output_audio_seconds": summary.output_audio_seconds,
                # tokens under "usage": the log redacts every key that names a token
                "usage": {"input": units.input_tokens, "output": units.output_tokens, "cached": units.cached_tokens},
                "cost_usd": summary.cost_usd,
                "duration_s": summary.duration_s,
            },
        )


def _code(terminal: RealtimeUpdate) -> str:
    assert isinstance(terminal, RealtimeFailed)
    error = terminal.error
    return error.code if isinstance(error, ServiceError) else "internal_error"


class RealtimeService:
    """``plan`` and ``start`` realtime sessions (see the module docstring)."""

    def __init__(
        self,
        runner: AttemptRunner,
        metrics: Metrics,
        *,
        quotas: QuotaGate | None = None,
        idle_timeout_s: float = 30.0,
        max_seconds: float = 1800.0,
        inbound_queue_seconds: float = 2.0,
        outbound_queue_events: int = 512,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runner = runner
        self.metrics = metrics
        self.quotas = quotas or QuotaGate.unlimited()
        self.idle_timeout_s = idle_timeout_s
        self.max_seconds = max_seconds
        self.inbound_queue_seconds = inbound_queue_seconds
        self.outbound_queue_events = outbound_queue_events
        self.clock = clock

    def plan(self, model: str, config: RealtimeConfig) -> Candidates:
        """The models to try for a session configured as ``config``: the requested one, then its catalog fallbacks
        that have a realtime API here (and the voice asked for). Refuses a bad field or model before any vendor."""
        if not model.strip():
            raise ValidationError("model", "is required: ?model=<a model with the realtime capability>")
        _check_config(config)
        candidates = self.runner.candidates(model, capabilities=[_CAPABILITY])
        primary = candidates.primary
        if self.runner.registry.provider(primary, REALTIME_PORT) is None:
            raise CapabilityError(
                primary.qualified_id,
                _CAPABILITY,
                f"model {primary.qualified_id!r} has no realtime API on this server (provider {primary.provider!r})",
            )
        if config.voice is not None and primary.voices and config.voice not in primary.voices:
            raise ValidationError("session.voice", f"{primary.qualified_id} speaks {', '.join(primary.voices)}")
        needs = _needs(config)
        for need in needs:
            if need in primary.unsupported_params:
                raise ValidationError(
                    f"session.{need}",
                    f"model {primary.qualified_id!r} takes no {need} in its realtime sessions: leave it out",
                    context={"model": primary.qualified_id},
                )
        fallbacks = [
            spec
            for spec in candidates.models[1:]
            if self.runner.registry.provider(spec, REALTIME_PORT) is not None
            and (config.voice is None or not spec.voices or config.voice in spec.voices)
            and not any(need in spec.unsupported_params for need in needs)
        ]
        return Candidates(candidates.capability, (primary, *fallbacks))

    async def start(self, model: str, config: RealtimeConfig, caller: Caller) -> RealtimeRun:
        """An admitted run for one client session (the vendor is called when its ``updates`` are first read)."""
        candidates = self.plan(model, config)
        # As live transcription: one request, one slot in flight while it runs, and against the budgets the price of
        # a whole session of max_seconds of audio (a bound known up front; token-priced models reserve no spend, their
        # tokens are unknown until the turns report them). Settled when the updates end; the cost is counted from the
        # session's usage record.
        seconds = self.max_seconds
        admission = await self.quotas.admit(caller, candidates, lambda _output_tokens: Units(audio_seconds=seconds))
        return RealtimeRun(self, admission.candidates, config, caller, admission)


def _needs(config: RealtimeConfig) -> list[str]:
    """The optional session fields ``config`` sets, as a catalog entry's ``unsupported_params`` names them."""
    needs = []
    if config.temperature is not None:
        needs.append("temperature")
    if config.instructions is not None:
        needs.append("instructions")
    if config.tools:
        needs.append("tools")
    return needs


def _check_config(config: RealtimeConfig) -> None:
    """Refuse a ``session.update`` no vendor could take, naming its field."""
    if config.input_sample_rate not in REALTIME_INPUT_RATES:
        rates = ", ".join(str(rate) for rate in REALTIME_INPUT_RATES)
        raise ValidationError("session.input_audio.sample_rate", f"must be one of {rates}")
    if config.turn_detection not in TURN_DETECTIONS:
        raise ValidationError("session.turn_detection", f"must be one of {', '.join(TURN_DETECTIONS)}")
    if config.temperature is not None and not 0.0 <= config.temperature <= 2.0:
        raise ValidationError("session.temperature", "must be between 0 and 2")
    if len(config.tools) > _MAX_TOOLS:
        raise ValidationError("session.tools", f"at most {_MAX_TOOLS} tools")
    seen: set[str] = set()
    for index, tool in enumerate(config.tools):
        if not _TOOL_NAME.match(tool.name):
            raise ValidationError(f"session.tools[{index}].name", "1 to 64 letters, digits, '_' or '-'")
        if tool.name in seen:
            raise ValidationError(f"session.tools[{index}].name", f"{tool.name!r} is declared twice")
        seen.add(tool.name)
        if tool.parameters and tool.parameters.get("type") != "object":
            raise ValidationError(
                f"session.tools[{index}].parameters", 'must be a JSON schema of an object ({"type": "object", ...})'
            )
