"""The ApiKeyStore contract, run against the fake and the SQLAlchemy store on SQLite and PostgreSQL (migrated with the
real migrations), so they cannot drift."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest

from adapters.sqlalchemy.api_keys import SqlAlchemyApiKeyStore
from adapters.sqlalchemy.migrator import AlembicSchemaMigrator
from domain.api_keys import ApiKey
from domain.errors import ConflictError
from domain.quotas import Limits
from domain.types import CustomerId
from ports.api_keys import ApiKeyStore
from tests.fakes.api_keys import FakeApiKeyStore
from tests.integration.test_ledger_backends import backend_engine

T0: Final = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def key(n: int, customer: str = "acme", **changes: object) -> ApiKey:
    fields: dict[str, object] = {
        "id": f"key_{n:04d}",
        "prefix": f"sy-pre{n:05d}",
        "customer_id": CustomerId(customer),
        "name": f"key {n}",
        "created_at": T0 + timedelta(minutes=n),
        "scopes": frozenset({"chat"}),
        **changes,
    }
    return ApiKey(**fields)  # type: ignore[arg-type]


@pytest.fixture(params=["fake", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ApiKeyStore]:
    if request.param == "fake":
        yield FakeApiKeyStore()
        return
    async with backend_engine(request.param, tmp_path) as engine:
        await AlembicSchemaMigrator(engine).upgrade()
        yield SqlAlchemyApiKeyStore(engine)


async def test_a_key_round_trips_by_hash_with_every_field(store: ApiKeyStore) -> None:
    """What is added comes back equal (aware UTC times, scopes, allow-list, expiry); an unknown hash is None."""
    original = key(1, models=frozenset({"openai/*", "fake/echo"}), expires_at=T0 + timedelta(days=30))
    await store.add(original, "h1")
    assert await store.find_by_hash("h1") == original
    assert await store.find_by_hash("nope") is None


async def test_a_keys_own_limits_round_trip(store: ApiKeyStore) -> None:
    """Each of a key's limits comes back as stored (budgets as fractions of a dollar), unset ones as None."""
    limits = Limits(requests_per_minute=60, concurrent_streams=2, daily_budget_usd=1.25, monthly_budget_usd=0.0)
    await store.add(key(7, limits=limits), "h7")
    found = await store.find_by_hash("h7")
    assert found is not None
    assert found.limits == limits
    assert (await store.find("key_0007"))[0].limits == limits


async def test_no_models_means_every_model_and_empty_scopes_stay_empty(store: ApiKeyStore) -> None:
    """None (all models) and an empty scope set are kept apart from each other."""
    await store.add(key(2, scopes=frozenset()), "h2")
    found = await store.find_by_hash("h2")
    assert found is not None
    assert found.models is None
    assert found.scopes == frozenset()


async def test_a_hash_is_unique(store: ApiKeyStore) -> None:
    """A second key under the same hash is a conflict, never a silent overwrite."""
    await store.add(key(1), "same")
    with pytest.raises(ConflictError):
        await store.add(key(2), "same")


async def test_find_by_id_or_prefix_and_list_newest_first(store: ApiKeyStore) -> None:
    """find matches the id exactly or the prefix's start (LIKE wildcards are literal); list filters by customer."""
    for n, customer in ((1, "acme"), (2, "acme"), (3, "beta")):
        await store.add(key(n, customer), f"h{n}")
    assert [k.id for k in await store.find("key_0002")] == ["key_0002"]
    assert sorted(k.id for k in await store.find("sy-pre0000")) == ["key_0001", "key_0002", "key_0003"]
    assert await store.find("sy-pre%") == []
    assert await store.find("sy-pre_0001") == []
    assert [k.id for k in await store.list("acme")] == ["key_0002", "key_0001"]
    assert [k.id for k in await store.list()] == ["key_0003", "key_0002", "key_0001"]


async def test_revoke_keeps_the_first_time_and_unknown_is_none(store: ApiKeyStore) -> None:
    """Revoking stamps revoked_at once; a second revoke keeps it; an unknown id answers None."""
    await store.add(key(1), "h1")
    first = await store.revoke("key_0001", T0 + timedelta(hours=1))
    again = await store.revoke("key_0001", T0 + timedelta(hours=2))
    assert first is not None
    assert again is not None
    assert first.revoked_at == again.revoked_at == T0 + timedelta(hours=1)
    assert await store.revoke("key_9999", T0) is None


async def test_touch_never_moves_last_used_backwards(store: ApiKeyStore) -> None:
    """A batch of last-used times is applied per key, only where it is later than what is stored."""
    await store.add(key(1), "h1")
    await store.add(key(2), "h2")
    await store.touch({"key_0001": T0 + timedelta(hours=2), "key_0002": T0 + timedelta(hours=1)})
    await store.touch({"key_0001": T0 + timedelta(hours=1), "key_9999": T0})
    one, two = await store.find_by_hash("h1"), await store.find_by_hash("h2")
    assert one is not None
    assert one.last_used_at == T0 + timedelta(hours=2)
    assert two is not None
    assert two.last_used_at == T0 + timedelta(hours=1)
