"""The circuit breaker as a pure state machine (domain/health.py): when it opens, how it probes, what counts."""

from __future__ import annotations

from typing import Final

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import (
    AuthenticationError,
    CapabilityError,
    ContentPolicyError,
    NotFoundError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    RequestValidationError,
    ServiceError,
    ValidationError,
)
from domain.health import (
    LATENCY_SAMPLES,
    Admission,
    BreakerPolicy,
    BreakerRecord,
    BreakerState,
    Bucket,
    Verdict,
    admit,
    all_refused,
    record,
    verdict_of,
    view,
)

POLICY: Final = BreakerPolicy(
    failure_threshold=3, error_rate_threshold=0.5, window_ms=10_000, min_volume=6, open_ms=5_000, half_open_probes=2
)
M: Final = "alpha/one"
T0: Final = 1_000_000

S, F, N = Verdict.SUCCESS, Verdict.FAILURE, Verdict.NEUTRAL


def _feed(verdicts: list[Verdict], *, start: BreakerRecord | None = None, at: int = T0) -> BreakerRecord:
    current = start or BreakerRecord()
    for verdict in verdicts:
        current, _ = record(current, POLICY, at, verdict, probe=False, latency_ms=10.0)
    return current


def _opened(at: int = T0) -> BreakerRecord:
    current = _feed([F, F, F], at=at)
    assert current.state is BreakerState.OPEN
    return current


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (ProviderError("alpha", "HTTP 500", retryable=True), F),
        (ProviderError("alpha", "rejected our credentials (HTTP 401)"), F),
        (ProviderTimeoutError("alpha"), F),
        (RateLimitError("slow down", retry_after=1), F),
        (ValidationError("prompt", "too long"), N),
        (ContentPolicyError("alpha", "refused"), N),
        (RequestValidationError([]), N),
        (NotFoundError("no such model"), N),
        (CapabilityError(M, "vision"), N),
        (AuthenticationError("bad token"), N),
        (ProviderUnavailableError("all open", retry_after=1, models=[M]), N),
        (ServiceError("anything else"), N),
    ],
    ids=lambda v: type(v).__name__,
)
def test_only_the_vendor_s_own_troubles_count_as_failures(error: ServiceError, verdict: Verdict) -> None:
    """5xx, timeouts, rate limits and refused credentials count; errors the request caused do not."""
    assert verdict_of(error) is verdict


def test_consecutive_failures_open_the_breaker_and_a_success_resets_the_count() -> None:
    """Threshold - 1 failures, a success, threshold - 1 failures: still closed; one more failure opens it."""
    current = _feed([F, F, S, F, F])
    assert (current.state, current.consecutive_failures) == (BreakerState.CLOSED, 2)
    current, transition = record(current, POLICY, T0 + 7, F, probe=False, latency_ms=0.0)
    assert transition is not None
    assert (transition.before, transition.after, transition.reason) == (
        BreakerState.CLOSED,
        BreakerState.OPEN,
        "consecutive_failures",
    )
    assert (current.state, current.open_until_ms, current.changed_at_ms) == (BreakerState.OPEN, T0 + 5_007, T0 + 7)


def test_request_caused_errors_neither_count_nor_reset() -> None:
    """Neutral outcomes leave the record exactly as it was (and a success in between is what resets)."""
    current = _feed([F, F])
    assert _feed([N, N, N, N], start=current) == current


def test_the_error_rate_opens_the_breaker_only_with_the_minimum_volume() -> None:
    """F S F S F: 60 % failures but 5 calls < 6 stay closed; the sixth call (a failure) opens on the rate."""
    current = _feed([F, S, F, S, F])
    assert current.state is BreakerState.CLOSED
    current, transition = record(current, POLICY, T0, F, probe=False, latency_ms=0.0)
    assert transition is not None
    assert transition.reason == "error_rate"
    assert current.state is BreakerState.OPEN


def test_the_rate_is_reached_at_the_threshold_and_not_below_it() -> None:
    """3 failures in 6 calls is exactly 50 %: open; 3 in 7 is below: closed."""
    assert _feed([S, F, S, F, S, F]).state is BreakerState.OPEN
    assert _feed([S, S, F, S, F, S, F]).state is BreakerState.CLOSED


def test_failures_older_than_the_window_no_longer_count() -> None:
    """The window slides: failures a whole window ago are forgotten, recent ones count."""
    old = _feed([S, F, S, F, S], at=T0)
    later = T0 + POLICY.window_ms
    current, transition = record(old, POLICY, later, F, probe=False, latency_ms=0.0)
    assert transition is None  # 1 call in the window now, below the volume
    assert [b.calls for b in current.buckets] == [1]
    seen = view(current, POLICY, later)
    assert (seen.calls, seen.failures) == (1, 1)


def test_calls_in_one_bucket_share_it_and_the_window_keeps_its_last_buckets() -> None:
    """Same bucket: one entry counted twice; a bucket later: a second entry; the view drops expired buckets."""
    step = POLICY.bucket_ms
    current = _feed([S], at=T0)
    current = _feed([F], start=current, at=T0 + 1)
    current = _feed([S], start=current, at=T0 + step)
    assert [(b.calls, b.failures) for b in current.buckets] == [(2, 1), (1, 0)]
    assert view(current, POLICY, T0 + step * 10).calls == 1  # the first bucket left the window
    assert view(current, POLICY, T0 + step * 9).calls == 3


def test_an_open_breaker_refuses_until_its_cool_down_is_over_then_lets_one_probe_per_slot() -> None:
    """Refused with the time left; after it, half-open: `half_open_probes` probes, then refused until an answer."""
    current = _opened()
    same, refused = admit(current, POLICY, T0 + 4_999, M, "alpha")
    assert same is current
    assert refused == Admission(M, "alpha", False, BreakerState.OPEN, retry_after_ms=1)
    current, first = admit(current, POLICY, T0 + 5_000, M, "alpha")
    assert (first.admitted, first.probe, first.state) == (True, True, BreakerState.HALF_OPEN)
    assert first.transition is not None
    assert (first.transition.after, first.transition.reason) == (BreakerState.HALF_OPEN, "cool_down_elapsed")
    current, second = admit(current, POLICY, T0 + 5_100, M, "alpha")
    assert (second.admitted, second.probe, second.transition) == (True, True, None)
    assert current.probes == 2
    _, third = admit(current, POLICY, T0 + 5_200, M, "alpha")
    assert (third.admitted, third.retry_after_ms) == (False, 4_900)  # the last probe's slot frees at 10 100


def test_a_successful_probe_closes_with_a_fresh_window_and_a_failed_one_reopens() -> None:
    """Probe success: closed, counts cleared; probe failure: open for another cool-down."""
    current, _ = admit(_opened(), POLICY, T0 + 5_000, M, "alpha")
    closed, transition = record(current, POLICY, T0 + 5_050, S, probe=True, latency_ms=50.0)
    assert transition is not None
    assert (transition.after, transition.reason) == (BreakerState.CLOSED, "probe_succeeded")
    assert (closed.state, closed.buckets, closed.consecutive_failures, closed.probes) == (BreakerState.CLOSED, (), 0, 0)
    assert closed.latencies_ms[-1] == 50.0
    reopened, transition = record(current, POLICY, T0 + 5_050, F, probe=True, latency_ms=50.0)
    assert transition is not None
    assert (transition.after, transition.reason) == (BreakerState.OPEN, "probe_failed")
    assert (reopened.state, reopened.open_until_ms, reopened.probes) == (BreakerState.OPEN, T0 + 10_050, 0)


def test_outcomes_of_attempts_admitted_before_the_trip_do_not_move_a_half_open_breaker() -> None:
    """Only probes decide; a neutral probe frees its slot for the next one."""
    current, _ = admit(_opened(), POLICY, T0 + 5_000, M, "alpha")
    late, transition = record(current, POLICY, T0 + 5_001, S, probe=False, latency_ms=1.0)
    assert (late.state, transition) == (BreakerState.HALF_OPEN, None)
    late, transition = record(current, POLICY, T0 + 5_001, F, probe=False, latency_ms=1.0)
    assert (late.state, transition) == (BreakerState.HALF_OPEN, None)
    freed, transition = record(current, POLICY, T0 + 5_001, N, probe=True, latency_ms=1.0)
    assert (freed.probes, transition) == (0, None)
    assert record(freed, POLICY, T0 + 5_002, N, probe=True, latency_ms=1.0)[0] == freed  # never below zero


def test_lost_probes_free_their_slots_after_a_cool_down() -> None:
    """A probe that never answers (its process died) stops blocking once its lease is over."""
    current, _ = admit(_opened(), POLICY, T0 + 5_000, M, "alpha")
    current, _ = admit(current, POLICY, T0 + 5_000, M, "alpha")
    _, refused = admit(current, POLICY, T0 + 9_999, M, "alpha")
    assert not refused.admitted
    current, again = admit(current, POLICY, T0 + 10_000, M, "alpha")
    assert (again.admitted, again.probe, current.probes) == (True, True, 1)


def test_an_open_breaker_shows_half_open_once_its_cool_down_is_over() -> None:
    """The view reads the time: open with the seconds left, then half-open (its next call probes)."""
    current = _opened()
    assert (view(current, POLICY, T0 + 1_000).state, view(current, POLICY, T0 + 1_000).retry_after_ms) == (
        BreakerState.OPEN,
        4_000,
    )
    assert (view(current, POLICY, T0 + 5_000).state, view(current, POLICY, T0 + 5_000).retry_after_ms) == (
        BreakerState.HALF_OPEN,
        0,
    )


def test_the_view_reports_rate_and_latency_percentiles() -> None:
    """Error rate over the window; nearest-rank p50/p95 over the kept latencies; none without data."""
    current = BreakerRecord()
    for ms in (40.0, 10.0, 30.0, 20.0):
        current, _ = record(current, POLICY, T0, S, probe=False, latency_ms=ms)
    current, _ = record(current, POLICY, T0, F, probe=False, latency_ms=999.0)
    seen = view(current, POLICY, T0)
    assert (seen.calls, seen.failures, seen.error_rate) == (5, 1, 0.2)
    assert (seen.latency_ms(0.5), seen.latency_ms(0.95), seen.latency_ms(0.0)) == (20.0, 40.0, 10.0)
    empty = view(BreakerRecord(), POLICY, T0)
    assert (empty.error_rate, empty.latency_ms(0.5), empty.state) == (None, None, BreakerState.CLOSED)


def test_only_the_latest_latencies_are_kept() -> None:
    """A small rolling window: the oldest sample goes when a new one comes."""
    current = BreakerRecord()
    for i in range(LATENCY_SAMPLES + 3):
        current, _ = record(current, POLICY, T0, S, probe=False, latency_ms=float(i))
    assert current.latencies_ms == tuple(float(i) for i in range(3, LATENCY_SAMPLES + 3))


def test_all_refused_names_the_models_and_the_soonest_retry() -> None:
    """The fast error carries every refused model and the shortest wait, in seconds."""
    error = all_refused(
        [
            Admission("a/x", "a", False, BreakerState.OPEN, retry_after_ms=4_500),
            Admission("b/y", "b", False, BreakerState.HALF_OPEN, retry_after_ms=1_250),
        ]
    )
    assert isinstance(error, ProviderUnavailableError)
    assert (error.retry_after, error.models, error.code) == (1.25, ["a/x", "b/y"], "provider_unavailable")
    assert error.context["models"] == ["a/x", "b/y"]
    assert "a/x, b/y" in error.message


def test_the_policy_names_its_unworkable_values() -> None:
    """Zero thresholds, durations or probes and a rate outside (0, 1] are reported by field."""
    assert POLICY.problems() == []
    bad = attrs.evolve(POLICY, failure_threshold=0, window_ms=0, error_rate_threshold=1.5, half_open_probes=0)
    assert bad.problems() == [
        ("failure_threshold", "must be at least 1"),
        ("window_ms", "must be positive"),
        ("half_open_probes", "must be at least 1"),
        ("error_rate_threshold", "must be in (0, 1]"),
    ]
    assert attrs.evolve(POLICY, error_rate_threshold=0.0).problems() == [("error_rate_threshold", "must be in (0, 1]")]
    assert attrs.evolve(POLICY, error_rate_threshold=1.0).problems() == []
    assert BreakerPolicy(window_ms=5).bucket_ms == 1


# --- invariants over random histories ---------------------------------------------------------------------------

_STEP = st.one_of(
    st.tuples(st.just("wait"), st.integers(min_value=0, max_value=6_000)),
    st.tuples(st.just("admit"), st.just(0)),
    st.tuples(st.just("answer"), st.sampled_from([0, 1, 2])),  # 0 success, 1 failure, 2 neutral (of the oldest ticket)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_STEP, max_size=80))
def test_random_histories_keep_the_breaker_s_invariants(steps: list[tuple[str, int]]) -> None:
    """Whatever happens: probes in flight never exceed the policy, an open breaker never admits before its cool-down,
    buckets stay in the window, latencies stay bounded, and only failures ever open the breaker."""
    now = T0
    current = BreakerRecord()
    tickets: list[Admission] = []
    for kind, value in steps:
        if kind == "wait":
            now += value
        elif kind == "admit":
            before = current
            current, ticket = admit(current, POLICY, now, M, "alpha")
            if before.state is BreakerState.OPEN and now < before.open_until_ms:
                assert not ticket.admitted
                assert ticket.retry_after_ms == before.open_until_ms - now
            if ticket.admitted:
                tickets.append(ticket)
            else:
                assert ticket.retry_after_ms > 0
                assert current == before  # a refusal changes nothing
        elif tickets:
            ticket = tickets.pop(0)
            verdict = (S, F, N)[value]
            before = current
            current, transition = record(current, POLICY, now, verdict, probe=ticket.probe, latency_ms=1.0)
            if transition is not None:
                assert transition.before is before.state
                assert transition.after is current.state
                assert (transition.after is BreakerState.OPEN) == (verdict is F)
                assert current.changed_at_ms == now
            if verdict is N and not ticket.probe:
                assert current == before
        assert 0 <= current.probes <= POLICY.half_open_probes
        if current.state is not BreakerState.HALF_OPEN:
            assert current.probes == 0
        assert len(current.latencies_ms) <= LATENCY_SAMPLES
        assert len(current.buckets) <= 10
        assert all(b.failures <= b.calls for b in current.buckets)
        assert [b.index for b in current.buckets] == sorted({b.index for b in current.buckets})
        assert all(isinstance(b, Bucket) for b in current.buckets)
