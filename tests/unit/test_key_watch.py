"""The key watch behind WebSockets opened with an API key: a revocation (here or on another instance) resolves the
socket's future with the reason; while the shared counter has not moved a look reads no key; an outage closes
nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from domain.api_keys import ApiKey, hash_key
from domain.errors import DatabaseError
from services.api_keys import ApiKeyService
from services.key_watch import KeyWatcher
from tests.fakes.api_keys import FakeApiKeyStore, FakeCacheGeneration

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FlakyStore(FakeApiKeyStore):
    """The fake store, able to go down."""

    down = False

    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        if self.down:
            raise DatabaseError("find_api_key", "fake database is down")
        return await super().find_by_hash(key_hash)


async def test_a_revocation_on_this_instance_resolves_the_watch_at_once() -> None:
    """With an hour between looks, revoking on the same service still resolves the socket's future now."""
    store = FakeApiKeyStore()
    keys = ApiKeyService(store, None, recheck_s=3600.0, now=lambda: START)
    issued = await keys.create("acme", "ci")
    other = await keys.create("acme", "other")
    with keys.watch(issued.secret) as revoked, keys.watch(other.secret) as untouched:
        await asyncio.sleep(0)
        assert not revoked.done()
        await keys.revoke(issued.key.id)
        assert await asyncio.wait_for(revoked, 2.0) == "API key revoked"
        assert not untouched.done()
    assert untouched.cancelled()
    await keys.aclose()


async def test_another_instances_revocation_is_seen_at_the_next_look_and_idle_looks_read_no_key() -> None:
    """Two services share the store and the counter: B's revocation reaches A's watch at A's next look; looks while
    the counter stands still read nothing from the store."""
    store, counter = FakeApiKeyStore(), FakeCacheGeneration()
    a = ApiKeyService(store, counter, recheck_s=3600.0, now=lambda: START)
    b = ApiKeyService(store, counter, recheck_s=3600.0, now=lambda: START)
    issued = await a.create("acme", "ci")
    watcher = KeyWatcher(store, counter, interval_s=3600.0, now=lambda: START)
    with watcher.watch(hash_key(issued.secret)) as revoked:
        await watcher.look()
        reads = store.reads
        for _ in range(5):
            await watcher.look()
        assert store.reads == reads
        await b.revoke(issued.key.prefix)
        assert not revoked.done()
        await watcher.look()
        assert revoked.done()
        assert revoked.result() == "API key revoked"
    await watcher.aclose()
    await a.aclose()
    await b.aclose()


@pytest.mark.parametrize("counter", [None, "shared"])
async def test_an_outage_closes_nothing_and_the_next_look_decides(counter: str | None) -> None:
    """The database down (and the counter too): no verdict; once back, the revocation is seen."""
    store = FlakyStore()
    generation = FakeCacheGeneration() if counter else None
    keys = ApiKeyService(store, generation, now=lambda: START)
    issued = await keys.create("acme", "ci")
    await keys.revoke(issued.key.id)
    watcher = KeyWatcher(store, generation, interval_s=3600.0, now=lambda: START)

    with watcher.watch(hash_key(issued.secret)) as revoked:
        store.down = True
        if generation is not None:
            generation.down = True
        await watcher.look()
        assert not revoked.done()
        store.down = False
        await watcher.look()
        assert revoked.result() == "API key revoked"
    await watcher.aclose()
    await keys.aclose()
