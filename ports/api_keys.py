"""Driven ports: where issued API keys are kept, and the signal that tells every instance its key cache is stale."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from domain.api_keys import ApiKey

__all__ = ["ApiKeyStore", "CacheGeneration"]


class ApiKeyStore(Protocol):
    """Issued keys by id, by hash (authentication) and by display prefix (revocation by a person)."""

    async def add(self, key: ApiKey, key_hash: str) -> None:
        """Store a new key under its hash."""
        ...

    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key whose hash is ``key_hash`` (revoked and expired ones included), or ``None``."""
        ...

    async def find(self, id_or_prefix: str) -> Sequence[ApiKey]:
        """Keys whose id is ``id_or_prefix`` or whose display prefix starts with it."""
        ...

    async def list(self, customer_id: str | None = None) -> Sequence[ApiKey]:
        """Every key (of ``customer_id`` when given), newest first."""
        ...

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        """Mark the key revoked at ``at`` (an already revoked key keeps its first time); ``None`` when unknown."""
        ...

    async def touch(self, last_used: Mapping[str, datetime]) -> None:
        """Record when keys were last used (never moves a time backwards)."""
        ...


class CacheGeneration(Protocol):
    """A counter shared by every instance: bumped on each key revocation, read before a cached key is trusted."""

    async def current(self) -> int:
        """The counter now (raises when it cannot be read: then nothing cached may be trusted)."""
        ...

    async def bump(self) -> int:
        """Advance the counter (after the change is committed); the new value."""
        ...
