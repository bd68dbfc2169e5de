"""CircuitBreakers (services/breakers.py): one log line and one counted transition per change, the state gauge,
and a store that fails never takes calls down with it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

import pytest

from adapters.memory.breakers import InMemoryBreakerStore
from domain.catalog import ModelSpec
from domain.errors import ServiceUnavailableError
from domain.health import Admission, BreakerPolicy, BreakerRecord, BreakerState, Transition, Verdict
from services.breakers import CircuitBreakers, NullBreakers
from tests.fakes.clock import FakeClock
from tests.fakes.metrics import RecordingMetrics

POLICY: Final = BreakerPolicy(failure_threshold=2, min_volume=100, open_ms=5_000)
SPEC: Final = ModelSpec(id="one", provider="alpha", capabilities=frozenset({"text"}))
LABELS: Final = (("model", "alpha/one"), ("provider", "alpha"))


class BrokenStore:
    """A store whose backend is down (Redis unreachable)."""

    async def admit(self, model: str, provider: str, policy: BreakerPolicy, now_ms: int) -> Admission:
        raise ServiceUnavailableError("redis did not answer (breaker_admit)")

    async def record(
        self, model: str, policy: BreakerPolicy, now_ms: int, verdict: Verdict, *, probe: bool, latency_ms: float
    ) -> tuple[BreakerRecord, Transition | None]:
        raise ServiceUnavailableError("redis did not answer (breaker_record)")

    async def records(self, models: Sequence[str]) -> dict[str, BreakerRecord]:
        raise ServiceUnavailableError("redis did not answer (breaker_records)")


def _breakers() -> tuple[CircuitBreakers, RecordingMetrics, FakeClock]:
    metrics, clock = RecordingMetrics(), FakeClock()
    return CircuitBreakers(InMemoryBreakerStore(), POLICY, metrics, wall=clock), metrics, clock


async def _fail_twice(breakers: CircuitBreakers) -> None:
    for _ in range(2):
        ticket = await breakers.admit(SPEC)
        await breakers.record(ticket, Verdict.FAILURE, 0.1)


async def test_each_transition_is_logged_once_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """Opening logs a warning with model, states and reason; the counter is labelled with the state entered."""
    breakers, metrics, _clock = _breakers()
    with caplog.at_level(logging.INFO, logger="switchyard.breakers"):
        await _fail_twice(breakers)
    (line,) = [r for r in caplog.records if r.getMessage() == "breaker_state_changed"]
    assert line.levelno == logging.WARNING
    fields = {k: getattr(line, k) for k in ("model", "provider", "from_state", "to_state", "reason")}
    assert fields == {
        "model": "alpha/one",
        "provider": "alpha",
        "from_state": "closed",
        "to_state": "open",
        "reason": "consecutive_failures",
    }
    assert line.consecutive_failures == 2  # type: ignore[attr-defined]
    assert metrics.counters[("breaker_transitions_total", (*LABELS, ("to", "open")))] == 1
    assert metrics.total("breaker_transitions_total") == 1


async def test_a_refused_attempt_is_counted_and_logged_with_its_wait(caplog: pytest.LogCaptureFixture) -> None:
    """A skip: ``breaker_skips_total`` and a ``model_skipped`` line saying how long until the model is tried."""
    breakers, metrics, clock = _breakers()
    await _fail_twice(breakers)
    clock.advance(1.0)
    with caplog.at_level(logging.INFO, logger="switchyard.breakers"):
        ticket = await breakers.admit(SPEC)
    assert (ticket.admitted, ticket.state, ticket.retry_after_ms) == (False, BreakerState.OPEN, 4_000)
    assert metrics.counters[("breaker_skips_total", LABELS)] == 1
    (line,) = [r for r in caplog.records if r.getMessage() == "model_skipped"]
    assert (line.model, line.state, line.retry_after_s) == ("alpha/one", "open", 4.0)  # type: ignore[attr-defined]


async def test_the_gauge_follows_the_state_this_process_saw() -> None:
    """0 when first seen closed, 2 once open, 1 while probing, back to 0 when the probe succeeds."""
    breakers, metrics, clock = _breakers()
    await breakers.admit(SPEC)
    assert ("breaker_state", LABELS) in metrics.gauges
    assert metrics.gauges[("breaker_state", LABELS)] == 0
    await _fail_twice(breakers)
    assert metrics.gauges[("breaker_state", LABELS)] == 2
    clock.advance(5.0)
    probe = await breakers.admit(SPEC)
    assert probe.probe
    assert metrics.gauges[("breaker_state", LABELS)] == 1
    assert await breakers.record(probe, Verdict.SUCCESS, 0.02) is True
    assert metrics.gauges[("breaker_state", LABELS)] == 0


async def test_record_says_whether_the_model_may_be_tried_again() -> None:
    """True while closed; False once the outcome opened it; neutral outcomes of plain attempts never ask the store."""
    breakers, _metrics, _clock = _breakers()
    ticket = await breakers.admit(SPEC)
    assert await breakers.record(ticket, Verdict.FAILURE, 0.1) is True
    assert await breakers.record(ticket, Verdict.FAILURE, 0.1) is False
    broken = CircuitBreakers(BrokenStore(), POLICY, RecordingMetrics())
    assert await broken.record(ticket, Verdict.NEUTRAL, 0.1) is True


async def test_a_failing_store_admits_every_call_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    """Redis down: breakers fail open (admit, record True) and log ``breaker_store_failed``."""
    breakers = CircuitBreakers(BrokenStore(), POLICY, RecordingMetrics())
    with caplog.at_level(logging.WARNING, logger="switchyard.breakers"):
        ticket = await breakers.admit(SPEC)
        assert await breakers.record(ticket, Verdict.FAILURE, 0.1) is True
    assert (ticket.admitted, ticket.model, ticket.provider) == (True, "alpha/one", "alpha")
    ops = [r.operation for r in caplog.records if r.getMessage() == "breaker_store_failed"]  # type: ignore[attr-defined]
    assert ops == ["admit", "record"]


async def test_views_report_every_model_even_never_seen_ones() -> None:
    """A model without a record is closed with no data; a recorded one shows its counts."""
    breakers, _metrics, _clock = _breakers()
    other = ModelSpec(id="two", provider="beta", capabilities=frozenset({"text"}))
    await _fail_twice(breakers)
    views = await breakers.views([SPEC, other])
    assert (views["alpha/one"].state, views["alpha/one"].failures) == (BreakerState.OPEN, 2)
    assert (views["beta/two"].state, views["beta/two"].calls) == (BreakerState.CLOSED, 0)


async def test_null_breakers_admit_everything_and_report_closed() -> None:
    """Breakers off: every ticket admitted, every record fine, every view closed, ``enabled`` false."""
    null = NullBreakers()
    ticket = await null.admit(SPEC)
    assert (ticket.admitted, ticket.probe, ticket.model) == (True, False, "alpha/one")
    assert await null.record(ticket, Verdict.FAILURE, 1.0) is True
    assert (await null.views([SPEC]))["alpha/one"].state is BreakerState.CLOSED
    assert (null.enabled, CircuitBreakers(InMemoryBreakerStore(), POLICY, RecordingMetrics()).enabled) == (False, True)
