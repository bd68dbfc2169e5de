"""Two instances (two key services, each with its own engine, Redis client and cache) sharing one PostgreSQL database
and one Redis: a key cached by both is refused by both the moment either revokes it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.redis.generation import RedisCacheGeneration
from adapters.sqlalchemy.api_keys import SqlAlchemyApiKeyStore
from adapters.sqlalchemy.migrator import AlembicSchemaMigrator
from domain.api_keys import ApiKey
from domain.errors import AuthenticationError, ServiceUnavailableError
from services.api_keys import ApiKeyService
from tests.integration.test_ledger_backends import backend_engine
from tests.support.services import require_service

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


class CountingStore(SqlAlchemyApiKeyStore):
    """The real store, counting hash lookups (what each instance's cache saved)."""

    reads = 0

    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        self.reads += 1
        return await super().find_by_hash(key_hash)


async def _twin(engine: AsyncEngine) -> AsyncEngine:
    """A second engine on the same PostgreSQL schema (another instance's pool)."""
    async with engine.connect() as connection:
        schema = (await connection.execute(text("SELECT current_schema()"))).scalar_one()
    return create_async_engine(engine.url, connect_args={"server_settings": {"search_path": schema}})


@pytest.fixture
async def instances(tmp_path: Path) -> AsyncIterator[tuple[ApiKeyService, ApiKeyService, CountingStore, CountingStore]]:
    url = require_service("redis")
    counter = f"test:keys:{uuid.uuid4().hex}"
    async with backend_engine("postgres", tmp_path) as engine:
        await AlembicSchemaMigrator(engine).upgrade()
        other = await _twin(engine)
        redis_a, redis_b = Redis.from_url(url), Redis.from_url(url)
        store_a, store_b = CountingStore(engine), CountingStore(other)
        a = ApiKeyService(store_a, RedisCacheGeneration(redis_a, counter))
        b = ApiKeyService(store_b, RedisCacheGeneration(redis_b, counter))
        try:
            yield a, b, store_a, store_b
        finally:
            await a.aclose()
            await b.aclose()
            await redis_a.delete(counter)
            await redis_a.aclose()
            await redis_b.aclose()
            await other.dispose()


async def test_a_revoked_key_is_refused_on_both_instances_at_once(
    instances: tuple[ApiKeyService, ApiKeyService, CountingStore, CountingStore],
) -> None:
    """Both instances verify from their caches (one database read each), B revokes, and A's next verify refuses."""
    a, b, store_a, store_b = instances
    issued = await a.create("acme", "ci", scopes=["chat"])
    for _ in range(3):
        assert (await a.verify(issued.secret)).customer_id == "acme"
        assert (await b.verify(issued.secret)).customer_id == "acme"
    assert (store_a.reads, store_b.reads) == (1, 1)
    await b.revoke(issued.key.prefix)
    for instance in (a, b):
        with pytest.raises(AuthenticationError, match="revoked"):
            await instance.verify(issued.secret)


async def test_last_used_reaches_the_shared_database(
    instances: tuple[ApiKeyService, ApiKeyService, CountingStore, CountingStore],
) -> None:
    """A's use of the key is written by its flush and seen in B's listing."""
    a, b, _, _ = instances
    issued = await a.create("acme", "ci")
    await a.verify(issued.secret)
    await a.flush()
    [listed] = await b.list("acme")
    assert listed.last_used_at is not None


async def test_a_revocation_that_cannot_reach_redis_says_so(tmp_path: Path) -> None:
    """The database commit holds, but the operator gets a 503 asking to revoke again (which is harmless)."""
    async with backend_engine("sqlite", tmp_path) as engine:
        await AlembicSchemaMigrator(engine).upgrade()
        dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
        keys = ApiKeyService(SqlAlchemyApiKeyStore(engine), RedisCacheGeneration(dead))
        issued = await keys.create("acme", "ci")
        with pytest.raises(ServiceUnavailableError, match="revoke again"):
            await keys.revoke(issued.key.id)
        with pytest.raises(AuthenticationError, match="revoked"):
            await keys.verify(issued.secret)  # the counter is unreadable too: read from the database
        await dead.aclose()
