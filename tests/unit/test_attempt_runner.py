"""AttemptRunner: the one retry/fallback/accounting loop, driven through a one-shot port that is not text.

Chat's own suite (test_chat_service.py) covers the streamed path; here a made-up ``echo`` port shows the runner
works for any modality: retries before output, fallbacks in order, the silence bound, the capability and units in
the usage record, and a vendor that lacks the port.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Final

import pytest

from adapters.memory.breakers import InMemoryBreakerStore
from domain.catalog import ModelSpec
from domain.errors import (
    CapabilityError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    ServiceError,
    ValidationError,
)
from domain.health import BreakerPolicy, BreakerRecord, BreakerState, Transition, Verdict
from domain.metering import Units
from domain.types import CustomerId, StreamId
from ports.providers import PortKey, VendorProviders
from ports.text import TEXT_PORT
from services.attempts import Attempt, AttemptRunner, Bill, Caller, Finished, Meter, Output, RetryPolicy, Served
from services.breakers import CircuitBreakers, NullBreakers
from services.registry import ProviderRegistry
from tests.fakes.clock import FakeClock
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.text import ScriptedTextProvider
from tests.fakes.usage import InMemoryUsageLedger

CALLER: Final = Caller(CustomerId("alice"), "req-7")
NOW: Final = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


class EchoProvider:
    """A one-shot provider of a made-up port: each call plays the next outcome (a value, an exception or a hang)."""

    def __init__(self, name: str, *outcomes: str | BaseException | None) -> None:
        self._name = name
        self._outcomes = list(outcomes) or ["ok"]
        self.calls: list[str] = []
        self.during: Callable[[], None] = lambda: None
        """Runs inside each call (a test moves its clock there)."""

    @property
    def name(self) -> str:
        return self._name

    async def echo(self, text: str, model: ModelSpec) -> str:
        self.calls.append(model.qualified_id)
        self.during()
        outcome = self._outcomes.pop(0) if len(self._outcomes) > 1 else self._outcomes[0]
        if outcome is None:
            await asyncio.Event().wait()  # the vendor never answers
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, str)
        return f"{outcome}:{text}"


ECHO_PORT: Final = PortKey[EchoProvider]("echo")


def spec(model_id: str, provider: str = "alpha", **kwargs: object) -> ModelSpec:
    caps = kwargs.pop("capabilities", frozenset({"echo"}))
    return ModelSpec(id=model_id, provider=provider, capabilities=caps, **kwargs)  # type: ignore[arg-type]


CATALOG: Final = [
    spec("one", fallbacks=("beta/two",), image_price=0.04),
    spec("two", provider="beta", image_price=0.5),
    spec("plain", capabilities=frozenset({"text"})),
    spec("lonely", provider="gamma"),
    spec("chain", fallbacks=("alpha/plain", "beta/two")),
    spec("free"),
]


class Harness:
    def __init__(
        self,
        alpha: Sequence[str | BaseException | None] = ("ok",),
        beta: Sequence[str | BaseException | None] = ("backup",),
        policy: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
    ) -> None:
        self.alpha = EchoProvider("alpha", *alpha)
        self.beta = EchoProvider("beta", *beta)
        vendors = {
            "alpha": VendorProviders("alpha", {ECHO_PORT: self.alpha}),
            "beta": VendorProviders("beta", {ECHO_PORT: self.beta}),
            # gamma is enabled but serves only text: its echo model cannot be served through the echo port
            "gamma": VendorProviders("gamma", {TEXT_PORT: ScriptedTextProvider(name="gamma")}),
        }
        self.clock = FakeClock()
        self.sleeps: list[float] = []
        self.ledger = InMemoryUsageLedger()
        self.metrics = RecordingMetrics()
        self.breakers = (
            None if breaker is None else CircuitBreakers(InMemoryBreakerStore(), breaker, self.metrics, wall=self.clock)
        )

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            self.clock.advance(seconds)

        self.runner = AttemptRunner(
            ProviderRegistry(CATALOG, vendors),
            self.ledger,
            self.metrics,
            policy or RetryPolicy(max_retries=2, deadline_s=30.0, base_delay_s=0.5, max_delay_s=8.0),
            sleep=sleep,
            clock=self.clock,
            now=lambda: NOW,
            jitter=lambda: 1.0,
            breakers=self.breakers,
        )

    async def echo(self, model: str = "alpha/one", *, fallbacks: Sequence[str] = ()) -> tuple[str, dict[str, object]]:
        candidates = self.runner.candidates(model, capabilities=["echo"], fallbacks=fallbacks)

        async def invoke(provider: EchoProvider, model_spec: ModelSpec) -> str:
            return await provider.echo("hi", model_spec)

        served = await self.runner.call(
            candidates, CALLER, ECHO_PORT, invoke, units=lambda value: Units(images=len(value))
        )
        return served.value, {**served.meta(), "cost": served.cost_usd, "units": served.units}


async def test_a_one_shot_call_is_served_accounted_and_priced() -> None:
    h = Harness()
    value, meta = await h.echo()
    assert value == "ok:hi"
    assert meta["model"] == "alpha/one"
    assert meta["fallback_used"] is None
    assert meta["retries"] == 0
    assert meta["units"] == Units(images=5)
    assert meta["cost"] == pytest.approx(0.2)
    (record,) = h.ledger.records
    assert (record.capability, record.outcome, record.images, record.cost_usd) == ("echo", "done", 5, 0.2)
    assert (record.customer_id, record.request_id, record.model) == ("alice", "req-7", "alpha/one")
    labels = (("model", "alpha/one"), ("provider", "alpha"), ("unit", "images"))
    assert h.metrics.counters[("usage_units_total", labels)] == 5.0


async def test_retryable_errors_are_retried_with_backoff_and_retry_after() -> None:
    h = Harness(alpha=[RateLimitError("slow", retry_after=3), ProviderError("alpha", "boom", retryable=True), "ok"])
    value, meta = await h.echo()
    assert value == "ok:hi"
    assert meta["retries"] == 2
    assert h.sleeps == [3.0, 1.0]  # Retry-After, then base*2 with full jitter (jitter=1.0: the ceiling)
    assert [r.outcome for r in h.ledger.records] == ["rate_limited", "provider_error", "done"]
    assert [r.retries for r in h.ledger.records] == [0, 1, 2]


async def test_after_its_retries_a_model_falls_back_to_the_next_in_order() -> None:
    h = Harness(alpha=[ProviderError("alpha", "down", retryable=True)])
    value, meta = await h.echo()
    assert value == "backup:hi"
    assert meta["fallback_used"] == "beta/two"
    assert meta["model"] == "beta/two"
    assert h.alpha.calls == ["alpha/one"] * 3
    assert h.beta.calls == ["beta/two"]
    assert h.ledger.records[-1].fallback_used == "beta/two"
    assert h.metrics.total("provider_fallbacks_total") == 1


async def test_a_final_error_is_raised_with_the_models_tried() -> None:
    h = Harness(alpha=[ProviderError("alpha", "down", retryable=True)], beta=[ValidationError("prompt", "nope")])
    with pytest.raises(ValidationError) as caught:
        await h.echo()
    assert caught.value.context["models_tried"] == ["alpha/one", "beta/two"]
    assert len(h.beta.calls) == 1  # not retryable: tried once


async def test_a_model_listed_twice_is_tried_once() -> None:
    h = Harness(alpha=[ProviderError("alpha", "down")], beta=[ProviderError("beta", "down")])
    with pytest.raises(ServiceError):
        await h.echo(fallbacks=["beta/two", "alpha/one", "beta/two"])
    assert h.alpha.calls == ["alpha/one"]
    assert h.beta.calls == ["beta/two"]


async def test_a_silent_vendor_times_out_as_a_retryable_error() -> None:
    h = Harness(alpha=[None, "late"], policy=RetryPolicy(max_retries=1, idle_timeout_s=0.05, base_delay_s=0.01))
    value, _meta = await h.echo()
    assert value == "late:hi"
    assert [r.outcome for r in h.ledger.records] == ["provider_timeout", "done"]


async def test_a_silent_vendor_with_no_retry_left_raises_provider_timeout() -> None:
    h = Harness(alpha=[None], beta=[None], policy=RetryPolicy(max_retries=0, idle_timeout_s=0.05))
    with pytest.raises(ProviderTimeoutError):
        await h.echo()


async def test_no_retry_past_the_deadline() -> None:
    h = Harness(alpha=[RateLimitError("slow", retry_after=60)], policy=RetryPolicy(max_retries=5, deadline_s=10))
    await h.echo()  # the 60 s wait would pass the deadline: fall back at once instead
    assert h.sleeps == []
    assert h.beta.calls == ["beta/two"]


async def test_a_vendor_without_the_port_is_a_capability_error() -> None:
    h = Harness()
    with pytest.raises(CapabilityError) as caught:
        await h.echo("gamma/lonely")
    assert "does not serve 'echo'" in caught.value.message


def test_a_model_without_the_capability_is_refused_before_any_call() -> None:
    h = Harness()
    with pytest.raises(CapabilityError):
        h.runner.candidates("alpha/plain", capabilities=["echo"])
    assert h.alpha.calls == []


async def test_a_cancelled_call_is_recorded_as_cancelled() -> None:
    h = Harness(alpha=[None])
    task = asyncio.create_task(h.echo())
    for _ in range(20):
        if h.alpha.calls:
            break
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [(r.outcome, r.images) for r in h.ledger.records] == [("cancelled", 0)]


async def test_a_result_whose_units_are_a_guess_is_recorded_as_estimated() -> None:
    h = Harness()
    candidates = h.runner.candidates("alpha/one", capabilities=["echo"])

    async def invoke(provider: EchoProvider, model_spec: ModelSpec) -> str:
        return await provider.echo("hi", model_spec)

    await h.runner.call(
        candidates, CALLER, ECHO_PORT, invoke, units=lambda value: Units(images=1), estimated=lambda value: True
    )
    (record,) = h.ledger.records
    assert record.estimated is True


async def _call(
    h: Harness,
    model: str = "alpha/one",
    *,
    units: Callable[[str], Units] = lambda value: Units(images=1),
    stream_id: str | None = None,
) -> Served[str]:
    candidates = h.runner.candidates(model, capabilities=["echo"])

    async def invoke(provider: EchoProvider, model_spec: ModelSpec) -> str:
        return await provider.echo("hi", model_spec)

    return await h.runner.call(
        candidates, CALLER, ECHO_PORT, invoke, units=units, stream_id=StreamId(stream_id) if stream_id else None
    )


async def test_timings_are_kept_to_the_microsecond_and_the_record_is_dated_and_tied_to_its_stream() -> None:
    h = Harness()
    h.alpha.during = lambda: h.clock.advance(0.0001234567)  # 0.1234567 ms inside the vendor call
    served = await _call(h, stream_id="st_abc")
    assert served.latency_ms == 0.123
    (record,) = h.ledger.records
    assert (record.latency_ms, record.ttft_ms) == (0.123, 0.123)
    assert (record.created_at, record.stream_id) == (NOW, "st_abc")


async def test_every_unit_reaches_the_record_and_token_metrics_carry_their_labels() -> None:
    h = Harness()
    every = Units(input_tokens=7, output_tokens=5, images=2, characters=11, audio_seconds=1.5, video_seconds=4.0)
    await _call(h, units=lambda value: every)
    (record,) = h.ledger.records
    got = (record.input_tokens, record.output_tokens, record.images, record.characters)
    assert got == (7, 5, 2, 11)
    assert (record.audio_seconds, record.video_seconds) == (1.5, 4.0)
    labels = (("kind", "input"), ("model", "alpha/one"), ("provider", "alpha"))
    assert h.metrics.counters[("tokens_total", labels)] == 7.0


async def test_an_unpriced_model_costs_nothing_in_the_record() -> None:
    h = Harness()
    served = await _call(h, "alpha/free")
    assert served.cost_usd is None
    assert h.ledger.records[0].cost_usd == 0.0


async def test_fallback_and_retry_metrics_name_the_models_and_provider() -> None:
    h = Harness(alpha=[ProviderError("alpha", "down", retryable=True)])
    await _call(h)
    fallback = (("from_model", "alpha/one"), ("to_model", "beta/two"))
    assert h.metrics.counters[("provider_fallbacks_total", fallback)] == 1
    assert h.metrics.counters[("provider_retries_total", (("provider", "alpha"),))] == 2


async def test_a_zero_retry_after_waits_nothing_and_a_wait_ending_at_the_deadline_is_taken() -> None:
    h = Harness(alpha=[RateLimitError("now", retry_after=0), RateLimitError("later", retry_after=10), "ok"])
    h.runner.policy = RetryPolicy(max_retries=5, deadline_s=10.0)
    value = (await _call(h)).value
    assert value == "ok:hi"
    assert h.sleeps == [0.0, 10.0]  # the second wait ends exactly at the deadline: still within it


async def test_an_unexpected_exception_is_recorded_as_internal_error_and_raised() -> None:
    h = Harness(alpha=[RuntimeError("bug")])
    with pytest.raises(RuntimeError):
        await _call(h)
    assert [r.outcome for r in h.ledger.records] == ["internal_error"]
    assert h.beta.calls == []  # a bug is not a vendor failure: no fallback


async def test_a_silent_vendor_s_timeout_names_it() -> None:
    h = Harness(alpha=[None], beta=[None], policy=RetryPolicy(max_retries=0, idle_timeout_s=0.05))
    with pytest.raises(ProviderTimeoutError) as caught:
        await _call(h)
    assert caught.value.provider == "beta"
    assert [r.provider for r in h.ledger.records] == ["alpha", "beta"]


async def test_the_capability_error_for_a_missing_port_names_model_and_capability() -> None:
    h = Harness()
    with pytest.raises(CapabilityError) as caught:
        await _call(h, "gamma/lonely")
    assert (caught.value.model, caught.value.capability) == ("gamma/lonely", "echo")


def test_request_fallbacks_must_qualify_and_unfit_catalog_fallbacks_are_skipped() -> None:
    h = Harness()
    with pytest.raises(CapabilityError):
        h.runner.candidates("alpha/one", capabilities=["echo"], fallbacks=["alpha/plain"])
    chain = h.runner.candidates("alpha/chain", capabilities=["echo"])
    assert [m.qualified_id for m in chain.models] == ["alpha/chain", "beta/two"]  # alpha/plain lacks echo
    assert chain.capability == "echo"


class _CountingBody:
    """A streamed body: three outputs, remembering whether it was closed and how it was billed."""

    def __init__(self) -> None:
        self.closed = False
        self.billed: list[str] = []

    async def outputs(self) -> AsyncIterator[str]:
        try:
            for item in ("a", "b", "c"):
                yield item
        finally:
            self.closed = True

    async def bill(self, attempt: Attempt, outcome: str) -> Bill:
        self.billed.append(outcome)
        return Bill(Units(characters=1), None)


async def test_a_run_closed_early_closes_the_vendor_stream_at_once_and_bills_it_cancelled() -> None:
    h = Harness()
    body = _CountingBody()
    candidates = h.runner.candidates("alpha/one", capabilities=["echo"])
    async with aclosing(h.runner.run(candidates, CALLER, ECHO_PORT, lambda provider, model: body)) as steps:
        async for step in steps:
            assert isinstance(step, Output)
            assert step.value == "a"
            break
    assert body.closed  # closed by the runner, not left to the garbage collector
    assert body.billed == ["cancelled"]
    assert [r.outcome for r in h.ledger.records] == ["cancelled"]


async def test_a_finished_streamed_run_bills_done() -> None:
    h = Harness()
    body = _CountingBody()
    candidates = h.runner.candidates("alpha/one", capabilities=["echo"])
    steps = [step async for step in h.runner.run(candidates, CALLER, ECHO_PORT, lambda provider, model: body)]
    assert [step.value for step in steps if isinstance(step, Output)] == ["a", "b", "c"]
    assert isinstance(steps[-1], Finished)
    assert body.billed == ["done"]


# --- circuit breakers (issue 18): open models are skipped, outcomes go back to their breaker ----------------------

BREAKER: Final = BreakerPolicy(failure_threshold=2, min_volume=100, open_ms=10_000, half_open_probes=1)
DOWN: Final = ProviderError("alpha", "HTTP 500", retryable=True)


async def _state(h: Harness, model: str = "alpha/one") -> BreakerState:
    assert h.breakers is not None
    views = await h.breakers.views([h.runner.registry.resolve(model)])
    return views[model].state


async def test_an_open_model_is_skipped_for_its_fallback_and_probed_after_the_cool_down() -> None:
    """Two failures open alpha (no third try: its breaker left closed), the next call goes straight to beta, and
    after the cool-down one probe on alpha that succeeds closes it again."""
    h = Harness(alpha=[DOWN, DOWN, "ok"], breaker=BREAKER)
    served = await _call(h)
    assert (served.value, served.model.qualified_id) == ("backup:hi", "beta/two")
    assert h.alpha.calls == ["alpha/one"] * 2
    assert await _state(h) is BreakerState.OPEN

    served = await _call(h)
    assert served.model.qualified_id == "beta/two"
    assert h.alpha.calls == ["alpha/one"] * 2  # skipped: not called at all
    assert [r.model for r in h.ledger.records] == ["alpha/one", "alpha/one", "beta/two", "beta/two"]
    labels = (("model", "alpha/one"), ("provider", "alpha"))
    assert h.metrics.counters[("breaker_skips_total", labels)] == 1
    fallback = (("from_model", "alpha/one"), ("to_model", "beta/two"))
    assert h.metrics.counters[("provider_fallbacks_total", fallback)] == 2
    assert h.metrics.gauges[("breaker_state", labels)] == 2

    h.clock.advance(10.0)
    served = await _call(h)
    assert (served.value, served.model.qualified_id) == ("ok:hi", "alpha/one")
    assert await _state(h) is BreakerState.CLOSED
    assert h.metrics.gauges[("breaker_state", labels)] == 0
    moves = {dict(key)["to"]: n for (name, key), n in h.metrics.counters.items() if name == "breaker_transitions_total"}
    assert moves == {"open": 1, "half_open": 1, "closed": 1}


async def test_a_failed_probe_reopens_the_breaker_and_falls_back_without_a_retry() -> None:
    """The probe's failure ends alpha's turn at once: beta serves, alpha is open for another cool-down."""
    h = Harness(alpha=[DOWN], breaker=BREAKER)
    await _call(h)
    h.clock.advance(10.0)
    served = await _call(h)
    assert served.model.qualified_id == "beta/two"
    assert h.alpha.calls == ["alpha/one"] * 3  # two to open it, one probe
    assert h.sleeps == [0.5]  # the retry between the two first failures; none after the probe
    assert await _state(h) is BreakerState.OPEN


async def test_when_every_candidate_is_open_the_call_fails_at_once_with_the_wait() -> None:
    """No vendor is called and no usage is recorded; the error names the models and the soonest half-open."""
    h = Harness(alpha=[DOWN], beta=[ProviderError("beta", "HTTP 503", retryable=True)], breaker=BREAKER)
    with pytest.raises(ProviderError):
        await _call(h)
    h.clock.advance(4.0)
    calls, records = len(h.alpha.calls) + len(h.beta.calls), len(h.ledger.records)
    with pytest.raises(ProviderUnavailableError) as caught:
        await _call(h)
    assert len(h.alpha.calls) + len(h.beta.calls) == calls
    assert len(h.ledger.records) == records
    assert caught.value.models == ["alpha/one", "beta/two"]
    # alpha opened first, at its second failure 0.5 s in (beta 0.5 s later): 10.5 - 4 seconds to its half-open
    assert caught.value.retry_after == 5.5


async def test_errors_the_request_caused_never_open_a_breaker() -> None:
    """Validation errors, however many, leave alpha closed."""
    h = Harness(alpha=[ValidationError("prompt", "too long")], breaker=BREAKER)
    for _ in range(4):
        await _call(h)
    assert h.alpha.calls == ["alpha/one"] * 4
    assert await _state(h) is BreakerState.CLOSED


async def test_a_cancelled_probe_frees_its_slot_without_closing_the_breaker() -> None:
    """A probe whose caller went away says nothing: the breaker stays half-open and the next call probes."""
    h = Harness(alpha=[DOWN, DOWN, None, "ok"], breaker=BREAKER)
    await _call(h)
    h.clock.advance(10.0)
    task = asyncio.create_task(_call(h))
    for _ in range(20):
        if len(h.alpha.calls) == 3:
            break
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _state(h) is BreakerState.HALF_OPEN
    served = await _call(h)
    assert served.model.qualified_id == "alpha/one"
    assert await _state(h) is BreakerState.CLOSED


async def test_the_breaker_keeps_the_latency_of_successful_attempts() -> None:
    """Each success's duration on the runner's clock reaches the health report."""
    h = Harness(breaker=BREAKER)
    h.alpha.during = lambda: h.clock.advance(0.25)
    await _call(h)
    assert h.breakers is not None
    seen = (await h.breakers.views([h.runner.registry.resolve("alpha/one")]))["alpha/one"]
    assert (seen.latencies_ms, seen.calls, seen.failures) == ((250.0,), 1, 0)


def test_without_breakers_the_runner_uses_the_null_one() -> None:
    """The default admits everything (the runner's behaviour without breakers is the one pinned above)."""
    assert isinstance(Harness().runner.breakers, NullBreakers)


class _CountingStore(InMemoryBreakerStore):
    """An in-process breaker store that counts the outcomes it is asked to record (each a Redis call in production)."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded = 0

    async def record(
        self, model: str, policy: BreakerPolicy, now_ms: int, verdict: Verdict, *, probe: bool, latency_ms: float
    ) -> tuple[BreakerRecord, Transition | None]:
        self.recorded += 1
        return await super().record(model, policy, now_ms, verdict, probe=probe, latency_ms=latency_ms)


async def test_outcomes_that_say_nothing_about_the_vendor_cost_no_store_call() -> None:
    """A cancelled attempt or a bug of ours is not sent to the breaker store; a real outcome is."""
    h = Harness(alpha=[None, RuntimeError("bug"), "ok"])
    store = _CountingStore()
    h.runner.breakers = CircuitBreakers(store, BREAKER, h.metrics, wall=h.clock)
    task = asyncio.create_task(_call(h))
    for _ in range(20):
        if h.alpha.calls:
            break
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(RuntimeError):
        await _call(h)
    assert store.recorded == 0
    await _call(h)
    assert store.recorded == 1


async def _metered(
    h: Harness, parts: Sequence[str] = ("a", "b"), *, model: str = "alpha/one", estimated: bool = False
) -> Served[str]:
    """A call made of one vendor call per part, each adding one image to the attempt's meter as it ends."""
    candidates = h.runner.candidates(model, capabilities=["echo"])

    async def invoke(provider: EchoProvider, model_spec: ModelSpec, meter: Meter) -> str:
        answers = []
        for part in parts:
            answers.append(await provider.echo(part, model_spec))
            meter.add(Units(images=1), estimated=estimated)
        return "+".join(answers)

    return await h.runner.call_metered(
        candidates, CALLER, ECHO_PORT, invoke, units=lambda value: Units(images=len(parts))
    )


async def test_a_metered_attempt_that_fails_part_way_is_billed_its_finished_vendor_calls() -> None:
    """The second vendor call of the first attempt fails: that attempt's record bills the first call's image (and
    its cost, metrics included); the retry is billed whole."""
    h = Harness(alpha=["ok", ProviderError("alpha", "down", retryable=True), "ok"])
    served = await _metered(h)
    assert served.value == "ok:a+ok:b"
    got = [(r.outcome, r.images, round(r.cost_usd, 9), r.estimated) for r in h.ledger.records]
    assert got == [("provider_error", 1, 0.04, False), ("done", 2, 0.08, False)]
    labels = (("model", "alpha/one"), ("provider", "alpha"), ("unit", "images"))
    assert h.metrics.counters[("usage_units_total", labels)] == 3.0
    assert h.metrics.total("cost_usd_total") == pytest.approx(0.12)


async def test_a_metered_attempt_that_fails_for_good_is_still_billed_and_says_when_that_is_a_guess() -> None:
    """No retry or fallback left: the request fails, yet the vendor calls that ended are billed, marked estimated
    if guessed."""
    h = Harness(alpha=["ok", ProviderError("alpha", "down")], policy=RetryPolicy(max_retries=0))
    with pytest.raises(ProviderError):
        await _metered(h, ("a", "b", "c"), model="alpha/free", estimated=True)
    assert [(r.outcome, r.images, r.estimated) for r in h.ledger.records] == [("provider_error", 1, True)]


async def test_a_metered_attempt_cancelled_part_way_is_billed_its_finished_vendor_calls() -> None:
    """The caller gives up while the second vendor call hangs: the record is ``cancelled`` with the first's image."""
    h = Harness(alpha=["ok", None])
    task = asyncio.create_task(_metered(h))
    for _ in range(20):
        if len(h.alpha.calls) == 2:
            break
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [(r.outcome, r.images, round(r.cost_usd, 9)) for r in h.ledger.records] == [("cancelled", 1, 0.04)]
