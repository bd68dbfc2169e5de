"""The StreamLog producer-lease contract (renew, reap), run against the in-memory log and Redis Streams.

Leases are short here (0.3 s) and the Redis log keeps them on the server's clock, so the tests wait real time for a
lease to lapse; the waits bound how long a lapse may take to be seen, they do not measure speed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from domain.errors import CompletionOwnershipError, NotFoundError
from domain.streaming import Outcome, StreamClosedError, StreamInfo, producer_lost
from domain.types import StreamId
from ports.stream_log import StreamLog
from tests.fakes.streaming import ALICE, redis_log
from tests.support.services import require_service

SID = StreamId("st_lease")
LEASE_S = 0.3
LOST = producer_lost(LEASE_S)


@pytest.fixture(params=["memory", "redis"])
async def log(request: pytest.FixtureRequest) -> AsyncIterator[StreamLog]:
    if request.param == "memory":
        memory = InMemoryStreamLog(lease_s=LEASE_S)
        await memory.create(StreamInfo(SID, ALICE, "chat"))
        yield memory
        return
    async with redis_log(require_service("redis"), lease_s=LEASE_S) as redis:
        await redis.create(StreamInfo(SID, ALICE, "chat"))
        yield redis


async def _lapse() -> None:
    await asyncio.sleep(LEASE_S * 2)


async def test_a_new_generation_holds_a_lease_that_writes_extend(log: StreamLog) -> None:
    """No lease before a token is issued; ``advance_generation`` starts one and each append pushes it later."""
    info = await log.get(SID)
    assert info is not None
    assert info.lease_until == 0
    gen = await log.advance_generation(SID)
    first = await log.get(SID)
    assert first is not None
    assert time.time() < first.lease_until < time.time() + LEASE_S + 1
    await asyncio.sleep(0.05)
    await log.append(SID, gen, "text", {"text": "a"})
    second = await log.get(SID)
    assert second is not None
    assert second.lease_until > first.lease_until
    read = await log.read(SID, 0, 10)
    assert read.lease_until == pytest.approx(second.lease_until)


async def test_renew_keeps_a_silent_producer_alive(log: StreamLog) -> None:
    """A producer that only renews is never reaped, however long it stays silent."""
    gen = await log.advance_generation(SID)
    for _ in range(6):
        await asyncio.sleep(LEASE_S / 3)
        await log.renew(SID, gen)
        assert await log.reap(SID, LOST) is None
    assert (await log.read(SID, 0, 10)).status == "open"


async def test_renew_is_fenced_like_a_write(log: StreamLog) -> None:
    """A stale or future generation cannot renew; nor can anyone renew an ended or unknown stream."""
    old = await log.advance_generation(SID)
    new = await log.advance_generation(SID)
    with pytest.raises(CompletionOwnershipError):
        await log.renew(SID, old)
    with pytest.raises(CompletionOwnershipError):
        await log.renew(SID, new + 1)  # a generation never issued, like a stale one
    await log.finalize(SID, new, Outcome.done())
    with pytest.raises(StreamClosedError):
        await log.renew(SID, new)
    with pytest.raises(NotFoundError):
        await log.renew(StreamId("st_unknown"), 1)


async def test_reap_ends_a_lapsed_stream_once_and_fences_its_producer(log: StreamLog) -> None:
    """After the lease lapses, reap writes one ``producer_lost`` error; the lapsed producer can no longer write."""
    gen = await log.advance_generation(SID)
    await log.append(SID, gen, "text", {"text": "a"})
    assert await log.reap(SID, LOST) is None  # the lease is live
    await _lapse()
    event = await log.reap(SID, LOST)
    assert event is not None
    assert (event.seq, event.type, event.payload["code"], event.payload["retryable"]) == (
        2,
        "error",
        "producer_lost",
        True,
    )
    assert event.data is None  # a terminal event never carries an attachment
    assert await log.reap(SID, LOST) is None  # once
    with pytest.raises((CompletionOwnershipError, StreamClosedError)):
        await log.append(SID, gen, "text", {"text": "late"})
    with pytest.raises(CompletionOwnershipError):
        await log.finalize(SID, gen, Outcome.done())
    info = await log.get(SID)
    assert info is not None
    assert (info.status, info.last_seq, info.generation) == ("error", 2, gen + 1)  # fenced: a new generation
    assert [e.type for e in (await log.read(SID, 0, 10)).events] == ["text", "error"]


async def test_concurrent_reapers_write_one_terminal_event(log: StreamLog) -> None:
    """Two instances reaping the same lapsed stream at once: exactly one terminal event."""
    await log.advance_generation(SID)
    await _lapse()
    results = await asyncio.gather(*(log.reap(SID, LOST) for _ in range(5)))
    assert sum(result is not None for result in results) == 1
    assert [e.type for e in (await log.read(SID, 0, 10)).events] == ["error"]


async def test_reap_leaves_unleased_and_ended_streams_alone(log: StreamLog) -> None:
    """A stream nobody holds a token for is not reaped; nor is one that already ended."""
    await _lapse()
    assert await log.reap(SID, LOST) is None
    gen = await log.advance_generation(SID)
    await log.finalize(SID, gen, Outcome.done())
    await _lapse()
    assert await log.reap(SID, LOST) is None
    with pytest.raises(NotFoundError):
        await log.reap(StreamId("st_unknown"), LOST)
