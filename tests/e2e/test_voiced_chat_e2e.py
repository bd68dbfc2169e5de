"""Voiced chat against a real server (the memory log; and two workers sharing Redis): an SSE client and a WebSocket
client read the same voiced stream; a client dropped mid-audio resumes and gets exactly the rest; the audio joins into
one MP3 whose length is the segments'."""

from __future__ import annotations

import base64
import io
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import av
import httpx
import pytest
from httpx_sse import connect_sse
from websockets.sync.client import connect

from tests.e2e.streams_client import read_sse
from tests.support.app import auth_headers
from tests.support.server import RunningServer, running_server
from tests.support.services import require_service

STORY = "Once upon a time there was a gateway. It spoke, and the text came first! Then the voice followed."
TERMINAL = ("done", "error", "cancelled")


@pytest.fixture(scope="module", params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One process on the memory log; or two worker processes sharing Redis, so a client's connections (the chat,
    the WebSocket, the resume) may land on different processes."""
    env: dict[str, str] = {}
    if request.param == "redis":
        env = {
            "SWITCHYARD_STREAMING_BACKEND": "redis",
            "SWITCHYARD_REDIS_URL": require_service("redis"),
            "SWITCHYARD_STREAMING_REDIS_PREFIX": f"e2e:{uuid.uuid4().hex}:",
            "SWITCHYARD_HTTP_WORKERS": "2",
        }
    with running_server(tmp_path_factory.mktemp(f"voiced-{request.param}"), env) as running:
        yield running


def chat_body() -> dict[str, Any]:
    return {
        "model": "fake/slow",  # 50 ms between words: the stream is live while the clients join and drop
        "messages": [{"role": "user", "content": STORY}],
        "stream": True,
        "speech": {"model": "fake/speech", "voice": "nova", "format": "mp3"},
    }


def read_websocket(server: RunningServer, stream_id: str, into: list[dict[str, Any]]) -> None:
    """Every event of the stream over ``WS /api/v1/ws/streams?binary=1`` (attachments as binary frames)."""
    url = server.base_url.replace("http://", "ws://") + "/api/v1/ws/streams?binary=1"
    with connect(url, additional_headers=auth_headers(), open_timeout=5) as ws:
        ws.send(json.dumps({"type": "resume", "stream_id": stream_id, "after": 0}))
        while not into or into[-1]["type"] not in TERMINAL:
            message = json.loads(ws.recv(timeout=15))
            if message["type"] == "ping":
                continue
            if "data_bytes" in message:
                frame = ws.recv(timeout=15)
                assert isinstance(frame, bytes)
                assert len(frame) == message["data_bytes"]
                message["data_b64"] = base64.b64encode(frame).decode()  # compared with SSE's as they came
            into.append(message)


def seconds(mp3: bytes) -> float:
    """The decoded length of an MP3 byte stream, every packet decoded (a broken one fails the test)."""
    samples, rate = 0, 0
    with av.open(io.BytesIO(mp3), mode="r", format="mp3") as container:
        for packet in container.demux(audio=0):
            for frame in packet.decode():
                samples += int(frame.samples)
                rate = int(frame.sample_rate)
    return samples / rate


def drop_mid_audio_and_resume(server: RunningServer, stream_id: str, into: list[dict[str, Any]]) -> None:
    """Read until the second segment's audio began, drop the connection, resume with ``Last-Event-ID``."""
    with (
        httpx.Client(timeout=15) as client,
        connect_sse(
            client, "GET", f"{server.base_url}/api/v1/streams/{stream_id}/events", headers=auth_headers()
        ) as source,
    ):
        for frame in source.iter_sse():
            if frame.data:
                into.append(json.loads(frame.data))
                if into[-1]["type"] == "audio" and into[-1]["segment"] >= 1:
                    break
    into.append({"type": "dropped"})
    into.extend(read_sse(server.base_url, stream_id, last_event_id=into[-2]["seq"]))


def test_sse_and_websocket_clients_see_the_same_voiced_stream(server: RunningServer) -> None:
    """The SSE response of ``POST /api/v1/chat``, a WebSocket reader, and a reader dropped mid-audio that resumes with
    ``Last-Event-ID`` all get the same seq-ordered events; the audio joins into one MP3 as long as its segments."""
    socket_events: list[dict[str, Any]] = []
    resumed: list[dict[str, Any]] = []
    with (
        httpx.Client(timeout=30) as client,
        connect_sse(client, "POST", f"{server.base_url}/api/v1/chat", json=chat_body(), headers=auth_headers()) as sse,
    ):
        assert sse.response.status_code == 200
        stream_id = sse.response.headers["X-Stream-ID"]
        readers = [
            threading.Thread(target=read_websocket, args=(server, stream_id, socket_events)),
            threading.Thread(target=drop_mid_audio_and_resume, args=(server, stream_id, resumed)),
        ]
        for reader in readers:
            reader.start()
        events = [json.loads(frame.data) for frame in sse.iter_sse() if frame.data]
        for reader in readers:
            reader.join(timeout=30)
    assert events[-1]["type"] == "done", events[-1]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert socket_events == events
    cut = resumed.index({"type": "dropped"})
    assert resumed[cut - 1]["type"] == "audio"
    assert resumed[:cut] + resumed[cut + 1 :] == events  # before the drop, then exactly the rest

    audio = [e for e in events if e["type"] == "audio"]
    assert audio[0]["seq"] > next(e["seq"] for e in events if e["type"] == "text")
    clip = b"".join(base64.b64decode(e["data_b64"]) for e in audio)
    segments: dict[int, bytes] = {}
    for event in audio:
        segments[event["segment"]] = segments.get(event["segment"], b"") + base64.b64decode(event["data_b64"])
    assert len(segments) == events[-1]["speech"]["segments"] >= 3
    assert seconds(clip) == pytest.approx(sum(seconds(part) for part in segments.values()), abs=1e-6)
    spoken = "".join(e["text"] for e in audio if e["final_chunk"])
    assert seconds(clip) >= 0.06 * len(spoken)  # the fake speaks 60 ms a character
