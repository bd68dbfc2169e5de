"""The QuotaStore contract, run against the in-process store and the Redis scripts (a unique key prefix per test), so
the embedded default and the shared one cannot drift."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Final

import pytest
from redis.asyncio import Redis

from adapters.memory.quotas import InMemoryQuotaStore
from adapters.redis.quotas import RedisQuotaStore
from domain.quotas import Consumption, Grant, Limits, QuotaUsage, Refusal, Reservation, Standing, Windows, to_units
from ports.quotas import QuotaStore
from tests.support.services import require_service

NOW: Final = 1_796_000_000.0  # 2026-11-29, early in a UTC minute
W: Final = Windows.at(NOW)
USD: Final = to_units(1.0)


def hold(
    n: int,
    tokens: int = 0,
    usd: int = 0,
    customer: str = "acme",
    expires_at: float = NOW + 60,
    key: str | None = None,
) -> Reservation:
    return Reservation(f"r{n}", customer, Consumption(tokens, usd), expires_at, key)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[QuotaStore]:
    if request.param == "memory":
        yield InMemoryQuotaStore()
        return
    client = Redis.from_url(require_service("redis"))
    prefix = f"test:quota:{uuid.uuid4().hex}:"
    try:
        yield RedisQuotaStore(client, prefix=prefix)
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_no_limits_hold_but_refuse_nothing(store: QuotaStore) -> None:
    """With every limit unset, reservations are held (and counted) and never refused."""
    for n in range(5):
        assert isinstance(await store.reserve(hold(n, 10, USD), Limits(), W, NOW), Grant)
    usage = await store.usage("acme", W, NOW)
    assert (usage.in_flight, usage.held_tokens, usage.held_usd, usage.requests_this_minute) == (5, 50, 5.0, 5)


async def test_concurrency_counts_calls_in_flight_and_frees_on_settle(store: QuotaStore) -> None:
    """Two slots: the third is refused naming concurrent_streams; settling one frees a slot."""
    limits = Limits(concurrent_streams=2)
    assert isinstance(await store.reserve(hold(1), limits, W, NOW), Grant)
    assert isinstance(await store.reserve(hold(2), limits, W, NOW), Grant)
    assert await store.reserve(hold(3), limits, W, NOW) == Refusal("concurrent_streams", 2, 0, 2)
    await store.settle("acme", "r1", Consumption(), W)
    assert isinstance(await store.reserve(hold(3), limits, W, NOW), Grant)


async def test_requests_per_minute_reset_with_the_minute(store: QuotaStore) -> None:
    """Three requests a minute: the fourth is refused (settling does not give requests back); next minute passes."""
    limits = Limits(requests_per_minute=3)
    for n in range(3):
        assert isinstance(await store.reserve(hold(n), limits, W, NOW), Grant)
        await store.settle("acme", f"r{n}", Consumption(), W)
    assert await store.reserve(hold(9), limits, W, NOW) == Refusal("requests_per_minute", 3, 3, 0)
    later = NOW + 60
    assert isinstance(await store.reserve(hold(9, expires_at=later + 60), limits, Windows.at(later), later), Grant)


async def test_tokens_count_held_then_settled(store: QuotaStore) -> None:
    """Held tokens count against the minute; settling swaps the estimate for what was used."""
    limits = Limits(tokens_per_minute=1000)
    assert isinstance(await store.reserve(hold(1, tokens=600), limits, W, NOW), Grant)
    assert await store.reserve(hold(2, tokens=600), limits, W, NOW) == Refusal("tokens_per_minute", 1000, 0, 600)
    await store.settle("acme", "r1", Consumption(tokens=100), W)
    assert isinstance(await store.reserve(hold(2, tokens=600), limits, W, NOW), Grant)
    assert await store.reserve(hold(3, tokens=301), limits, W, NOW) == Refusal("tokens_per_minute", 1000, 100, 600)


@pytest.mark.parametrize("budget", ["daily_budget_usd", "monthly_budget_usd"])
async def test_budgets_count_spend_settled_and_held(store: QuotaStore, budget: str) -> None:
    """A $1 budget: held spend and settled spend both count; the refusal says how much of each."""
    limits = Limits(**{budget: 1.0})  # type: ignore[arg-type]
    assert isinstance(await store.reserve(hold(1, usd=USD // 2), limits, W, NOW), Grant)
    assert isinstance(await store.reserve(hold(2, usd=USD // 2), limits, W, NOW), Grant)
    assert await store.reserve(hold(3, usd=1), limits, W, NOW) == Refusal(budget, USD, 0, USD)  # type: ignore[arg-type]
    await store.settle("acme", "r1", Consumption(usd_units=USD // 4), W)
    await store.settle("acme", "r2", Consumption(usd_units=USD // 4), W)
    assert isinstance(await store.reserve(hold(3, usd=USD // 2), limits, W, NOW), Grant)
    refused = await store.reserve(hold(4, usd=1), limits, W, NOW)
    assert refused == Refusal(budget, USD, USD // 2, USD // 2)  # type: ignore[arg-type]


async def test_spend_outside_a_reservation_still_counts(store: QuotaStore) -> None:
    """Settling with no reservation id adds the usage (calls not admitted through the gate)."""
    await store.settle("acme", None, Consumption(tokens=7, usd_units=USD), W)
    usage = await store.usage("acme", W, NOW)
    assert (usage.tokens_this_minute, usage.spent_today_usd, usage.spent_this_month_usd) == (7, 1.0, 1.0)
    assert isinstance(await store.reserve(hold(1, usd=1), Limits(daily_budget_usd=1.0), W, NOW), Refusal)


async def test_reserving_twice_under_one_id_holds_once(store: QuotaStore) -> None:
    """A retried reserve (the first ran, its answer was lost) does not hold a second slot or request."""
    limits = Limits(concurrent_streams=1)
    assert isinstance(await store.reserve(hold(1, tokens=5), limits, W, NOW), Grant)
    assert isinstance(await store.reserve(hold(1, tokens=5), limits, W, NOW), Grant)
    usage = await store.usage("acme", W, NOW)
    assert (usage.in_flight, usage.held_tokens, usage.requests_this_minute) == (1, 5, 1)


async def test_an_expired_reservation_is_given_back(store: QuotaStore) -> None:
    """A crashed holder's reservation stops counting at its expiry; settling it late still counts the spend."""
    limits = Limits(concurrent_streams=1, daily_budget_usd=1.0)
    assert isinstance(await store.reserve(hold(1, usd=USD, expires_at=NOW + 10), limits, W, NOW), Grant)
    assert isinstance(await store.reserve(hold(2, expires_at=NOW + 70), limits, W, NOW + 9), Refusal)
    assert isinstance(await store.reserve(hold(2, expires_at=NOW + 70), limits, W, NOW + 10), Grant)
    await store.settle("acme", "r1", Consumption(usd_units=USD // 10), W)
    usage = await store.usage("acme", W, NOW + 10)
    assert (usage.in_flight, usage.held_usd, usage.spent_today_usd) == (1, 0.0, 0.1)


async def test_renewal_keeps_a_reservation_past_its_first_expiry(store: QuotaStore) -> None:
    """Renewed reservations stay held; renewing one already gone does not bring it back."""
    limits = Limits(concurrent_streams=2)
    assert isinstance(await store.reserve(hold(1, expires_at=NOW + 10), limits, W, NOW), Grant)
    assert isinstance(await store.reserve(hold(2, expires_at=NOW + 10), limits, W, NOW), Grant)
    await store.settle("acme", "r2", Consumption(), W)
    await store.renew({"acme": ["r1", "r2"], "ghost": ["x"]}, NOW + 100)
    assert (await store.usage("acme", W, NOW + 50)).in_flight == 1


async def test_raise_spend_only_raises(store: QuotaStore) -> None:
    """The ledger's totals lift lost counters; they never lower counted spend."""
    await store.settle("acme", None, Consumption(usd_units=3 * USD), W)
    await store.raise_spend("acme", W, day_units=2 * USD, month_units=10 * USD)
    usage = await store.usage("acme", W, NOW)
    assert (usage.spent_today_usd, usage.spent_this_month_usd) == (3.0, 10.0)


async def test_customers_are_counted_apart_and_large_amounts_stay_exact(store: QuotaStore) -> None:
    """Another customer's spend is its own; sums past 1e15 units ($10M) stay exact integers."""
    big = 12_345_678_901_234_567 // 10  # > 1e15, < 2**53
    await store.settle("whale", None, Consumption(tokens=big, usd_units=big), W)
    await store.settle("whale", None, Consumption(usd_units=1), W)
    assert (await store.usage("whale", W, NOW)).spent_today_usd == (big + 1) / 1e8
    assert await store.usage("acme", W, NOW) == QuotaUsage()


async def test_a_grant_says_where_each_limit_stands_with_the_call_counted(store: QuotaStore) -> None:
    """Admitted: every limit set is reported, this call's request and holds included; unset limits are not."""
    limits = Limits(concurrent_streams=3, requests_per_minute=10, daily_budget_usd=1.0)
    assert isinstance(await store.reserve(hold(1, usd=USD // 4), limits, W, NOW), Grant)
    grant = await store.reserve(hold(2, tokens=9, usd=USD // 4), limits, W, NOW)
    assert grant == Grant(
        (
            Standing("concurrent_streams", 3, 0, 2),
            Standing("requests_per_minute", 10, 2, 0),
            Standing("daily_budget_usd", USD, 0, USD // 2),
        )
    )
    tightest = grant.tightest(W) if isinstance(grant, Grant) else None
    assert tightest is not None
    assert (tightest.limit, tightest.remaining, tightest.allowed) == ("concurrent_streams", 1, 3)


async def test_a_keys_own_limits_are_checked_with_the_customers_in_one_step(store: QuotaStore) -> None:
    """A key limited to 2 calls in flight is refused on its own counters (scope `key`) while the customer still has
    room; another key of the same customer and key-less calls are not held against it; the customer's limit binds
    every key."""
    customer = Limits(concurrent_streams=4)
    key = Limits(concurrent_streams=2)
    assert isinstance(await store.reserve(hold(1, key="k1"), customer, W, NOW, key), Grant)
    grant = await store.reserve(hold(2, key="k1"), customer, W, NOW, key)
    assert isinstance(grant, Grant)
    assert Standing("concurrent_streams", 2, 0, 2, "key") in grant.standings
    assert await store.reserve(hold(3, key="k1"), customer, W, NOW, key) == Refusal(
        "concurrent_streams", 2, 0, 2, "key"
    )
    assert isinstance(await store.reserve(hold(4, key="k2"), customer, W, NOW, key), Grant)
    assert isinstance(await store.reserve(hold(5), customer, W, NOW), Grant)
    assert await store.reserve(hold(6, key="k2"), customer, W, NOW, key) == Refusal("concurrent_streams", 4, 0, 4)
    await store.settle("acme", "r1", Consumption(), W)
    assert (await store.usage("acme", W, NOW, key_id="k1")).in_flight == 1
    assert isinstance(await store.reserve(hold(3, key="k1"), Limits(), W, NOW, key), Grant)


async def test_a_keys_budget_and_tokens_count_its_own_usage(store: QuotaStore) -> None:
    """Usage settled with a key id counts for the key and its customer; usage of the customer's other calls does not
    count against the key."""
    key = Limits(daily_budget_usd=1.0, tokens_per_minute=100)
    await store.settle("acme", None, Consumption(tokens=90, usd_units=USD // 2), W, key_id="k1")
    await store.settle("acme", None, Consumption(tokens=500, usd_units=5 * USD), W)
    assert await store.reserve(hold(1, tokens=20, key="k1"), Limits(), W, NOW, key) == Refusal(
        "tokens_per_minute", 100, 90, 0, "key"
    )
    assert await store.reserve(hold(1, usd=USD // 2 + 1, key="k1"), Limits(), W, NOW, key) == Refusal(
        "daily_budget_usd", USD, USD // 2, 0, "key"
    )
    assert isinstance(await store.reserve(hold(1, tokens=10, usd=USD // 2, key="k1"), Limits(), W, NOW, key), Grant)
    mine = await store.usage("acme", W, NOW, key_id="k1")
    assert (mine.in_flight, mine.held_tokens, mine.tokens_this_minute, mine.spent_today_usd) == (1, 10, 90, 0.5)
    everyone = await store.usage("acme", W, NOW)
    assert (everyone.requests_this_minute, everyone.tokens_this_minute, everyone.spent_today_usd) == (1, 590, 5.5)


async def test_an_expired_key_reservation_frees_the_keys_slot_too(store: QuotaStore) -> None:
    """A crashed holder's reservation against a key lapses from the key's counters as well as the customer's."""
    key = Limits(concurrent_streams=1)
    assert isinstance(await store.reserve(hold(1, key="k1", expires_at=NOW + 10), Limits(), W, NOW, key), Grant)
    assert isinstance(await store.reserve(hold(2, key="k1"), Limits(), W, NOW + 5, key), Refusal)
    assert isinstance(await store.reserve(hold(2, key="k1", expires_at=NOW + 70), Limits(), W, NOW + 10, key), Grant)
    assert (await store.usage("acme", W, NOW + 10, key_id="k1")).in_flight == 1
