"""Driven adapter: Redis implementation of ``CacheGeneration``, one integer key every instance reads and bumps.

``INCR`` is atomic and the key has no TTL (an expired counter would restart at a value some cache already holds).
Redis errors become ``ServiceUnavailableError``: a reader then trusts nothing it cached, and a revocation that could
not bump the counter answers 503 so the operator repeats it (revoking twice is harmless).
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.errors import ServiceUnavailableError

__all__ = ["RedisCacheGeneration", "redis_cache_generation"]


class RedisCacheGeneration:
    """The counter at ``key`` (missing reads as 0)."""

    def __init__(self, client: Redis, key: str = "switchyard:api_keys:generation") -> None:
        self._client = client
        self._key = key

    async def current(self) -> int:
        try:
            value = await self._client.get(self._key)
        except RedisError as exc:
            raise ServiceUnavailableError("redis is unavailable", context={"service": "redis"}) from exc
        return int(value) if value is not None else 0

    async def bump(self) -> int:
        try:
            return int(await self._client.incr(self._key))
        except RedisError as exc:
            raise ServiceUnavailableError(
                "the key was revoked but the other instances could not be told (redis is unavailable); revoke again",
                context={"service": "redis"},
            ) from exc


def redis_cache_generation(client: Redis | None) -> RedisCacheGeneration | None:
    """The shared counter when Redis is configured; ``None`` (no key cache at all) on the embedded default."""
    return RedisCacheGeneration(client) if client is not None else None
