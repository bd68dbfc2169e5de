"""Driven adapter: the Redis client as a container resource (``None`` when Redis is not configured) and its check.

A Redis restart or failover leaves every pooled connection dead. Commands are retried on connection errors (with
jittered backoff, ``redis.retry_attempts`` times) and a connection idle longer than ``redis.health_check_interval_s``
is PINGed before use, so a restart costs at most the commands in flight at that moment instead of failing once per
pooled connection. Timeouts are not retried: a command that timed out may have run, and a retried append would then
be written twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

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
        retry=Retry(
            ExponentialWithJitterBackoff(base=0.05, cap=1.0),
            settings.retry_attempts,
            supported_errors=(RedisConnectionError,),
        ),
        health_check_interval=settings.health_check_interval_s,
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
