"""The BreakerStore contract, run against the in-process store and Redis (Lua) so the two cannot drift."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Final

import pytest

from adapters.memory.breakers import InMemoryBreakerStore
from domain.health import LATENCY_SAMPLES, BreakerPolicy, BreakerRecord, BreakerState, Bucket, Verdict
from ports.breakers import BreakerStore
from tests.support.breakers import redis_breaker_stores

POLICY: Final = BreakerPolicy(
    failure_threshold=3, error_rate_threshold=0.5, window_ms=10_000, min_volume=4, open_ms=5_000, half_open_probes=2
)
M: Final = "alpha/one"
T0: Final = 1_764_400_000_123  # a real wall-clock instant in ms: the Lua side must keep every digit


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[BreakerStore]:
    if request.param == "memory":
        yield InMemoryBreakerStore()
        return
    async with redis_breaker_stores() as (redis_store,):
        yield redis_store


async def _fail(store: BreakerStore, times: int, at: int = T0) -> None:
    for _ in range(times):
        await store.record(M, POLICY, at, Verdict.FAILURE, probe=False, latency_ms=0.0)


async def test_an_unknown_model_is_closed_and_has_no_record(store: BreakerStore) -> None:
    """Nothing recorded: admitted, closed, absent from ``records``."""
    ticket = await store.admit(M, "alpha", POLICY, T0)
    assert (ticket.admitted, ticket.state, ticket.probe, ticket.transition) == (True, BreakerState.CLOSED, False, None)
    assert (ticket.model, ticket.provider) == (M, "alpha")
    assert await store.records([M]) == {}
    assert await store.records([]) == {}


async def test_outcomes_are_kept_exactly(store: BreakerStore) -> None:
    """Counts, buckets, latencies with their fractions and the timestamps come back as recorded."""
    await store.record(M, POLICY, T0, Verdict.SUCCESS, probe=False, latency_ms=12.345)
    await store.record(M, POLICY, T0 + 1_500, Verdict.FAILURE, probe=False, latency_ms=99.0)
    record, transition = await store.record(M, POLICY, T0 + 1_600, Verdict.SUCCESS, probe=False, latency_ms=0.001)
    assert transition is None
    index = T0 // POLICY.bucket_ms
    assert record == BreakerRecord(
        consecutive_failures=0,
        buckets=(Bucket(index, 1, 0), Bucket(index + 1, 2, 1)),
        latencies_ms=(12.345, 0.001),
    )
    assert await store.records([M, "other/model"]) == {M: record}


async def test_failures_open_then_refuse_then_probe_then_close(store: BreakerStore) -> None:
    """The whole cycle through the store: the transitions come back with their reasons."""
    await _fail(store, 2)
    record, transition = await store.record(M, POLICY, T0 + 10, Verdict.FAILURE, probe=False, latency_ms=0.0)
    assert transition is not None
    assert (transition.before, transition.after, transition.reason) == (
        BreakerState.CLOSED,
        BreakerState.OPEN,
        "consecutive_failures",
    )
    assert (record.state, record.open_until_ms, record.changed_at_ms) == (BreakerState.OPEN, T0 + 5_010, T0 + 10)
    refused = await store.admit(M, "alpha", POLICY, T0 + 1_010)
    assert (refused.admitted, refused.state, refused.retry_after_ms) == (False, BreakerState.OPEN, 4_000)
    probe = await store.admit(M, "alpha", POLICY, T0 + 5_010)
    assert (probe.admitted, probe.probe, probe.state) == (True, True, BreakerState.HALF_OPEN)
    assert probe.transition is not None
    assert (probe.transition.before, probe.transition.reason) == (BreakerState.OPEN, "cool_down_elapsed")
    closed, transition = await store.record(M, POLICY, T0 + 5_020, Verdict.SUCCESS, probe=True, latency_ms=3.5)
    assert transition is not None
    assert (transition.after, transition.reason) == (BreakerState.CLOSED, "probe_succeeded")
    assert (closed.state, closed.buckets, closed.latencies_ms) == (BreakerState.CLOSED, (), (3.5,))


async def test_the_error_rate_opens_it_with_enough_volume(store: BreakerStore) -> None:
    """Two failures in four calls (50 %) trip it on the rate."""
    for verdict in (Verdict.SUCCESS, Verdict.FAILURE, Verdict.SUCCESS):
        await store.record(M, POLICY, T0, verdict, probe=False, latency_ms=1.0)
    record, transition = await store.record(M, POLICY, T0, Verdict.FAILURE, probe=False, latency_ms=1.0)
    assert transition is not None
    assert (record.state, transition.reason) == (BreakerState.OPEN, "error_rate")


async def test_a_failed_probe_reopens_and_a_neutral_one_frees_its_slot(store: BreakerStore) -> None:
    """Probes: the slots are limited, a neutral answer gives one back, a failure reopens."""
    await _fail(store, 3)
    first = await store.admit(M, "alpha", POLICY, T0 + 5_000)
    second = await store.admit(M, "alpha", POLICY, T0 + 5_001)
    third = await store.admit(M, "alpha", POLICY, T0 + 5_002)
    assert (first.probe, second.probe, third.admitted, third.retry_after_ms) == (True, True, False, 4_999)
    record, transition = await store.record(M, POLICY, T0 + 5_003, Verdict.NEUTRAL, probe=True, latency_ms=0.0)
    assert (record.probes, transition) == (1, None)
    assert (await store.admit(M, "alpha", POLICY, T0 + 5_004)).admitted
    record, transition = await store.record(M, POLICY, T0 + 5_005, Verdict.FAILURE, probe=True, latency_ms=0.0)
    assert transition is not None
    assert (record.state, record.open_until_ms, record.probes, transition.reason) == (
        BreakerState.OPEN,
        T0 + 10_005,
        0,
        "probe_failed",
    )


async def test_a_neutral_outcome_of_a_plain_attempt_changes_nothing(store: BreakerStore) -> None:
    """Nothing stored before: still nothing; something stored: the same."""
    record, transition = await store.record(M, POLICY, T0, Verdict.NEUTRAL, probe=False, latency_ms=1.0)
    assert (record, transition) == (BreakerRecord(), None)
    assert await store.records([M]) == {}
    await _fail(store, 1)
    before = (await store.records([M]))[M]
    record, _ = await store.record(M, POLICY, T0, Verdict.NEUTRAL, probe=False, latency_ms=1.0)
    assert record == before


async def test_concurrent_admissions_never_let_more_probes_through_than_allowed(store: BreakerStore) -> None:
    """Twenty callers at the end of the cool-down: exactly ``half_open_probes`` get through, one transition."""
    await _fail(store, 3)
    tickets = await asyncio.gather(*(store.admit(M, "alpha", POLICY, T0 + 5_000) for _ in range(20)))
    assert sum(t.admitted for t in tickets) == POLICY.half_open_probes
    assert sum(t.transition is not None for t in tickets) == 1


async def test_concurrent_outcomes_are_all_counted(store: BreakerStore) -> None:
    """Fifty outcomes recorded at once: none lost."""
    await asyncio.gather(
        *(store.record(M, POLICY, T0, Verdict.SUCCESS, probe=False, latency_ms=1.0) for _ in range(50))
    )
    (record,) = (await store.records([M])).values()
    assert sum(b.calls for b in record.buckets) == 50


async def test_lost_probes_free_their_slots_exactly_when_their_lease_ends(store: BreakerStore) -> None:
    """Two probes out and never answered: refused a millisecond before the lease ends, a probe again at its end."""
    await _fail(store, 3)
    await store.admit(M, "alpha", POLICY, T0 + 5_000)
    await store.admit(M, "alpha", POLICY, T0 + 5_000)
    assert not (await store.admit(M, "alpha", POLICY, T0 + 9_999)).admitted
    again = await store.admit(M, "alpha", POLICY, T0 + 10_000)
    assert (again.admitted, again.probe) == (True, True)
    assert (await store.records([M]))[M].probes == 1


async def test_only_the_latest_latencies_are_kept(store: BreakerStore) -> None:
    """The rolling window of successful latencies keeps its last LATENCY_SAMPLES values."""
    for i in range(LATENCY_SAMPLES + 2):
        record, _ = await store.record(M, POLICY, T0, Verdict.SUCCESS, probe=False, latency_ms=float(i))
    assert record.latencies_ms == tuple(float(i) for i in range(2, LATENCY_SAMPLES + 2))


async def test_a_bucket_a_whole_window_old_leaves_the_window(store: BreakerStore) -> None:
    """An outcome exactly one window later finds the first bucket gone: only its own bucket remains."""
    await _fail(store, 1)
    record, _ = await store.record(M, POLICY, T0 + POLICY.window_ms, Verdict.SUCCESS, probe=False, latency_ms=1.0)
    assert record.buckets == (Bucket((T0 + POLICY.window_ms) // POLICY.bucket_ms, 1, 0),)


async def test_neutral_probes_never_free_more_slots_than_were_taken(store: BreakerStore) -> None:
    """One probe out, two neutral answers claiming to be probes: zero in flight, not minus one."""
    await _fail(store, 3)
    await store.admit(M, "alpha", POLICY, T0 + 5_000)
    for _ in range(2):
        record, _ = await store.record(M, POLICY, T0 + 5_001, Verdict.NEUTRAL, probe=True, latency_ms=0.0)
    assert record.probes == 0
