"""1,000 concurrent streams, each read by two consumers (one from the start, one joining late), lose nothing.

In process against the StreamingManager (HTTP for a thousand streams is too slow on a 2-core CI box; the HTTP path
is covered by the SSE/WebSocket end-to-end tests), on both stream-log backends.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping

import pytest

from domain.streaming import StreamEvent
from domain.types import JsonValue, StreamId
from services.streaming.manager import StreamingManager, StreamPublisher
from services.streaming.runs import StreamingConfig
from tests.fakes.streaming import ALICE, collect, stream_log

STREAMS = 1000
EVENTS = 20


async def _produce(publisher: StreamPublisher) -> Mapping[str, JsonValue]:
    rng = random.Random(publisher.stream_id)
    for index in range(EVENTS):
        await publisher.publish("text", {"index": index, "stream": publisher.stream_id})
        if rng.random() < 0.3:
            await asyncio.sleep(rng.random() / 100)
    return {"events": EVENTS}


def _check(stream_id: StreamId, events: list[StreamEvent], after: int) -> None:
    assert [e.seq for e in events] == list(range(after + 1, EVENTS + 2)), stream_id
    assert [e.payload["index"] for e in events[:-1]] == list(range(after, EVENTS))
    assert all(e.payload["stream"] == stream_id for e in events[:-1])
    assert events[-1].type == "done"


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_a_thousand_concurrent_streams_complete_exactly(backend: str) -> None:
    """Every consumer of every stream gets every event once, in order, then the one `done`."""
    async with stream_log(backend) as log:
        tail = 256 if backend == "redis" else 0  # as the container configures it
        config = StreamingConfig(stall_timeout_s=60, resume_grace_s=60, local_tail=tail)
        manager = StreamingManager(log, config=config)
        ids = await asyncio.gather(*(manager.start(owner=ALICE, producer=_produce) for _ in range(STREAMS)))

        async def late(stream_id: StreamId) -> tuple[int, list[StreamEvent]]:
            after = random.randrange(EVENTS)
            await asyncio.sleep(random.random() / 50)
            return after, await collect(manager, stream_id, after=after)

        early = asyncio.gather(*(collect(manager, sid) for sid in ids))
        joined = asyncio.gather(*(late(sid) for sid in ids))
        firsts, lates = await asyncio.wait_for(asyncio.gather(early, joined), 100)
        for stream_id, events, (after, rest) in zip(ids, firsts, lates, strict=True):
            _check(stream_id, events, 0)
            _check(stream_id, rest, after)
        assert manager.active_streams == 0
        await manager.aclose()
