"""RedisStreamLog against a real Redis (db 15, a unique key prefix per test): layout, TTLs, MAXLEN, fencing across
clients, cross-client wake-ups, and the error it raises when Redis is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from adapters.redis.stream_log import RedisStreamLog
from domain.errors import CompletionOwnershipError, ServiceUnavailableError
from domain.streaming import Outcome, StreamInfo
from domain.types import StreamId
from tests.fakes.streaming import ALICE, redis_log
from tests.support.services import require_service

pytestmark = pytest.mark.redis
SID = StreamId("st_integration")


@pytest.fixture
async def log() -> AsyncIterator[RedisStreamLog]:
    async with redis_log(require_service("redis"), max_events=50, ttl_s=60) as instance:
        await instance.create(StreamInfo(SID, ALICE))
        yield instance


async def test_keys_are_hash_tagged_and_expire(log: RedisStreamLog) -> None:
    """Both keys share the {stream id} hash tag and carry the TTL, refreshed by every write."""
    gen = await log.advance_generation(SID)
    await log.append(SID, gen, "text", {"text": "x"})
    client: Redis = log._client
    meta, stream = log._keys(SID)
    assert "{st_integration}" in meta
    assert "{st_integration}" in stream
    assert 0 < await client.pttl(meta) <= 60_000
    assert 0 < await client.pttl(stream) <= 60_000
    assert await client.xlen(stream) == 1


async def test_approximate_maxlen_bounds_the_stream(log: RedisStreamLog) -> None:
    """Appending far past max_events keeps the Redis stream near the bound; seqs keep counting."""
    gen = await log.advance_generation(SID)
    for i in range(600):
        await log.append(SID, gen, "text", {"i": i})
    _, stream = log._keys(SID)
    length = await log._client.xlen(stream)
    assert 50 <= length <= 250
    read = await log.read(SID, 0, 10)
    assert read.last_seq == 600
    assert read.missing_after(0)


async def test_a_superseded_writer_on_another_client_is_fenced(log: RedisStreamLog) -> None:
    """Process B takes over (new generation): process A's append and finalize are refused by the Lua fence."""
    old = await log.advance_generation(SID)
    other = RedisStreamLog(Redis.from_url(require_service("redis")), prefix=log._prefix)
    try:
        new = await other.advance_generation(SID)
        with pytest.raises(CompletionOwnershipError):
            await log.append(SID, old, "text", {})
        with pytest.raises(CompletionOwnershipError):
            await log.finalize(SID, old, Outcome.done())
        assert (await other.finalize(SID, new, Outcome.cancelled("takeover"))).seq == 1
    finally:
        await other._client.aclose()


async def test_a_reader_on_another_client_wakes_on_append(log: RedisStreamLog) -> None:
    """XREAD BLOCK on one client returns when another client appends."""
    gen = await log.advance_generation(SID)
    other = RedisStreamLog(Redis.from_url(require_service("redis")), prefix=log._prefix)
    try:
        waiter = asyncio.create_task(other.wait(SID, 0, 2.0))
        await asyncio.sleep(0.05)
        await log.append(SID, gen, "text", {"text": "wake"})
        assert await asyncio.wait_for(waiter, 3.0) is True
        assert [e.payload for e in (await other.read(SID, 0, 10)).events] == [{"text": "wake"}]
    finally:
        await other._client.aclose()


async def test_redis_down_raises_service_unavailable() -> None:
    """A connection failure surfaces as ServiceUnavailableError, never a redis exception."""
    client = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    try:
        with pytest.raises(ServiceUnavailableError):
            await RedisStreamLog(client).get(SID)
    finally:
        await client.aclose()


async def test_a_cancelled_operation_never_completes_as_if_it_had_not_been(log: RedisStreamLog) -> None:
    """A read or get cancelled in flight ends with CancelledError, never with a result: a reader cut off stops.

    A swallowed cancellation let a cancelled reader of the state machine go on waiting forever (the Redis hang)."""
    gen = await log.advance_generation(SID)
    await log.append(SID, gen, "text", {})
    swallowed: list[tuple[str, int]] = []
    for _ in range(3):
        for name, call in (("read", lambda: log.read(SID, 0, 10)), ("get", lambda: log.get(SID))):
            for ticks in range(8):
                task = asyncio.ensure_future(call())
                for _ in range(ticks):
                    await asyncio.sleep(0)
                if task.done():
                    continue
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    continue
                swallowed.append((name, ticks))
    assert swallowed == []


async def test_an_attachment_is_stored_raw_in_its_own_entry_field(log: RedisStreamLog) -> None:
    """The entry's `d` field holds the attachment's bytes as they are (no base64, no JSON); an event without one has
    no `d` field at all, and a reader on another client gets the same bytes."""
    gen = await log.advance_generation(SID)
    data = bytes(range(256)) * 4
    await log.append(SID, gen, "audio", {"format": "pcm16"}, data)
    await log.append(SID, gen, "text", {"text": "no attachment"})
    _, stream = log._keys(SID)
    entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await log._client.xrange(stream))
    assert entries[0][1][b"d"] == data
    assert entries[0][1][b"p"] == b'{"format":"pcm16"}'
    assert b"d" not in entries[1][1]
    other = RedisStreamLog(Redis.from_url(require_service("redis")), prefix=log._prefix)
    try:
        assert [e.data for e in (await other.read(SID, 0, 10)).events] == [data, None]
    finally:
        await other._client.aclose()
