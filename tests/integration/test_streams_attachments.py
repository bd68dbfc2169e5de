"""Binary attachments over the app's SSE and WebSocket routes: base64 in the JSON by default, a length followed by
one binary frame for a WebSocket that connected with ``?binary=1``, the same bytes on resume."""

from __future__ import annotations

import base64
import inspect
import json
from typing import Any

import pytest
from quart.testing.connections import WebsocketDisconnectError
from quart.typing import TestClientProtocol, TestWebsocketConnectionProtocol

from container import Container
from domain.types import CustomerId, JsonValue, StreamId
from services.streaming.manager import StreamingManager, StreamPublisher
from tests.support.app import auth_headers

ALICE = CustomerId("alice")
TERMINAL = ("done", "error", "cancelled")


def chunk(stream: int, seq: int) -> bytes:
    """Bytes unique to (stream, seq), every byte value included."""
    return bytes([stream, seq]) + bytes(range(256)) + bytes([seq]) * (seq * 37)


async def _media_stream(container: Container, tag: int, chunks: int = 3) -> StreamId:
    """A finished stream: ``start``, ``chunks`` audio events with attachments, ``done``."""
    manager = container.streaming_manager()
    if inspect.isawaitable(manager):  # an async Resource: the provider hands back its (resolved) future
        manager = await manager
    assert isinstance(manager, StreamingManager)

    async def produce(publisher: StreamPublisher) -> dict[str, JsonValue]:
        await publisher.publish("start", {"model": "fake/audio"})
        for index in range(chunks):
            await publisher.publish("audio", {"format": "pcm16"}, chunk(tag, index + 2))
        return {"chunks": chunks}

    stream_id = await manager.start(owner=ALICE, producer=produce)
    async for event in manager.subscribe(stream_id, owner=ALICE):
        if event.terminal:
            break
    return stream_id


def _sse_messages(body: str | bytes) -> list[dict[str, Any]]:
    text = body.decode() if isinstance(body, bytes) else body
    return [json.loads(line[6:]) for line in text.split("\n") if line.startswith("data: ")]


async def test_sse_carries_attachments_as_base64_and_resume_gives_the_same_bytes(
    client: TestClientProtocol, container: Container
) -> None:
    """Each audio event's data_b64 decodes to its bytes, data_bytes is their length; a resume after seq 2 gets
    seq 3's bytes again, identical."""
    stream_id = await _media_stream(container, 1)
    response = await client.get(f"/api/v1/streams/{stream_id}/events", headers=auth_headers())
    messages = _sse_messages(await response.get_data())
    audio = [m for m in messages if m["type"] == "audio"]
    assert [base64.b64decode(m["data_b64"]) for m in audio] == [chunk(1, seq) for seq in (2, 3, 4)]
    assert [m["data_bytes"] for m in audio] == [len(chunk(1, seq)) for seq in (2, 3, 4)]
    assert "data_b64" not in messages[0]
    resumed = await client.get(f"/api/v1/streams/{stream_id}/events", headers={**auth_headers(), "Last-Event-ID": "2"})
    again = _sse_messages(await resumed.get_data())
    assert [m["seq"] for m in again] == [3, 4, 5]
    assert base64.b64decode(again[0]["data_b64"]) == chunk(1, 3)


async def _frames(ws: TestWebsocketConnectionProtocol, streams: int) -> list[str | bytes]:
    """Every frame until ``streams`` terminal events arrived (pings left out)."""
    frames: list[str | bytes] = []
    ended = 0
    while ended < streams:
        frame = await ws.receive()
        if isinstance(frame, str):
            message = json.loads(frame)
            if message["type"] == "ping":
                continue
            ended += message["type"] in TERMINAL
        frames.append(frame)
    return frames


async def test_websocket_without_opt_in_gets_base64(client: TestClientProtocol, container: Container) -> None:
    """A socket that did not ask for binary frames gets text frames only, attachments as data_b64."""
    stream_id = await _media_stream(container, 2)
    async with client.websocket(f"/api/v1/ws/streams?stream_id={stream_id}", headers=auth_headers()) as ws:
        frames = await _frames(ws, 1)
    assert all(isinstance(frame, str) for frame in frames)
    audio = [json.loads(f) for f in frames if json.loads(f)["type"] == "audio"]
    assert [base64.b64decode(m["data_b64"]) for m in audio] == [chunk(2, seq) for seq in (2, 3, 4)]


async def test_binary_websocket_gets_each_attachment_as_the_frame_right_after_its_event(
    client: TestClientProtocol, container: Container
) -> None:
    """With ?binary=1, an event with an attachment is a JSON frame with data_bytes (no data_b64) followed at once by
    one binary frame with exactly those bytes, even with two streams delivered over the socket at the same time;
    resuming over a new socket gives the same bytes."""
    first, second = await _media_stream(container, 3, chunks=6), await _media_stream(container, 4, chunks=6)
    async with client.websocket("/api/v1/ws/streams?binary=1", headers=auth_headers()) as ws:
        await ws.send(json.dumps({"type": "subscribe", "stream_id": first}))
        await ws.send(json.dumps({"type": "subscribe", "stream_id": second}))
        frames = await _frames(ws, 2)
    tags = {first: 3, second: 4}
    seen: dict[str, list[int]] = {first: [], second: []}
    index = 0
    while index < len(frames):
        frame = frames[index]
        assert isinstance(frame, str), f"a binary frame without its event at {index}"
        message = json.loads(frame)
        seen[message["stream_id"]].append(message["seq"])
        assert "data_b64" not in message
        if message["type"] == "audio":
            attachment = frames[index + 1]
            assert attachment == chunk(tags[message["stream_id"]], message["seq"])
            assert message["data_bytes"] == len(attachment)
            index += 1
        index += 1
    assert seen == {first: [1, 2, 3, 4, 5, 6, 7, 8], second: [1, 2, 3, 4, 5, 6, 7, 8]}
    url = f"/api/v1/ws/streams?stream_id={first}&after=3&binary=1"
    async with client.websocket(url, headers=auth_headers()) as ws:
        resumed = await _frames(ws, 1)
    assert resumed[1] == chunk(3, 4)
    assert json.loads(resumed[0])["seq"] == 4


@pytest.mark.parametrize("value", ["yes", "2"])
async def test_a_bad_binary_query_closes_the_socket_with_4422(client: TestClientProtocol, value: str) -> None:
    """?binary= takes 1 or 0; anything else is refused as invalid input (close 4422), not ignored."""
    async with client.websocket(f"/api/v1/ws/streams?binary={value}", headers=auth_headers()) as ws:
        with pytest.raises(WebsocketDisconnectError) as closed:
            await ws.receive()
    assert closed.value.args[0] == 4422
