"""Binary attachments through the StreamingManager and the delivery helpers: publish, fan-out, resume, the local
tail, the size bound, and the wire forms (base64 in JSON, or a length before a binary frame)."""

from __future__ import annotations

import base64
import json

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from domain.streaming import AttachmentTooLargeError, Outcome, StreamEvent, check_attachment
from domain.types import StreamId
from entrypoints.http.streaming import event_message, sse_frame
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig
from tests.fakes.streaming import ALICE, RemoteProducer, collect

CHUNK = bytes(range(256))


def _manager(log: InMemoryStreamLog | None = None, **config: object) -> StreamingManager:
    return StreamingManager(log if log is not None else InMemoryStreamLog(), config=StreamingConfig(**config))  # type: ignore[arg-type]


async def test_published_attachments_reach_every_reader_and_a_resume() -> None:
    """Two readers and a later resume all get each event's own bytes; events without one carry None."""
    manager = _manager()
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    assert await producer.emit("start", {"model": "m"}) == 1
    assert await producer.emit("audio", {"format": "pcm16"}, CHUNK) == 2
    assert await producer.emit("audio", {"format": "pcm16"}, CHUNK[::-1]) == 3
    producer.finish()
    first, second = await collect(manager, stream_id), await collect(manager, stream_id)
    assert [e.data for e in first] == [None, CHUNK, CHUNK[::-1], None]
    assert first == second
    assert [e.data for e in await collect(manager, stream_id, after=2)] == [CHUNK[::-1], None]
    await manager.aclose()


async def test_the_local_tail_serves_attachments_too() -> None:
    """With local_tail on, readers of a locally produced stream get the bytes from the tail, as the log holds them."""
    log = InMemoryStreamLog()
    manager = _manager(log, local_tail=8)
    stream_id = await manager.open(owner=ALICE)
    token = await manager.create_completion_token(stream_id)
    publisher = manager.publisher(token)
    await publisher.publish("audio", {}, b"\x00\x01")
    run = manager._runs[stream_id]
    assert run.tail[1].data == b"\x00\x01"
    reader = manager.subscribe(stream_id, owner=ALICE)
    assert (await anext(reader)).data == b"\x00\x01"
    await publisher.publish("audio", {}, b"\xff")  # served from the tail: the reader has read the log once
    assert (await anext(reader)).data == b"\xff"
    await reader.aclose()  # type: ignore[attr-defined]
    await manager.signal_completion(token, Outcome.done())
    assert [e.data for e in (await log.read(stream_id, 0, 10)).events] == [b"\x00\x01", b"\xff", None]
    await manager.aclose()


async def test_the_manager_refuses_an_oversized_attachment_before_the_log() -> None:
    """Past streaming.max_attachment_bytes the publish raises AttachmentTooLargeError and the log is untouched,
    even when the log itself would take it; the stream stays open for the producer's next event."""
    log = InMemoryStreamLog(max_attachment_bytes=1_000_000)
    manager = _manager(log, max_attachment_bytes=16)
    stream_id = await manager.open(owner=ALICE)
    token = await manager.create_completion_token(stream_id)
    publisher = manager.publisher(token)
    with pytest.raises(AttachmentTooLargeError) as refused:
        await publisher.publish("audio", {}, b"x" * 17)
    assert refused.value.context == {"stage": "publish", "stream_id": stream_id, "size_bytes": 17, "limit_bytes": 16}
    with pytest.raises(AttachmentTooLargeError):
        await manager.publish(stream_id, "audio", {}, b"x" * 17)
    assert (await log.read(stream_id, 0, 10)).last_seq == 0
    assert await publisher.publish("audio", {}, b"x" * 16) == 1
    await manager.signal_completion(token, Outcome.done())
    await manager.aclose()


async def test_a_producer_that_sends_too_much_ends_with_a_typed_error() -> None:
    """The refusal reaches the producer; if it lets it propagate, the stream ends with `attachment_too_large`."""
    manager = _manager(max_attachment_bytes=4)
    producer = RemoteProducer()
    stream_id = await manager.start(owner=ALICE, producer=producer)
    refused = await producer.emit("audio", {}, b"12345")
    assert isinstance(refused, AttachmentTooLargeError)
    events = await collect(manager, stream_id)
    assert [e.type for e in events] == ["error"]
    assert (events[0].payload["code"], events[0].payload["retryable"]) == ("attachment_too_large", False)
    await manager.aclose()


def test_check_attachment_bounds_the_length_only() -> None:
    """None and anything up to the limit pass; one byte more is refused with the sizes in the error."""
    check_attachment("st_x", None, 0)
    check_attachment("st_x", b"", 0)
    check_attachment("st_x", b"abc", 3)
    with pytest.raises(AttachmentTooLargeError) as refused:
        check_attachment("st_x", b"abcd", 3)
    assert (refused.value.size, refused.value.limit) == (4, 3)
    assert "4 bytes" in refused.value.message


def test_the_repr_of_an_event_shows_the_attachment_length_not_its_bytes() -> None:
    """A 1 MiB chunk must not end up in a log line through repr()."""
    event = StreamEvent(StreamId("st_1"), 1, "audio", {}, 0.0, b"\x00" * 1024)
    assert "data=<1024 bytes>" in repr(event)
    assert "data=None" in repr(StreamEvent(StreamId("st_1"), 2, "text"))


# --- the wire forms ---------------------------------------------------------------------------------------------

AUDIO = StreamEvent(StreamId("st_1"), 4, "audio", {"format": "pcm16", "data_bytes": 1, "data_b64": "spoof"}, 1.0, CHUNK)


def test_an_attachment_travels_as_base64_with_its_length() -> None:
    """data_b64 is standard base64 of the exact bytes and data_bytes their length; payload keys cannot spoof them."""
    message = event_message(AUDIO)
    assert message["data_bytes"] == 256
    assert base64.b64decode(message["data_b64"], validate=True) == CHUNK
    assert {k: v for k, v in message.items() if not k.startswith("data_")} == {
        "format": "pcm16",
        "type": "audio",
        "seq": 4,
        "stream_id": "st_1",
    }


def test_for_binary_frames_the_message_has_only_the_length() -> None:
    """A client taking binary frames gets data_bytes and no data_b64 (the bytes follow in their own frame)."""
    message = event_message(AUDIO, binary=True)
    assert message["data_bytes"] == 256
    assert "data_b64" not in message


def test_an_event_without_attachment_has_no_attachment_keys() -> None:
    """No data: neither key, even when the payload has them (a client would wait for bytes that never come)."""
    plain = StreamEvent(StreamId("st_1"), 1, "text", {"text": "hi", "data_bytes": 9}, 1.0)
    assert event_message(plain) == {"text": "hi", "type": "text", "seq": 1, "stream_id": "st_1"}
    assert event_message(plain, binary=True) == event_message(plain)


def test_an_empty_attachment_is_still_announced() -> None:
    """b"" is an attachment of length 0 (data_bytes 0, data_b64 ""), unlike None."""
    empty = StreamEvent(StreamId("st_1"), 1, "audio", {}, 1.0, b"")
    assert (event_message(empty)["data_bytes"], event_message(empty)["data_b64"]) == (0, "")


def test_the_sse_frame_carries_the_base64_attachment_on_its_one_data_line() -> None:
    """The SSE frame's data line is the JSON message with data_b64 (base64 has no newline to break the frame)."""
    frame = sse_frame(AUDIO).decode()
    lines = frame.split("\n")
    assert lines[:2] == ["id: 4", "event: audio"]
    assert frame.count("\n") == 4
    assert base64.b64decode(json.loads(lines[2][6:])["data_b64"]) == CHUNK
