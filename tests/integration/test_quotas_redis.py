"""Limits on one shared Redis: two server processes racing a budget are cut exactly at it; two gates (each with its
own client) under any interleaving never spend past a budget, give settled reservations back and let a crashed
holder's lapse; and the HTTP app enforces the limit with Redis as the store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from adapters.redis.quotas import RedisQuotaStore
from domain.auth import AuthContext
from domain.quotas import Limits, Windows
from domain.types import CustomerId
from services.principal import bind_principal
from services.quotas import QuotaGate, QuotaPolicy
from settings.secret import Secret
from tests.support.app import auth_headers, make_container, make_settings
from tests.support.quota_burst import KEY_ID
from tests.support.quota_burst import burst as quota_burst
from tests.support.services import require_service
from tests.unit.test_quota_gate import NOW, burst

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]


async def _cleanup(client: Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)


@pytest.mark.parametrize("whose", ["customer", "key"])
def test_two_processes_racing_one_budget_are_cut_at_it(whose: str) -> None:
    """Two processes fire 40 $1 calls each at the same instant against a $30 budget (the customer's, or an API key's
    own under a far larger customer budget): at most 30 are admitted in all, and the counted spend is what they spent.
    Under contention a call may be refused a little early (a finished call's cost is briefly both spent and held:
    never neither), so the calls still missing are then made one at a time: each is admitted and the next refused, so
    the budget is cut exactly at $30 and every settled reservation was given back."""
    url = require_service("redis")
    prefix = f"test:quota:{uuid.uuid4().hex}:"
    command = [sys.executable, "-m", "tests.support.quota_burst", url, prefix, "acme", "30", "40"]
    if whose == "key":
        command.append("key")
    processes = [
        subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    for process in processes:  # both imported and connected: now start them together
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.close()
    admitted = []
    for process in processes:
        assert process.stdout is not None
        admitted.append(int(process.stdout.read().strip()))
        assert process.wait(timeout=60) == 0
    assert all(process.returncode == 0 for process in processes)
    assert sum(admitted) <= 30
    assert min(admitted) > 0, f"the processes did not overlap: {admitted}"

    async def spent() -> float:
        client = Redis.from_url(url)
        try:
            store = RedisQuotaStore(client, prefix=prefix)
            key = KEY_ID if whose == "key" else None
            usage = await store.usage("acme", Windows.at(time.time()), time.time(), key_id=key)
            assert usage.spent_today_usd == float(sum(admitted))
            missing = 30 - sum(admitted)
            if whose == "key":  # the calls are the key's (the context is copied into the burst's tasks)
                bind_principal(AuthContext(CustomerId("acme"), key_id=KEY_ID, key_limits=Limits(daily_budget_usd=30)))
            limits = Limits(daily_budget_usd=30_000 if whose == "key" else 30)
            gate = QuotaGate(store, None, QuotaPolicy(limits))
            late = [await quota_burst(gate, "acme", 1, f"late-{index}") for index in range(missing + 1)]
            await gate.aclose()
            assert late == [1] * missing + [0], f"after {sum(admitted)} admitted in the race: {late}"
            usage = await store.usage("acme", Windows.at(time.time()), time.time(), key_id=key)
            await _cleanup(client, prefix)
        finally:
            await client.aclose()
        assert usage.in_flight == 0
        return usage.spent_today_usd

    assert asyncio.run(spent()) == 30.0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    budget=st.integers(1, 30),
    calls=st.lists(st.tuples(st.integers(1, 8), st.sampled_from([0.0, 0.5, 1.0]), st.booleans()), max_size=20),
    seed=st.integers(0, 1000),
    key_budget=st.none() | st.integers(1, 12),
)
def test_two_gates_with_their_own_clients_never_spend_past_a_budget(
    budget: int, calls: list[tuple[int, float, bool]], seed: int, key_budget: int | None
) -> None:
    """The same property as on the in-process store, on Redis through two clients (two instances): spend within the
    budget (and each API key's within its own), counters equal to it, every reservation back once settled or past
    its TTL."""
    url = require_service("redis")
    prefix = f"test:quota:{uuid.uuid4().hex}:"

    async def scenario() -> None:
        a, b = Redis.from_url(url), Redis.from_url(url)
        try:
            stores = [RedisQuotaStore(a, prefix=prefix), RedisQuotaStore(b, prefix=prefix)]
            keys = None if key_budget is None else float(key_budget)
            spent, _largest, _gates, by_key = await burst(stores, float(budget), calls, seed, keys)
            assert spent <= budget + 1e-9
            assert key_budget is None or all(amount <= key_budget + 1e-9 for amount in by_key.values()), by_key
            for key, amount in by_key.items() if key_budget is not None else ():
                counted = await stores[1].usage("acme", Windows.at(NOW), NOW, key_id=key)
                assert abs(counted.spent_today_usd - amount) < 1e-6
                assert (await stores[1].usage("acme", Windows.at(NOW + 31), NOW + 31, key_id=key)).in_flight == 0
            later = await stores[0].usage("acme", Windows.at(NOW + 31), NOW + 31)
            assert (later.in_flight, later.held_usd) == (0, 0.0)
            assert abs(later.spent_today_usd - spent) < 1e-6
        finally:
            await _cleanup(a, prefix)
            await a.aclose()
            await b.aclose()

    asyncio.run(scenario())


@pytest.fixture
async def redis_app_client(tmp_path: Path) -> AsyncIterator[object]:
    url = require_service("redis")
    prefix = f"test:quota:{uuid.uuid4().hex}:"
    settings_ = make_settings(
        tmp_path, redis={"url": Secret(url)}, quotas={"requests_per_minute": 1, "redis_prefix": prefix}
    )
    container = make_container(settings_)
    from entrypoints.http.app import create_app

    app = create_app(container)
    async with app.test_app():
        yield app.test_client()
    container.unwire()
    client = Redis.from_url(url)
    await _cleanup(client, prefix)
    await client.aclose()


async def test_the_app_counts_in_redis_when_it_is_configured(redis_app_client: object) -> None:
    """With redis.url set the limit lives in Redis: the second request of a 1-a-minute customer is a 429."""
    client = redis_app_client
    body = {"model": "fake/echo", "messages": [{"role": "user", "content": "hi"}]}
    assert (await client.post("/api/v1/chat", json=body, headers=auth_headers())).status_code == 200  # type: ignore[attr-defined]
    refused = await client.post("/api/v1/chat", json=body, headers=auth_headers())  # type: ignore[attr-defined]
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == "1"
