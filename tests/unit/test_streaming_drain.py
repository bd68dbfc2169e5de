"""StreamingManager.drain: the graceful shutdown of the streams one process produces."""

from __future__ import annotations

import asyncio

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from domain.errors import ServiceUnavailableError
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig
from tests.fakes.streaming import ALICE, RemoteProducer, collect, scripted


def _manager() -> StreamingManager:
    return StreamingManager(InMemoryStreamLog(), config=StreamingConfig(poll_s=0.05))


async def test_drain_refuses_new_streams_with_a_retryable_service_unavailable() -> None:
    """Once draining, opening a stream raises a retryable ServiceUnavailableError (a 503 another instance absorbs)."""
    manager = _manager()
    await manager.drain(0.0)
    assert manager.draining
    with pytest.raises(ServiceUnavailableError) as raised:
        await manager.start(owner=ALICE, producer=scripted([("text", {"text": "x"})]))
    assert raised.value.retryable
    await manager.aclose()


async def test_a_stream_that_finishes_within_the_grace_ends_with_done() -> None:
    """A producer that ends during the grace period ends its stream with `done`, not `cancelled`."""
    manager = _manager()
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    reader = asyncio.create_task(collect(manager, stream_id))
    draining = asyncio.create_task(manager.drain(30.0))
    await producer.emit("text", {"text": "late"})  # still publishing while the drain waits
    producer.finish({"finish_reason": "stop"})
    await asyncio.wait_for(draining, 10)  # returns as soon as the last producer ended, long before the grace
    events = await asyncio.wait_for(reader, 10)
    assert [e.type for e in events] == ["text", "done"]
    await manager.aclose()


async def test_streams_still_running_after_the_grace_end_with_cancelled_shutdown() -> None:
    """After the grace, every stream still produced here gets exactly one `cancelled` (reason shutdown) and its
    producer task has stopped by the time drain returns."""
    manager = _manager()
    producers = [RemoteProducer(), RemoteProducer()]
    ids = [await manager.start(owner=ALICE, producer=producer) for producer in producers]
    await producers[0].emit("text", {"text": "a"})
    readers = [asyncio.create_task(collect(manager, stream_id)) for stream_id in ids]
    await manager.drain(0.05)
    assert all(producer.cancelled for producer in producers)
    results = await asyncio.wait_for(asyncio.gather(*readers), 10)
    assert [[e.type for e in events] for events in results] == [["text", "cancelled"], ["cancelled"]]
    assert all(events[-1].payload == {"reason": "shutdown"} for events in results)
    assert manager.active_streams == 0
    await manager.aclose()
