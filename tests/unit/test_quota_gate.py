"""The quota gate in front of the chat service (in-process store): limits and budgets refused with a 429 before any
vendor call, settled with actual usage, released on failure, expired after a crash, renewed while running; API key
model allow-lists; usage outside admissions; spend seeded from the ledger; the property that concurrent calls from
two gates on one store never spend past a budget."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime
from typing import Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.memory.quotas import InMemoryQuotaStore
from domain.auth import AuthContext
from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Message
from domain.errors import AuthorizationError, DatabaseError, ProviderError
from domain.metering import Units
from domain.quotas import LimitOverride, Limits, QuotaExceededError, QuotaUsage, RateStatus, Windows, to_units
from domain.types import CustomerId
from domain.usage import UsageRecord
from ports.quotas import QuotaStore
from services.attempts import AttemptRunner, Caller, Candidates, RetryPolicy
from services.chat import ChatService
from services.principal import bind_principal, current_rate_status
from services.quotas import MeteredLedger, QuotaGate, QuotaPolicy
from services.registry import ProviderRegistry
from tests.fakes.clock import FakeClock
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.providers import text_vendors
from tests.fakes.text import Script, ScriptedTextProvider, answer
from tests.fakes.usage import InMemoryUsageLedger

NOW: Final = 1_796_000_000.0  # 2026-11-29, 20 s into a UTC minute
ACME: Final = Caller(CustomerId("acme"), "req-1")
# $1 per output token, input free: a request's estimate is its max_tokens in dollars, its cost its output tokens.
MAIN: Final = ModelSpec(
    id="main", provider="scripted", capabilities=frozenset({"text"}), input_price_per_mtok=0.0,
    output_price_per_mtok=1_000_000.0, fallbacks=("scripted/other",),
)  # fmt: skip
OTHER: Final = ModelSpec(id="other", provider="scripted", capabilities=frozenset({"text"}))


class FakeOverrides:
    """``QuotaOverrideStore`` over a dict, counting reads."""

    def __init__(self, overrides: dict[str, LimitOverride] | None = None) -> None:
        self.overrides = dict(overrides or {})
        self.reads = 0
        self.down = False

    async def get(self, customer_id: str) -> LimitOverride | None:
        self.reads += 1
        if self.down:
            raise DatabaseError("read_quota_override", "fake database is down")
        return self.overrides.get(customer_id)

    async def put(self, customer_id: str, override: LimitOverride) -> None:
        self.overrides[customer_id] = override

    async def delete(self, customer_id: str) -> bool:
        return self.overrides.pop(customer_id, None) is not None

    async def list(self) -> dict[str, LimitOverride]:
        return dict(self.overrides)


class World:
    """A chat service on a scripted vendor behind a quota gate; the ledger sees every attempt's record."""

    def __init__(
        self,
        limits: Limits,
        *scripts: Script,
        store: QuotaStore | None = None,
        overrides: FakeOverrides | None = None,
        clock: FakeClock | None = None,
    ) -> None:
        self.store = store or InMemoryQuotaStore()
        self.clock = clock or FakeClock(NOW)
        self.ledger = InMemoryUsageLedger()
        self.gate = QuotaGate(
            self.store, overrides, QuotaPolicy(limits, reservation_ttl_s=30.0), ledger=self.ledger, clock=self.clock
        )
        self.vendor = ScriptedTextProvider(*(scripts or [answer("a", "b")]))
        registry = ProviderRegistry([MAIN, OTHER], text_vendors({"scripted": self.vendor}))
        runner = AttemptRunner(registry, MeteredLedger(self.ledger, self.gate), RecordingMetrics(), RetryPolicy(0))
        self.chat = ChatService(runner, None, quotas=self.gate)

    async def ask(self, max_tokens: int = 2, model: str = "main", **kwargs: object) -> None:
        request = ChatRequest(model, [Message("user", "hi")], max_tokens=max_tokens, **kwargs)  # type: ignore[arg-type]
        await self.chat.complete(request, ACME)


async def test_requests_per_minute_are_refused_before_the_vendor_with_the_limit_named() -> None:
    """The third request of a 2-a-minute customer is a 429 `rate_limited` naming the limit; the vendor saw two."""
    world = World(Limits(requests_per_minute=2))
    await world.ask()
    await world.ask()
    with pytest.raises(QuotaExceededError) as caught:
        await world.ask()
    error = caught.value
    assert error.code == "rate_limited"
    assert error.context == {"limit": "requests_per_minute", "allowed": 2, "remaining": 0, "reset_s": 40,
                             "retry_after": 40}  # fmt: skip
    assert len(world.vendor.requests) == 2


async def test_a_daily_budget_is_settled_on_actual_cost_and_refused_by_its_code() -> None:
    """Two calls cost $2 each (estimates $3); the third ($3 more) would pass $7: `daily_budget_exceeded`, $3 left."""
    world = World(Limits(daily_budget_usd=7.0))
    await world.ask(max_tokens=3)
    await world.ask(max_tokens=3)
    usage = await world.gate.usage("acme")
    assert (usage.spent_today_usd, usage.held_usd, usage.in_flight) == (4.0, 0.0, 0)
    with pytest.raises(QuotaExceededError) as caught:
        await world.ask(max_tokens=4)
    assert caught.value.code == "daily_budget_exceeded"
    assert caught.value.context["remaining"] == 3.0
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 3600
    await world.ask(max_tokens=3)  # what remains is still usable


async def test_a_request_that_alone_exceeds_a_budget_says_so_and_gives_no_retry() -> None:
    """Retrying cannot help a $10 request under a $5 budget: no Retry-After, and the message says why."""
    world = World(Limits(monthly_budget_usd=5.0))
    with pytest.raises(QuotaExceededError) as caught:
        await world.ask(max_tokens=10)
    assert caught.value.code == "monthly_budget_exceeded"
    assert caught.value.retry_after is None
    assert "alone" in caught.value.message
    assert world.vendor.requests == []


async def test_a_failed_call_gives_its_slot_back() -> None:
    """One call in flight at most: a call that fails releases its slot, so the next one runs."""
    world = World(Limits(concurrent_streams=1), [ProviderError("scripted", "boom")], answer("ok"))
    with pytest.raises(ProviderError):
        await world.ask(model="other")  # no fallback to rescue it
    await world.ask(model="other")
    assert (await world.gate.usage("acme")).in_flight == 0


async def test_a_running_call_holds_its_slot_until_it_ends() -> None:
    """While a call is held open at the vendor, a second is refused for concurrency (retry in 1 s); after, it runs."""
    world = World(Limits(concurrent_streams=1))
    world.vendor.gate = asyncio.Event()
    first = asyncio.create_task(world.ask())
    await asyncio.sleep(0.01)
    with pytest.raises(QuotaExceededError) as caught:
        await world.ask()
    assert caught.value.context["limit"] == "concurrent_streams"
    assert caught.value.retry_after == 1
    world.vendor.gate.set()
    await first
    await world.ask()


async def test_tokens_per_minute_count_the_estimate_then_the_actual() -> None:
    """A 100-token minute: a call reserving 60 (prompt + max_tokens) leaves room; once it used few, more fit."""
    world = World(Limits(tokens_per_minute=100))
    await world.ask(max_tokens=50)
    usage = await world.gate.usage("acme")
    assert usage.tokens_this_minute == 5  # the vendor reported 3 in, 2 out
    await world.ask(max_tokens=80)
    with pytest.raises(QuotaExceededError):
        await world.ask(max_tokens=95)


async def test_a_crashed_holders_reservation_lapses_and_a_running_one_is_renewed() -> None:
    """Reservations expire after reservation_ttl_s (30 s): a dropped one frees its slot then; one renewed does not."""
    clock = FakeClock(NOW)
    store = InMemoryQuotaStore()
    crashed = World(Limits(concurrent_streams=1), store=store, clock=clock)
    other = World(Limits(concurrent_streams=1), store=store, clock=clock)
    await crashed.gate.admit(ACME, Candidates("text", (MAIN,)), lambda _: Units())  # never settled: a crash
    clock.advance(29)
    with pytest.raises(QuotaExceededError):
        await other.ask()
    clock.advance(1)
    held = await other.gate.admit(ACME, Candidates("text", (MAIN,)), lambda _: Units())
    clock.advance(20)
    await other.gate.renew()
    clock.advance(20)
    with pytest.raises(QuotaExceededError):
        await crashed.ask()
    await held.release()
    await crashed.ask()


async def test_an_unlimited_customer_reserves_nothing() -> None:
    """No limits: no reservation, nothing counted, no store call."""
    world = World(Limits())
    await world.ask()
    admission = await world.gate.admit(ACME, Candidates("text", (MAIN,)), lambda _: Units())
    assert admission.reservation is None
    assert await world.gate.usage("acme") == QuotaUsage()


async def test_an_override_replaces_defaults_and_is_cached_briefly() -> None:
    """acme's override lifts the default minute limit (-1) and sets a budget; it is read again after its TTL."""
    overrides = FakeOverrides({"acme": LimitOverride(requests_per_minute=-1, daily_budget_usd=5.0)})
    world = World(Limits(requests_per_minute=1), overrides=overrides)
    assert await world.gate.limits_for("acme") == Limits(daily_budget_usd=5.0)
    assert await world.gate.limits_for("beta") == Limits(requests_per_minute=1)
    await world.ask()
    await world.ask()
    assert overrides.reads == 2  # acme and beta once each: cached for overrides_ttl_s
    with pytest.raises(QuotaExceededError) as caught:
        await world.ask(max_tokens=2)
    assert caught.value.code == "daily_budget_exceeded"


async def test_unreadable_overrides_never_fail_a_call() -> None:
    """Database down: the override last read stands; a customer never read gets the defaults; reads are retried
    after the TTL, not on every call."""
    overrides = FakeOverrides({"acme": LimitOverride(requests_per_minute=5)})
    monotonic = FakeClock(0.0)
    policy = QuotaPolicy(Limits(requests_per_minute=1), overrides_ttl_s=5.0)
    gate = QuotaGate(InMemoryQuotaStore(), overrides, policy, monotonic=monotonic)
    assert (await gate.limits_for("acme")).requests_per_minute == 5
    overrides.down = True
    monotonic.advance(5)
    assert (await gate.limits_for("acme")).requests_per_minute == 5
    assert (await gate.limits_for("beta")).requests_per_minute == 1
    reads = overrides.reads
    await gate.limits_for("beta")
    assert overrides.reads == reads


async def test_usage_outside_an_admission_counts_for_limited_customers_only() -> None:
    """Records of calls the gate never admitted (CLI chat) still count where spend is limited."""
    world = World(Limits(daily_budget_usd=100.0))
    await world.gate.count(_record("acme", "cli-1", cost=2.5))
    assert (await world.gate.usage("acme")).spent_today_usd == 2.5
    unlimited = World(Limits())
    await unlimited.gate.count(_record("acme", "cli-1", cost=2.5))
    assert (await unlimited.gate.usage("acme")).spent_today_usd == 0.0


async def test_spend_starts_from_the_ledger() -> None:
    """A restarted process (empty counters) starts from the ledger's totals for today and the month."""
    world = World(Limits(daily_budget_usd=5.0, monthly_budget_usd=50.0))
    moment = datetime.fromtimestamp(NOW, UTC)
    await world.ledger.record(_record("acme", "old", cost=4.0, at=moment.replace(hour=0, minute=1)))
    await world.ledger.record(_record("acme", "older", cost=30.0, at=moment.replace(day=1)))
    with pytest.raises(QuotaExceededError) as caught:
        await world.ask(max_tokens=2)
    assert caught.value.context["remaining"] == 1.0
    assert (await world.gate.usage("acme")).spent_this_month_usd == 34.0


async def test_a_keys_model_allow_list_is_a_403_for_the_model_and_skips_fallbacks() -> None:
    """A key allowed only `scripted/main` is refused `other` (403 naming it); main's fallback `other` is dropped."""
    world = World(Limits())
    bind_principal(AuthContext(CustomerId("acme"), key_id="key_1", models=frozenset({"scripted/main"})))
    try:
        with pytest.raises(AuthorizationError) as caught:
            await world.ask(model="other")
        assert caught.value.context["model"] == "scripted/other"
        admission = await world.gate.admit(ACME, Candidates("text", (MAIN, OTHER)), lambda _: Units())
        assert admission.candidates.models == (MAIN,)
    finally:
        bind_principal(None)
    assert (await world.gate.admit(ACME, Candidates("text", (OTHER,)), lambda _: Units())).candidates.models


def _key(key_id: str, limits: Limits) -> AuthContext:
    return AuthContext(CustomerId("acme"), key_id=key_id, key_limits=limits)


async def test_a_keys_own_request_limit_binds_it_alone_with_the_customers() -> None:
    """Key k1 may make 1 request a minute: its second is a 429 naming the key's limit (scope `key`) while the
    customer's 3 a minute still has room; another key of the customer passes; the customer's limit then binds it."""
    world = World(Limits(requests_per_minute=3))
    try:
        bind_principal(_key("k1", Limits(requests_per_minute=1)))
        await world.ask()
        with pytest.raises(QuotaExceededError) as caught:
            await world.ask()
        assert caught.value.context["scope"] == "key"
        assert caught.value.context["allowed"] == 1
        assert "this API key's" in caught.value.message
        bind_principal(_key("k2", Limits(requests_per_minute=5)))
        await world.ask()
        await world.ask()
        with pytest.raises(QuotaExceededError) as refused:
            await world.ask()
        assert "scope" not in refused.value.context
        assert refused.value.context["allowed"] == 3
    finally:
        bind_principal(None)
    assert len(world.vendor.requests) == 3


async def test_a_keys_budget_counts_what_its_calls_spent() -> None:
    """A key with a $5 budget under an unlimited customer: two $2 calls pass, the third (estimated $3, $1 left) is
    refused `daily_budget_exceeded` for the key; the customer's spend is counted too."""
    world = World(Limits())
    try:
        bind_principal(_key("k1", Limits(daily_budget_usd=5.0)))
        await world.ask(max_tokens=3)
        await world.ask(max_tokens=3)
        with pytest.raises(QuotaExceededError) as caught:
            await world.ask(max_tokens=3)
    finally:
        bind_principal(None)
    assert (caught.value.code, caught.value.context["scope"], caught.value.context["remaining"]) == (
        "daily_budget_exceeded", "key", 1.0,
    )  # fmt: skip
    key_usage = await world.store.usage("acme", Windows.at(NOW), NOW, key_id="k1")
    assert (key_usage.spent_today_usd, key_usage.in_flight) == (4.0, 0)


async def test_an_admission_reports_the_tightest_limit_for_the_response_headers() -> None:
    """Admitted under 10 requests a minute and a $100 budget: the report names the limit with the least share left
    (the key's 2 a minute, one used), with what remains and when it resets."""
    world = World(Limits(requests_per_minute=10, daily_budget_usd=100.0))

    async def admitted() -> RateStatus | None:
        bind_principal(_key("k1", Limits(requests_per_minute=2)))
        await world.gate.admit(ACME, Candidates("text", (MAIN,)), lambda _: Units(output_tokens=1))
        return current_rate_status()

    status = await asyncio.create_task(admitted())  # its own context, as a request's
    assert status == RateStatus("requests_per_minute", "key", 2, 1, 40, 0.5)
    assert current_rate_status() is None


async def test_a_guarded_run_settles_when_it_is_closed_early() -> None:
    """A run consumed through `guard` releases its reservation when its consumer stops early."""
    world = World(Limits(concurrent_streams=1))
    admission = await world.gate.admit(ACME, Candidates("text", (MAIN,)), lambda _: Units())

    async def steps() -> AsyncGenerator[int, None]:
        for n in range(10):
            yield n

    guarded: AsyncGenerator[int, None] = admission.guard(steps())
    assert await anext(guarded) == 0
    await guarded.aclose()
    assert not admission.open
    assert (await world.gate.usage("acme")).in_flight == 0


def _record(customer: str, request_id: str, *, cost: float, at: datetime | None = None) -> UsageRecord:
    return UsageRecord(
        request_id=request_id, customer_id=customer, capability="text", provider="scripted", model="scripted/main",
        outcome="done", created_at=at or datetime.fromtimestamp(NOW, UTC), output_tokens=1, cost_usd=cost,
    )  # fmt: skip


# --- the property: concurrent calls from two gates on one store never spend past a budget ----------------------------


async def burst(
    stores: Sequence[QuotaStore],
    budget: float,
    calls: Sequence[tuple[int, float, bool]],
    seed: int,
    key_budget: float | None = None,
) -> tuple[float, float, list[QuotaGate], dict[str, float]]:
    """Run ``calls`` (estimate $, actual share of it, crash?) at once, alternating between one gate per store; the
    actual spend of admitted calls, the largest reservation, the gates and the spend per API key. With
    ``key_budget`` the calls alternate between two keys (k0, k1) each with that budget of its own."""
    rng = random.Random(seed)
    clock = FakeClock(NOW)
    gates = [
        QuotaGate(store, None, QuotaPolicy(Limits(daily_budget_usd=budget), reservation_ttl_s=30.0), clock=clock)
        for store in stores
    ]
    spent: list[float] = []
    by_key: dict[str, float] = {}

    async def call(index: int, estimate: int, share: float, crash: bool) -> None:
        gate = gates[index % len(gates)]
        caller = Caller(CustomerId("acme"), f"req-{index}")
        key = f"k{index // 2 % 2}"
        if key_budget is not None:  # this call's own task: the binding is its alone
            bind_principal(AuthContext(CustomerId("acme"), key_id=key, key_limits=Limits(daily_budget_usd=key_budget)))
        for _ in range(rng.randrange(3)):
            await asyncio.sleep(0)
        try:
            admission = await gate.admit(caller, Candidates("text", (MAIN,)), lambda _: Units(output_tokens=estimate))
        except QuotaExceededError:
            return
        await asyncio.sleep(0)
        cost = round(estimate * share, 8)
        spent.append(cost)
        by_key[key] = by_key.get(key, 0.0) + cost
        await gate.count(_record("acme", caller.request_id, cost=cost))
        if not crash:
            await admission.release()

    await asyncio.gather(*(call(i, est, share, crash) for i, (est, share, crash) in enumerate(calls)))
    return sum(spent), max((est for est, _, _ in calls), default=0), gates, by_key


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    budget=st.integers(1, 40),
    calls=st.lists(st.tuples(st.integers(1, 8), st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.booleans()), max_size=30),
    seed=st.integers(0, 1000),
    key_budget=st.none() | st.integers(1, 20),
)
def test_two_gates_on_one_store_never_spend_past_the_budget(
    budget: int, calls: list[tuple[int, float, bool]], seed: int, key_budget: int | None
) -> None:
    """Whatever the interleaving: admitted calls' actual spend stays within the budget, and each API key's within
    its own when keys have one (each call costs at most its estimate); settled reservations are given back, crashed
    ones lapse after their TTL; counters match the spend."""
    store = InMemoryQuotaStore()

    async def scenario() -> None:
        spent, _largest, gates, by_key = await burst(
            [store, store], float(budget), calls, seed, None if key_budget is None else float(key_budget)
        )
        assert spent <= budget + 1e-9
        if key_budget is not None:
            assert all(amount <= key_budget + 1e-9 for amount in by_key.values()), by_key
            for key, amount in by_key.items():
                counted = await store.usage("acme", Windows.at(NOW), NOW, key_id=key)
                assert to_units(counted.spent_today_usd) == to_units(amount)
        assert abs((await gates[0].usage("acme")).spent_today_usd - spent) < 1e-6
        settled = [c for c in calls if not c[2]]
        usage = await gates[0].usage("acme")
        assert usage.in_flight <= len(calls) - len(settled)
        later = await store.usage("acme", Windows.at(NOW + 31), NOW + 31)
        assert (later.in_flight, later.held_usd) == (0, 0.0)
        assert to_units(later.spent_today_usd) == to_units(spent)

    asyncio.run(scenario())
