"""Use case core: the attempt runner, the one retry/fallback/accounting loop every modality goes through.

Reliability rules (the heart of the product):

- Candidates are the requested model, then the request's fallbacks, then the catalog entry's, each once.
- Retryable errors (429, 5xx/overloaded, timeouts) are retried with exponential backoff and jitter, honouring
  ``RateLimitError.retry_after``, at most ``max_retries`` times per model and never past ``deadline_s``.
- Retries and fallbacks happen only before an attempt's first output went out. After that, a failure ends the run
  with that error and nothing is ever repeated.
- A vendor silent for ``idle_timeout_s`` (before its first output or between two) fails the attempt with a retryable
  ``ProviderTimeoutError``.
- Every provider call (each attempt) leaves one ``UsageRecord`` (capability, units, cost) and the canonical provider
  metrics, however it ended: done, an error, or cancelled by its caller.
- A model whose circuit breaker is open is skipped for the next candidate (services/breakers.py); when every
  candidate is refused that way the run fails at once with ``ProviderUnavailableError``. Each attempt's outcome
  goes back to its breaker, and a model whose breaker left ``closed`` is not retried.

A modality hands the runner a *body* per attempt: the vendor call as an async iterator of outputs (a stream for chat
and speech, a single value for an image or an embedding batch), and how to bill it once it is over. Everything
else (which model, how often, how long, what is recorded) is decided here, once for every modality. A one-shot call
made of several vendor calls (an embeddings batch in chunks) runs through ``call_metered``: each vendor call adds
its units to the attempt's ``Meter`` as it ends, so an attempt that fails part-way is billed what the vendor charged.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from attrs import define, field, frozen

from domain.catalog import ModelSpec
from domain.errors import CapabilityError, RateLimitError, ServiceError
from domain.health import Admission, Verdict, all_refused, verdict_of
from domain.metering import Units
from domain.pricing import cost_usd
from domain.types import CustomerId, JsonValue, StreamId
from domain.usage import UsageRecord
from ports.metrics import Metrics
from ports.providers import PortKey
from ports.usage import UsageLedger
from services.breakers import Breakers, NullBreakers
from services.registry import ProviderRegistry
from services.silence import SilenceBound

__all__ = [
    "Attempt",
    "AttemptBody",
    "AttemptRunner",
    "Bill",
    "Caller",
    "Candidates",
    "Finished",
    "Meter",
    "Output",
    "RetryPolicy",
    "Served",
]

P = TypeVar("P")
T = TypeVar("T")
E = TypeVar("E")
E_co = TypeVar("E_co", covariant=True)

_TOKEN_KINDS = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cached", "cached_tokens"),
    ("reasoning", "reasoning_tokens"),
)
_OTHER_UNITS = ("images", "characters", "audio_seconds", "video_seconds")


@frozen
class RetryPolicy:
    """How hard to try one model (from ``providers.*`` settings)."""

    max_retries: int = 2
    deadline_s: float = 30.0
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    idle_timeout_s: float = 60.0
    """Longest a vendor may stay silent (before its first output, or between two) before the attempt fails with
    ``provider_timeout``; ``providers.request_timeout_s``, the SDKs' read timeout too."""
    complete_timeout_s: float | None = None
    """Longest a call made without streaming may take in all (its vendor is silent until the whole answer is ready,
    so ``idle_timeout_s`` would cut every long answer); ``providers.complete_timeout_s``. ``None``: ``idle_timeout_s``.
    """

    @property
    def whole_call_s(self) -> float:
        """The bound on a non-streamed call."""
        return self.idle_timeout_s if self.complete_timeout_s is None else self.complete_timeout_s

    def backoff(self, retry: int, error: ServiceError, jitter: float) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): the vendor's ``Retry-After`` when it gave one,
        else ``base * 2**(retry-1)`` capped at ``max_delay_s``, with "equal jitter" (half fixed, half random)."""
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return max(0.0, float(error.retry_after))
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (retry - 1))
        return ceiling / 2 + jitter * ceiling / 2


@frozen
class Caller:
    """Who asks and under which request id (for usage records)."""

    customer_id: CustomerId
    request_id: str


@frozen
class Candidates:
    """The models to try, primary first, for a request needing ``capability`` (the usage records' capability)."""

    capability: str
    models: tuple[ModelSpec, ...]

    @property
    def primary(self) -> ModelSpec:
        return self.models[0]


@frozen
class Bill:
    """What one attempt is billed: its units, their cost (``None``: unpriced) and whether the units are estimates."""

    units: Units
    cost_usd: float | None
    estimated: bool = False


@define
class Attempt:
    """One provider call: which model, its place in the run and its timing."""

    spec: ModelSpec
    primary: ModelSpec
    started: float
    retry: int
    """Retries of this model before this attempt."""
    retries_total: int
    """Retries in the whole run before this attempt (every model)."""
    first_output_at: float | None = None

    @property
    def committed(self) -> bool:
        """Whether an output of this attempt went out (no retry or fallback from here on)."""
        return self.first_output_at is not None

    @property
    def fallback_used(self) -> str | None:
        return None if self.spec == self.primary else self.spec.qualified_id

    def ttft_ms(self) -> float | None:
        return None if self.first_output_at is None else (self.first_output_at - self.started) * 1000

    def meta(self) -> dict[str, JsonValue]:
        """Who serves: the keys every modality reports in its response ``meta``."""
        return {
            "model": self.spec.qualified_id,
            "provider": self.spec.provider,
            "fallback_used": self.fallback_used,
            "retries": self.retries_total,
        }


class AttemptBody(Protocol[E_co]):
    """One attempt's vendor call, made by the modality: its outputs, then its bill."""

    def outputs(self) -> AsyncIterator[E_co]:
        """The vendor's outputs, in order (opened on first iteration; closed with ``aclose`` when present)."""
        ...

    async def bill(self, attempt: Attempt, outcome: str) -> Bill:
        """What the attempt consumed, once it is over (``outcome``: ``done``, ``cancelled`` or an error code)."""
        ...


@define
class Meter:
    """What one attempt of a one-shot call has consumed so far, its vendor calls' units added as each ends."""

    units: Units = field(factory=Units)
    estimated: bool = False

    def add(self, units: Units, *, estimated: bool = False) -> None:
        """Count one vendor call that ended well (``estimated``: its units are a guess)."""
        self.units += units
        self.estimated = self.estimated or estimated


@frozen
class Output(Generic[E]):
    """An output of the serving attempt (the first one commits the run to that attempt)."""

    attempt: Attempt
    value: E


@frozen
class Finished:
    """The serving attempt ended well; the run is over."""

    attempt: Attempt
    bill: Bill


@frozen
class Served(Generic[T]):
    """A one-shot call's result and who served it."""

    value: T
    model: ModelSpec
    primary: ModelSpec
    retries: int
    latency_ms: float
    units: Units
    cost_usd: float | None

    def meta(self) -> dict[str, JsonValue]:
        """The response ``meta`` every modality reports."""
        return {
            "model": self.model.qualified_id,
            "provider": self.model.provider,
            "fallback_used": None if self.model == self.primary else self.model.qualified_id,
            "retries": self.retries,
            "latency_ms": self.latency_ms,
        }


class _OneShot(Generic[T]):
    """The body of a single-value call (an image batch, an embedding batch)."""

    def __init__(
        self,
        call: Callable[[Meter], Awaitable[T]],
        spec: ModelSpec,
        units: Callable[[T], Units],
        price: Callable[[Units, ModelSpec], float | None],
        estimated: Callable[[T], bool],
    ) -> None:
        self._call = call
        self._spec = spec
        self._units = units
        self._price = price
        self._estimated = estimated
        self.value: T | None = None
        self.meter = Meter()

    async def outputs(self) -> AsyncIterator[T]:
        self.value = await self._call(self.meter)
        yield self.value

    async def bill(self, attempt: Attempt, outcome: str) -> Bill:
        if self.value is None:
            # Failed or cancelled: what its vendor calls that ended well consumed (the vendor charged for those).
            spent = self.meter.units
            return Bill(spent, None if spent == Units() else self._price(spent, self._spec), self.meter.estimated)
        units = self._units(self.value)
        return Bill(units, self._price(units, self._spec), self._estimated(self.value))


class AttemptRunner:
    """Runs a request over its candidate models with retries, fallbacks, the silence bound and accounting."""

    def __init__(
        self,
        registry: ProviderRegistry,
        usage: UsageLedger,
        metrics: Metrics,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
        breakers: Breakers | None = None,
    ) -> None:
        self.registry = registry
        self.breakers: Breakers = NullBreakers() if breakers is None else breakers
        self.policy = policy or RetryPolicy()
        self._usage = usage
        self._metrics = metrics
        self._sleep = sleep
        self.clock = clock
        self._now = now
        self._jitter = jitter

    def candidates(self, model: str, *, capabilities: Sequence[str], fallbacks: Sequence[str] = ()) -> Candidates:
        """The models to try for ``model``: 404 when unknown, 422 when it lacks one of ``capabilities``.

        Request ``fallbacks`` must resolve and qualify; catalog fallbacks that are disabled or unfit are skipped."""
        primary = self.registry.resolve(model, capabilities=capabilities)
        found = [primary]
        for name in fallbacks:
            found.append(self.registry.resolve(name, capabilities=capabilities))
        for name in primary.fallbacks:
            try:
                found.append(self.registry.resolve(name, capabilities=capabilities))
            except ServiceError:
                continue
        unique: dict[str, ModelSpec] = {}
        for spec in found:
            unique.setdefault(spec.qualified_id, spec)  # tried once, at its first position
        return Candidates(capabilities[0], tuple(unique.values()))

    async def call(
        self,
        candidates: Candidates,
        caller: Caller,
        port: PortKey[P],
        invoke: Callable[[P, ModelSpec], Awaitable[T]],
        *,
        units: Callable[[T], Units],
        price: Callable[[Units, ModelSpec], float | None] = cost_usd,
        estimated: Callable[[T], bool] = lambda _value: False,
        stream_id: StreamId | None = None,
    ) -> Served[T]:
        """Run a single-value call (``invoke(provider, model)``) to its result under the runner's rules.

        ``units`` reads what the result consumed, ``estimated`` whether those are the vendor's figures or a guess."""

        def metered(provider: P, spec: ModelSpec, _meter: Meter) -> Awaitable[T]:
            return invoke(provider, spec)

        return await self.call_metered(
            candidates, caller, port, metered, units=units, price=price, estimated=estimated, stream_id=stream_id
        )

    async def call_metered(
        self,
        candidates: Candidates,
        caller: Caller,
        port: PortKey[P],
        invoke: Callable[[P, ModelSpec, Meter], Awaitable[T]],
        *,
        units: Callable[[T], Units],
        price: Callable[[Units, ModelSpec], float | None] = cost_usd,
        estimated: Callable[[T], bool] = lambda _value: False,
        stream_id: StreamId | None = None,
    ) -> Served[T]:
        """``call`` for a call made of several vendor calls: ``invoke(provider, model, meter)`` adds each vendor
        call's units to the attempt's ``meter`` as it ends. An attempt that fails or is cancelled part-way is billed
        the meter's units; one that returns is billed ``units(result)``, as any call."""
        started = self.clock()

        def body(provider: P, spec: ModelSpec) -> _OneShot[T]:
            return _OneShot(lambda meter: invoke(provider, spec, meter), spec, units, price, estimated)

        result: Output[T] | None = None
        async for step in self.run(candidates, caller, port, body, stream_id=stream_id):
            if isinstance(step, Output):
                result = step
            else:
                assert result is not None
                attempt = step.attempt
                return Served(
                    result.value,
                    attempt.spec,
                    attempt.primary,
                    attempt.retries_total,
                    round((self.clock() - started) * 1000, 3),
                    step.bill.units,
                    step.bill.cost_usd,
                )
        raise AssertionError("the attempt runner ended without a result")  # pragma: no cover

    async def run(
        self,
        candidates: Candidates,
        caller: Caller,
        port: PortKey[P],
        start: Callable[[P, ModelSpec], AttemptBody[E]],
        *,
        stream_id: StreamId | None = None,
        silence_s: float | None = None,
    ) -> AsyncGenerator[Output[E] | Finished, None]:
        """Yield the serving attempt's outputs, then ``Finished``; raise the error that ended the run. ``silence_s``
        replaces the policy's ``idle_timeout_s`` as the silence bound (a body that makes one non-streamed call)."""
        deadline = self.clock() + self.policy.deadline_s
        last_error: ServiceError | None = None
        refused: list[Admission] = []
        retries_total = 0
        for position, spec in enumerate(candidates.models):
            provider = self._provider(spec, port)
            ticket = await self.breakers.admit(spec)
            if not ticket.admitted:
                refused.append(ticket)
                continue
            if position:
                self._metrics.increment(
                    "provider_fallbacks_total", from_model=candidates.primary.qualified_id, to_model=spec.qualified_id
                )
            retry = 0
            while True:
                attempt = Attempt(spec, candidates.primary, self.clock(), retry, retries_total)
                body = start(provider, spec)
                outcome = "cancelled"
                verdict = Verdict.NEUTRAL  # cancelled, or a bug of ours: nothing about the vendor's health
                try:
                    # aclosing: a consumer that stops early must close the vendor stream now, not at collection.
                    async with aclosing(self._outputs(body, spec, silence_s)) as outputs:
                        async for output in outputs:
                            if attempt.first_output_at is None:
                                attempt.first_output_at = self.clock()
                            yield Output(attempt, output)
                    outcome = "done"
                    verdict = Verdict.SUCCESS
                except ServiceError as exc:
                    outcome = exc.code
                    verdict = verdict_of(exc)
                    self._metrics.increment("provider_errors_total", provider=spec.provider, type=exc.code)
                    if attempt.committed:
                        raise  # output went out: end with this error, never repeat it
                    last_error = exc
                except Exception:
                    outcome = "internal_error"
                    raise
                finally:
                    bill = await self._account(body, attempt, outcome, caller, candidates.capability, stream_id)
                    closed = await self.breakers.record(ticket, verdict, self.clock() - attempt.started)
                if outcome == "done":
                    yield Finished(attempt, bill)
                    return
                assert last_error is not None
                delay = self._retry_delay(last_error, retry, deadline)
                if delay is None or not closed:
                    break
                retry += 1
                retries_total += 1
                self._metrics.increment("provider_retries_total", provider=spec.provider)
                await self._sleep(delay)
        if last_error is None:
            raise all_refused(refused)
        last_error.context.setdefault("models_tried", [s.qualified_id for s in candidates.models])
        raise last_error

    def _provider(self, spec: ModelSpec, port: PortKey[P]) -> P:
        provider = self.registry.provider(spec, port)
        if provider is None:
            raise CapabilityError(
                spec.qualified_id,
                port.capability,
                f"provider {spec.provider!r} does not serve {port.capability!r} on this server",
            )
        return provider

    async def _outputs(self, body: AttemptBody[E], spec: ModelSpec, silence_s: float | None) -> AsyncGenerator[E, None]:
        """The body's outputs under the silence bound; the vendor stream is closed however the attempt ends."""
        source = body.outputs()
        silence = SilenceBound(spec.provider, self.policy.idle_timeout_s if silence_s is None else silence_s)
        try:
            while True:
                try:
                    output = await silence.next(source)
                except StopAsyncIteration:
                    return
                yield output
        finally:
            silence.close()
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

    def _retry_delay(self, error: ServiceError, retry: int, deadline: float) -> float | None:
        if not error.retryable or retry >= self.policy.max_retries:
            return None
        delay = self.policy.backoff(retry + 1, error, self._jitter())
        if self.clock() + delay > deadline:
            return None
        return delay

    async def _account(
        self,
        body: AttemptBody[object],
        attempt: Attempt,
        outcome: str,
        caller: Caller,
        capability: str,
        stream_id: StreamId | None,
    ) -> Bill:
        """Bill the attempt, record its metrics and queue its usage record (a ledger failure never fails the call)."""
        spec = attempt.spec
        latency_s = self.clock() - attempt.started
        bill = await body.bill(attempt, outcome)
        units = bill.units
        ttft = attempt.ttft_ms()
        labels = {"provider": spec.provider, "model": spec.qualified_id}
        self._metrics.increment("provider_requests_total", 1.0, outcome=outcome, **labels)
        if outcome == "done":
            self._metrics.observe("provider_latency_seconds", latency_s, **labels)
        if ttft is not None:
            self._metrics.observe("provider_ttft_seconds", ttft / 1000, **labels)
        for kind, name in _TOKEN_KINDS:
            if count := getattr(units, name):
                self._metrics.increment("tokens_total", float(count), kind=kind, **labels)
        for name in _OTHER_UNITS:
            if amount := getattr(units, name):
                self._metrics.increment("usage_units_total", float(amount), unit=name, **labels)
        if bill.cost_usd:
            self._metrics.increment("cost_usd_total", bill.cost_usd, **labels)
        record = UsageRecord(
            request_id=caller.request_id,
            customer_id=caller.customer_id,
            capability=capability,
            provider=spec.provider,
            model=spec.qualified_id,
            outcome=outcome,
            created_at=self._now(),
            stream_id=stream_id,
            input_tokens=units.input_tokens,
            output_tokens=units.output_tokens,
            cached_tokens=units.cached_tokens,
            reasoning_tokens=units.reasoning_tokens,
            images=units.images,
            characters=units.characters,
            audio_seconds=units.audio_seconds,
            video_seconds=units.video_seconds,
            cost_usd=bill.cost_usd or 0.0,
            latency_ms=round(latency_s * 1000, 3),
            ttft_ms=None if ttft is None else round(ttft, 3),
            retries=attempt.retry,
            fallback_used=attempt.fallback_used,
            estimated=bill.estimated,
        )
        try:
            await self._usage.record(record)
        except ServiceError:
            self._metrics.increment("ledger_flush_failures_total")
        return bill
