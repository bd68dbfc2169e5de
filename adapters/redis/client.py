"""Driven adapter: the Redis client as a container resource (``None`` when Redis is not configured) and its check."""

from __future__ import annotations

from collections.abc import AsyncIterator

from redis.asyncio import Redis

from settings.model import RedisSettings

__all__ = ["RedisHealthCheck", "redis_resource"]


async def redis_resource(settings: RedisSettings) -> AsyncIterator[Redis | None]:
    """Container resource: a client for ``redis.url``, closed on shutdown; ``None`` when no URL is set."""
    if settings.url is None:
        yield None
        return
    client = Redis.from_url(
        settings.url.reveal(),
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.socket_timeout_s,
        decode_responses=False,
    )
    try:
        yield client
    finally:
        await client.aclose()


class RedisHealthCheck:
    """``PING``."""

    name = "redis"

    def __init__(self, client: Redis) -> None:
        self._client = client

    async def check(self) -> None:
        """Return when Redis answers."""
        await self._client.ping()
