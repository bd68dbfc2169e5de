"""Circuit breakers on Redis: the Lua scripts compute exactly what domain/health.py computes (random histories
replayed through both), and two runner instances on one Redis share each model's breaker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.catalog import ModelSpec
from domain.errors import ProviderError
from domain.health import Admission, BreakerPolicy, BreakerRecord, BreakerState, Verdict, admit, record
from domain.metering import Units
from domain.types import CustomerId
from ports.providers import PortKey, VendorProviders
from services.attempts import AttemptRunner, Caller, RetryPolicy
from services.breakers import CircuitBreakers
from services.registry import ProviderRegistry
from tests.fakes.clock import FakeClock, no_sleep
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.usage import InMemoryUsageLedger
from tests.support.breakers import redis_breaker_stores
from tests.support.services import require_service

pytestmark = pytest.mark.redis

POLICY: Final = BreakerPolicy(
    failure_threshold=3, error_rate_threshold=0.4, window_ms=2_000, min_volume=5, open_ms=1_500, half_open_probes=2
)
M: Final = "alpha/one"
T0: Final = 1_764_400_000_007

# --- the Lua twin computes what the domain computes --------------------------------------------------------------

_STEP = st.one_of(
    st.tuples(
        st.just("wait"),  # the edges (a bucket, a cool-down, a window exactly) as well as anything in between
        st.sampled_from([0, 1, POLICY.bucket_ms, POLICY.open_ms, POLICY.window_ms]) | st.integers(0, 900),
    ),
    st.tuples(st.just("admit"), st.just(0)),
    # an outcome: 0 success, 1 failure, 2 neutral; of the oldest admitted ticket (a probe or not) when there is one
    st.tuples(st.just("answer"), st.integers(min_value=0, max_value=2)),
    st.tuples(st.just("stray"), st.integers(min_value=0, max_value=2)),  # an outcome claiming to be a probe
)
_VERDICTS: Final = (Verdict.SUCCESS, Verdict.FAILURE, Verdict.NEUTRAL)


async def _replay(steps: Sequence[tuple[str, int]]) -> None:
    async with redis_breaker_stores() as (store,):
        now = T0
        model = BreakerRecord()
        tickets: list[Admission] = []
        for n, (kind, value) in enumerate(steps):
            if kind == "wait":
                now += value
                continue
            if kind == "admit":
                model, expected = admit(model, POLICY, now, M, "alpha")
                got = await store.admit(M, "alpha", POLICY, now)
                assert got == expected, f"step {n}: admit"
                if got.admitted:
                    tickets.append(got)
                continue
            probe = kind == "stray" or (bool(tickets) and tickets.pop(0).probe)
            latency = round(0.001 + n * 1.337, 3)
            verdict = _VERDICTS[value]
            model, transition = record(model, POLICY, now, verdict, probe=probe, latency_ms=latency)
            stored, got_transition = await store.record(M, POLICY, now, verdict, probe=probe, latency_ms=latency)
            assert (stored, got_transition) == (model, transition), f"step {n}: record {verdict} probe={probe}"
        assert await store.records([M]) == ({M: model} if model != BreakerRecord() else {})


@settings(max_examples=150, deadline=None)
@given(st.lists(_STEP, max_size=60))
def test_the_lua_scripts_compute_what_the_domain_computes(steps: list[tuple[str, int]]) -> None:
    """Every admission, transition and stored record agrees between breakers.lua and domain/health.py."""
    require_service("redis")
    asyncio.run(_replay(steps))


# --- two instances, one Redis -----------------------------------------------------------------------------------


class Flaky:
    """A one-shot provider whose model fails (HTTP 500) while ``down`` is set."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.down = False
        self.calls = 0

    async def call(self) -> str:
        self.calls += 1
        if self.down:
            raise ProviderError(self.name, "HTTP 500", retryable=True)
        return self.name


FLAKY_PORT: Final = PortKey[Flaky]("flaky")
CATALOG: Final = [
    ModelSpec(id="one", provider="alpha", capabilities=frozenset({"flaky"}), fallbacks=("beta/two",)),
    ModelSpec(id="two", provider="beta", capabilities=frozenset({"flaky"})),
]


def _runner(store: object, alpha: Flaky, beta: Flaky, clock: FakeClock) -> AttemptRunner:
    vendors = {
        "alpha": VendorProviders("alpha", {FLAKY_PORT: alpha}),
        "beta": VendorProviders("beta", {FLAKY_PORT: beta}),
    }
    policy = BreakerPolicy(failure_threshold=3, min_volume=100, open_ms=30_000)
    breakers = CircuitBreakers(store, policy, RecordingMetrics(), wall=clock)  # type: ignore[arg-type]
    return AttemptRunner(
        ProviderRegistry(CATALOG, vendors),
        InMemoryUsageLedger(),
        RecordingMetrics(),
        RetryPolicy(max_retries=1),
        sleep=no_sleep,
        clock=clock,
        breakers=breakers,
    )


async def _serve(runner: AttemptRunner) -> str:
    candidates = runner.candidates("alpha/one", capabilities=["flaky"])

    async def invoke(provider: Flaky, spec: ModelSpec) -> str:
        return await provider.call()

    served = await runner.call(
        candidates, Caller(CustomerId("acme"), "req-1"), FLAKY_PORT, invoke, units=lambda value: Units()
    )
    return served.model.qualified_id


async def test_two_runner_instances_share_a_breaker_through_redis() -> None:
    """Instance A's failures open alpha; instance B, which never saw alpha fail, skips it from its first call; after
    the cool-down B's probe closes it for both."""
    clock = FakeClock(1_764_400_000.0)
    alpha, beta = Flaky("alpha"), Flaky("beta")
    async with redis_breaker_stores(2) as (store_a, store_b):
        first, second = _runner(store_a, alpha, beta, clock), _runner(store_b, alpha, beta, clock)
        alpha.down = True
        assert await _serve(first) == "beta/two"  # alpha: 2 failures (a retry)
        assert await _serve(first) == "beta/two"  # alpha: the third failure opens it
        assert alpha.calls == 3
        assert await _serve(second) == "beta/two"
        assert alpha.calls == 3  # B skipped alpha without calling it
        alpha.down = False
        clock.advance(30.0)
        assert await _serve(second) == "alpha/one"  # B's probe
        views = await first.breakers.views(CATALOG)
        assert views["alpha/one"].state is BreakerState.CLOSED
        assert await _serve(first) == "alpha/one"
