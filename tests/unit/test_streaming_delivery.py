"""SSE/WebSocket delivery helpers: framing, message shape, cursor parsing, keepalives, the lagging-consumer notice."""

from __future__ import annotations

import asyncio
import json

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from domain.errors import ValidationError
from domain.streaming import StreamEvent
from domain.types import StreamId
from entrypoints.http.routes.streams import parse_cursor
from entrypoints.http.streaming import DeliveryOptions, _sse_body, event_message, sse_frame
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig
from tests.fakes.streaming import ALICE, RemoteProducer

EVENT = StreamEvent(StreamId("st_1"), 7, "text", {"text": "a\nb", "type": "spoofed", "seq": 0}, 1.0)


def test_sse_frame_has_id_event_and_one_data_line() -> None:
    """`id: seq`, `event: type`, one `data:` line of JSON (newlines escaped), blank line."""
    frame = sse_frame(EVENT).decode()
    lines = frame.split("\n")
    assert lines[:2] == ["id: 7", "event: text"]
    assert lines[2].startswith("data: ")
    assert frame.endswith("\n\n")
    assert frame.count("\n") == 4
    assert json.loads(lines[2][6:])["text"] == "a\nb"


def test_event_message_reserved_keys_win_over_the_payload() -> None:
    """A payload cannot spoof type, seq or stream_id."""
    assert event_message(EVENT) == {"text": "a\nb", "type": "text", "seq": 7, "stream_id": "st_1"}


@pytest.mark.parametrize(
    ("header", "query", "expected"), [(None, None, 0), ("5", "9", 5), (None, "9", 9), (" 3 ", None, 3), ("", "2", 2)]
)
def test_cursor_comes_from_last_event_id_then_after(header: str | None, query: str | None, expected: int) -> None:
    """Last-Event-ID wins over ?after; neither means from the start."""
    assert parse_cursor(header, query) == expected


@pytest.mark.parametrize("bad", ["x", "-1", "1.5"])
def test_bad_cursor_is_a_validation_error(bad: str) -> None:
    """A cursor that is not a non-negative integer is a 422 naming the header."""
    with pytest.raises(ValidationError, match="Last-Event-ID"):
        parse_cursor(bad, None)


async def test_sse_body_sends_retry_keepalives_and_a_disconnect_notice_when_lagging() -> None:
    """Keepalives while idle; a lagging consumer gets `event: disconnect`, with the `retry:` hint as its first frame."""
    manager = StreamingManager(InMemoryStreamLog(), config=StreamingConfig(consumer_buffer=3, read_batch=1))
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    body = _sse_body(manager, stream_id, ALICE, 0, DeliveryOptions(keepalive_s=0.05, retry_ms=1234))
    assert await anext(body) == b": keepalive\n\n"  # caught up and idle
    for i in range(10):
        await producer.emit("text", {"i": i})
    chunks = [chunk async for chunk in body]
    assert chunks[-1].startswith(b"retry: 1234\nevent: disconnect\ndata: ")
    notice = json.loads(chunks[-1].split(b"data: ", 1)[1])
    assert (notice["code"], notice["retryable"], notice["resume_after"]) == ("consumer_lagged", True, 0)
    assert len(chunks) == 1  # nothing after the notice: the response ends and the client resumes from seq 0
    producer.finish()
    await manager.aclose()


async def test_a_write_slower_than_the_send_timeout_cuts_the_response_off() -> None:
    """If the client stops reading, the task writing the SSE body is cancelled after send_timeout_s."""
    manager = StreamingManager(InMemoryStreamLog())
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    body = _sse_body(manager, stream_id, ALICE, 0, DeliveryOptions(keepalive_s=5, send_timeout_s=0.1))
    written: list[bytes] = []

    async def writer() -> None:  # stands in for Quart's send loop: the first write never completes
        async for chunk in body:
            written.append(chunk)
            if len(written) == 1:
                await asyncio.Event().wait()

    task = asyncio.create_task(writer())
    await producer.emit("text", {"i": 0})
    done, _ = await asyncio.wait([task], timeout=2.0)
    assert task in done
    assert task.cancelled()
    assert written[0].startswith(b"retry: 3000\nid: 1\n")
    await producer.emit("text", {"i": 1})  # the producer is unaffected
    producer.finish()
    await manager.aclose()
