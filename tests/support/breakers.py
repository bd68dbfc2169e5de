"""Test helper: a RedisBreakerStore on the test Redis under a unique key prefix, its keys deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from adapters.redis.breakers import RedisBreakerStore
from tests.support.services import require_service

__all__ = ["redis_breaker_stores"]


@asynccontextmanager
async def redis_breaker_stores(count: int = 1) -> AsyncIterator[list[RedisBreakerStore]]:
    """``count`` stores sharing one prefix, each with its own client (as separate instances would be); skips
    without Redis."""
    url = require_service("redis")
    clients = [Redis.from_url(url, decode_responses=False) for _ in range(count)]
    prefix = f"test:breaker:{uuid.uuid4().hex}:"
    try:
        yield [RedisBreakerStore(client, prefix=prefix) for client in clients]
    finally:
        keys = [key async for key in clients[0].scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await clients[0].delete(*keys)
        for client in clients:
            await client.aclose()
