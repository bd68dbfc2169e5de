"""Domain: vendor health, the circuit breaker of one model as a pure state machine.

A breaker is ``closed`` (calls go through), ``open`` (the model is skipped for a cool-down) or ``half_open`` (a few
probe calls are let through; the first probe that succeeds closes it, one that fails opens it again). It opens after
``failure_threshold`` consecutive failures, or when the error rate over the last ``window_ms`` reaches
``error_rate_threshold`` with at least ``min_volume`` calls in that window. Only the vendor's own troubles count as
failures (``verdict_of``): a request the vendor refused on its merits says nothing about the vendor's health.

Every time is an integer of milliseconds on the wall clock, and every rule is integer arithmetic or one IEEE
division, so the Redis adapter's Lua twin of ``admit`` and ``record`` (adapters/redis/breakers.lua) computes exactly
the same records; a differential test holds the two together. These functions never read a clock and never log:
the service passes ``now`` in and reports the transitions they return.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum
from typing import Final

import attrs
from attrs import frozen

from domain.errors import ProviderError, ProviderUnavailableError, RateLimitError, ServiceError

__all__ = [
    "LATENCY_SAMPLES",
    "WINDOW_BUCKETS",
    "Admission",
    "BreakerPolicy",
    "BreakerRecord",
    "BreakerState",
    "BreakerView",
    "Bucket",
    "Transition",
    "Verdict",
    "admit",
    "all_refused",
    "record",
    "verdict_of",
    "view",
]

WINDOW_BUCKETS: Final = 10
"""The error-rate window is kept as this many buckets of ``window_ms / WINDOW_BUCKETS`` each."""
LATENCY_SAMPLES: Final = 32
"""How many recent successful latencies a record keeps (for the health report)."""


class BreakerState(StrEnum):
    """Where a breaker is; the gauge value (``level``) orders them by severity."""

    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def level(self) -> int:
        """0 closed, 1 half-open, 2 open (the ``breaker_state`` gauge)."""
        return _LEVELS[self]


_LEVELS: Final = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class Verdict(StrEnum):
    """What one attempt says about the vendor's health."""

    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"
    """Says nothing: the request's own fault (a 4xx), a caller that went away, a bug of ours."""


def verdict_of(error: ServiceError) -> Verdict:
    """A failure when the vendor failed us (5xx, timeouts, unreachable, rate limits, refused credentials);
    neutral for everything the request caused (validation, content policy, not found, capability ...)."""
    if isinstance(error, ProviderError | RateLimitError):
        return Verdict.FAILURE
    return Verdict.NEUTRAL


@frozen
class BreakerPolicy:
    """When a breaker opens and how it recovers (the ``breaker`` settings, in milliseconds)."""

    failure_threshold: int = 5
    error_rate_threshold: float = 0.5
    window_ms: int = 60_000
    min_volume: int = 20
    open_ms: int = 30_000
    half_open_probes: int = 1

    @property
    def bucket_ms(self) -> int:
        return max(1, self.window_ms // WINDOW_BUCKETS)

    def problems(self) -> list[tuple[str, str]]:
        """(field, reason) for each value that cannot work; empty when the policy is sound."""
        found = []
        for name in ("failure_threshold", "window_ms", "min_volume", "open_ms", "half_open_probes"):
            if getattr(self, name) < 1:
                found.append((name, "must be positive" if name.endswith("_ms") else "must be at least 1"))
        if not 0.0 < self.error_rate_threshold <= 1.0:
            found.append(("error_rate_threshold", "must be in (0, 1]"))
        return found


@frozen
class Bucket:
    """Calls and failures that ended in one slice of the window (``index`` = end time // bucket_ms)."""

    index: int
    calls: int
    failures: int


@frozen
class BreakerRecord:
    """One model's breaker as stored (in process or in Redis)."""

    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    open_until_ms: int = 0
    """While open: the end of the cool-down."""
    probes: int = 0
    """While half-open: probes let through and not yet answered."""
    probe_until_ms: int = 0
    """While half-open: when unanswered probes are presumed lost (their process died) and their slots freed."""
    changed_at_ms: int = 0
    buckets: tuple[Bucket, ...] = ()
    latencies_ms: tuple[float, ...] = ()
    """The latest successful attempts' durations, oldest first."""


@frozen
class Transition:
    """A change of state and why (``consecutive_failures``, ``error_rate``, ``cool_down_elapsed``,
    ``probe_succeeded``, ``probe_failed``)."""

    before: BreakerState
    after: BreakerState
    reason: str


@frozen
class Admission:
    """May an attempt on ``model`` go ahead? A ticket handed back with the attempt's outcome.

    ``probe``: the attempt is a half-open probe (its outcome decides the state). ``retry_after_ms``: when refused,
    how long until the model may be tried again."""

    model: str
    provider: str
    admitted: bool
    state: BreakerState
    probe: bool = False
    retry_after_ms: int = 0
    transition: Transition | None = None


@frozen
class BreakerView:
    """A breaker as the health report shows it at one instant."""

    state: BreakerState
    retry_after_ms: int
    consecutive_failures: int
    calls: int
    failures: int
    latencies_ms: tuple[float, ...]

    @property
    def error_rate(self) -> float | None:
        """Failures / calls over the window; ``None`` without calls."""
        return self.failures / self.calls if self.calls else None

    def latency_ms(self, quantile: float) -> float | None:
        """The nearest-rank ``quantile`` of the recent successful latencies; ``None`` without samples."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]


def admit(
    current: BreakerRecord, policy: BreakerPolicy, now_ms: int, model: str, provider: str
) -> tuple[BreakerRecord, Admission]:
    """Decide on one attempt: closed lets it through; open refuses it until the cool-down is over, then turns
    half-open and lets it through as the first probe; half-open lets through up to ``half_open_probes`` probes."""
    state = current.state
    if state is BreakerState.CLOSED:
        return current, Admission(model, provider, True, state)
    if state is BreakerState.OPEN:
        if now_ms < current.open_until_ms:
            return current, Admission(model, provider, False, state, retry_after_ms=current.open_until_ms - now_ms)
        after = attrs.evolve(
            current,
            state=BreakerState.HALF_OPEN,
            probes=1,
            probe_until_ms=now_ms + policy.open_ms,
            changed_at_ms=now_ms,
        )
        move = Transition(state, BreakerState.HALF_OPEN, "cool_down_elapsed")
        return after, Admission(model, provider, True, BreakerState.HALF_OPEN, probe=True, transition=move)
    probes = current.probes if now_ms < current.probe_until_ms else 0
    if probes < policy.half_open_probes:
        after = attrs.evolve(current, probes=probes + 1, probe_until_ms=now_ms + policy.open_ms)
        return after, Admission(model, provider, True, state, probe=True)
    return current, Admission(model, provider, False, state, retry_after_ms=current.probe_until_ms - now_ms)


def record(
    current: BreakerRecord,
    policy: BreakerPolicy,
    now_ms: int,
    verdict: Verdict,
    *,
    probe: bool,
    latency_ms: float,
) -> tuple[BreakerRecord, Transition | None]:
    """Count one attempt's outcome and apply the transition it causes, if any."""
    if verdict is not Verdict.SUCCESS and verdict is not Verdict.FAILURE:  # neutral: nothing to count
        if probe and current.state is BreakerState.HALF_OPEN and current.probes > 0:
            return attrs.evolve(current, probes=current.probes - 1), None  # free the slot for another probe
        return current, None
    failed = verdict is Verdict.FAILURE
    buckets = _count(current.buckets, now_ms // policy.bucket_ms, failed)
    if failed:
        counted = attrs.evolve(current, buckets=buckets, consecutive_failures=current.consecutive_failures + 1)
    else:
        latencies = (*current.latencies_ms, latency_ms)[-LATENCY_SAMPLES:]
        counted = attrs.evolve(current, buckets=buckets, consecutive_failures=0, latencies_ms=latencies)
    state = current.state
    if state is BreakerState.CLOSED and failed:
        reason = _trip_reason(counted, policy)
        if reason is None:
            return counted, None
        return _open(counted, policy, now_ms), Transition(state, BreakerState.OPEN, reason)
    if state is BreakerState.HALF_OPEN and probe:
        if failed:
            return _open(counted, policy, now_ms), Transition(state, BreakerState.OPEN, "probe_failed")
        # A fresh start: the window that opened the breaker would otherwise reopen it at the next failure.
        closed = attrs.evolve(
            counted, state=BreakerState.CLOSED, probes=0, probe_until_ms=0, changed_at_ms=now_ms, buckets=()
        )
        return closed, Transition(state, BreakerState.CLOSED, "probe_succeeded")
    # Attempts admitted before the breaker left `closed` still count, but only probes move a half-open breaker.
    return counted, None


def view(current: BreakerRecord, policy: BreakerPolicy, now_ms: int) -> BreakerView:
    """The breaker at ``now_ms``: an open breaker whose cool-down is over shows as half-open (its next call probes)."""
    state = current.state
    retry_after = 0
    if state is BreakerState.OPEN:
        if now_ms < current.open_until_ms:
            retry_after = current.open_until_ms - now_ms
        else:
            state = BreakerState.HALF_OPEN
    oldest = now_ms // policy.bucket_ms - WINDOW_BUCKETS
    live = [b for b in current.buckets if b.index > oldest]
    return BreakerView(
        state,
        retry_after,
        current.consecutive_failures,
        sum(b.calls for b in live),
        sum(b.failures for b in live),
        current.latencies_ms,
    )


def all_refused(refused: Sequence[Admission]) -> ProviderUnavailableError:
    """The fast error when every candidate's breaker refused: retry when the first of them may be tried again."""
    wait_ms = min((a.retry_after_ms for a in refused), default=0)
    models = [a.model for a in refused]
    return ProviderUnavailableError(
        f"every candidate model is unavailable (circuit open): {', '.join(models)}",
        retry_after=wait_ms / 1000,
        models=models,
    )


def _count(buckets: tuple[Bucket, ...], index: int, failed: bool) -> tuple[Bucket, ...]:
    """``buckets`` within the window ending at bucket ``index``, with one more call counted in it."""
    live = [b for b in buckets if b.index > index - WINDOW_BUCKETS]
    failure = 1 if failed else 0
    if live and live[-1].index == index:
        last = live[-1]
        live[-1] = Bucket(index, last.calls + 1, last.failures + failure)
    else:
        live.append(Bucket(index, 1, failure))
    return tuple(live)


def _trip_reason(counted: BreakerRecord, policy: BreakerPolicy) -> str | None:
    if counted.consecutive_failures >= policy.failure_threshold:
        return "consecutive_failures"
    calls = sum(b.calls for b in counted.buckets)
    failures = sum(b.failures for b in counted.buckets)
    if calls >= policy.min_volume and failures / calls >= policy.error_rate_threshold:
        return "error_rate"
    return None


def _open(counted: BreakerRecord, policy: BreakerPolicy, now_ms: int) -> BreakerRecord:
    return attrs.evolve(
        counted,
        state=BreakerState.OPEN,
        open_until_ms=now_ms + policy.open_ms,
        probes=0,
        probe_until_ms=0,
        changed_at_ms=now_ms,
    )
