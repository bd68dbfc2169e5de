"""Fakes of the API key ports: an in-memory key store (as strict as the table: unique hash, prefix search) and a
generation counter a test can bump, read-count or take down."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import attrs

from domain.api_keys import ApiKey
from domain.errors import ConflictError, ServiceUnavailableError

__all__ = ["FakeApiKeyStore", "FakeCacheGeneration"]


class FakeApiKeyStore:
    """``ApiKeyStore`` over dicts; ``reads`` counts hash lookups (what a cache saves)."""

    def __init__(self) -> None:
        self.keys: dict[str, ApiKey] = {}
        self.hashes: dict[str, str] = {}
        self.reads = 0

    async def add(self, key: ApiKey, key_hash: str) -> None:
        if key.id in self.keys or key_hash in self.hashes:
            raise ConflictError("an API key with this id or hash exists")
        self.keys[key.id] = key
        self.hashes[key_hash] = key.id

    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        self.reads += 1
        key_id = self.hashes.get(key_hash)
        return self.keys.get(key_id) if key_id is not None else None

    async def find(self, id_or_prefix: str) -> Sequence[ApiKey]:
        return [k for k in self.keys.values() if k.id == id_or_prefix or k.prefix.startswith(id_or_prefix)]

    async def list(self, customer_id: str | None = None) -> Sequence[ApiKey]:
        found = [k for k in self.keys.values() if customer_id is None or k.customer_id == customer_id]
        return sorted(sorted(found, key=lambda k: k.id), key=lambda k: k.created_at, reverse=True)

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        key = self.keys.get(key_id)
        if key is None:
            return None
        if key.revoked_at is None:
            key = self.keys[key_id] = attrs.evolve(key, revoked_at=at)
        return key

    async def touch(self, last_used: Mapping[str, datetime]) -> None:
        for key_id, at in last_used.items():
            key = self.keys.get(key_id)
            if key is not None and (key.last_used_at is None or key.last_used_at < at):
                self.keys[key_id] = attrs.evolve(key, last_used_at=at)


class FakeCacheGeneration:
    """``CacheGeneration`` as a shared integer; several services may share one instance (as instances share Redis)."""

    def __init__(self) -> None:
        self.value = 0
        self.down = False

    async def current(self) -> int:
        if self.down:
            raise ServiceUnavailableError("fake redis is down")
        return self.value

    async def bump(self) -> int:
        if self.down:
            raise ServiceUnavailableError("fake redis is down")
        self.value += 1
        return self.value
