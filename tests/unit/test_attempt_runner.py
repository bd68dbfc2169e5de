"""AttemptRunner: the one retry/fallback/accounting loop, driven through a one-shot port that is not text.

Chat's own suite (test_chat_service.py) covers the streamed path; here a made-up ``echo`` port shows the runner
works for any modality: retries before output, fallbacks in order, the silence bound, the capability and units in
the usage record, and a vendor that lacks the port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

import pytest

from domain.catalog import ModelSpec
from domain.errors import (
    CapabilityError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServiceError,
    ValidationError,
)
from domain.metering import Units
from domain.types import CustomerId
from ports.providers import PortKey, VendorProviders
from ports.text import TEXT_PORT
from services.attempts import AttemptRunner, Caller, RetryPolicy
from services.registry import ProviderRegistry
from tests.fakes.clock import FakeClock
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.text import ScriptedTextProvider
from tests.fakes.usage import InMemoryUsageLedger

CALLER: Final = Caller(CustomerId("alice"), "req-7")


class EchoProvider:
    """A one-shot provider of a made-up port: each call plays the next outcome (a value, an exception or a hang)."""

    def __init__(self, name: str, *outcomes: str | BaseException | None) -> None:
        self._name = name
        self._outcomes = list(outcomes) or ["ok"]
        self.calls: list[str] = []

    @property
    def name(self) -> str:
        return self._name

    async def echo(self, text: str, model: ModelSpec) -> str:
        self.calls.append(model.qualified_id)
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
]


class Harness:
    def __init__(
        self,
        alpha: Sequence[str | BaseException | None] = ("ok",),
        beta: Sequence[str | BaseException | None] = ("backup",),
        policy: RetryPolicy | None = None,
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
            jitter=lambda: 1.0,
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
