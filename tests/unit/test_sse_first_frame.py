"""SSE framing as an SSE client library reads it: the ``retry:`` hint rides in the first real frame, so every frame a
client like ``httpx-sse`` yields carries JSON data (no empty opening event that breaks the ``sse.json()`` loop)."""

from __future__ import annotations

import httpx
from httpx_sse import EventSource

from adapters.memory.stream_log import InMemoryStreamLog
from entrypoints.http.streaming import DeliveryOptions, _sse_body
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig
from tests.fakes.streaming import ALICE, RemoteProducer


def _events(body: bytes) -> EventSource:
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    return EventSource(response)


async def test_every_frame_parses_as_json_and_the_first_carries_the_retry_hint() -> None:
    """httpx-sse yields only events with JSON data; the first one holds `retry`, the later ones none."""
    manager = StreamingManager(InMemoryStreamLog())
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    for i in range(3):
        await producer.emit("text", {"text": f"t{i}"})
    producer.finish()
    body = b"".join([chunk async for chunk in _sse_body(manager, stream_id, ALICE, 0, DeliveryOptions(retry_ms=2500))])
    frames = list(_events(body).iter_sse())
    assert [sse.json()["type"] for sse in frames] == ["text", "text", "text", "done"]
    assert [sse.retry for sse in frames] == [2500, None, None, None]
    assert body.startswith(b"retry: 2500\nid: 1\n")
    await manager.aclose()


async def test_a_resumed_response_also_opens_with_the_hint_in_its_first_event() -> None:
    """Resuming after seq 2: the first frame sent (seq 3) carries `retry`, and nothing is an empty event."""
    manager = StreamingManager(InMemoryStreamLog())
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    for i in range(3):
        await producer.emit("text", {"text": f"t{i}"})
    producer.finish()
    body = b"".join([chunk async for chunk in _sse_body(manager, stream_id, ALICE, 2, DeliveryOptions())])
    frames = list(_events(body).iter_sse())
    assert [(sse.id, sse.retry) for sse in frames] == [("3", 3000), ("4", None)]
    assert all(isinstance(sse.json(), dict) for sse in frames)
    await manager.aclose()


async def test_a_lagging_consumer_notice_is_json_too() -> None:
    """A consumer dropped before any event gets the `disconnect` notice as its first frame, with the hint."""
    manager = StreamingManager(InMemoryStreamLog(), config=StreamingConfig(consumer_buffer=3, read_batch=1))
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    body_iter = _sse_body(manager, stream_id, ALICE, 0, DeliveryOptions(keepalive_s=0.05))
    first = await anext(body_iter)  # idle: a comment, which SSE clients skip
    for i in range(10):
        await producer.emit("text", {"i": i})
    body = first + b"".join([chunk async for chunk in body_iter])
    frames = list(_events(body).iter_sse())
    assert [sse.event for sse in frames] == ["disconnect"]
    assert frames[0].json()["code"] == "consumer_lagged"
    assert frames[0].retry == 3000
    producer.finish()
    await manager.aclose()
