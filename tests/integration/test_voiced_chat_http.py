"""Voiced chat through the real app and container (fake text and speech vendors): ``speech`` on ``POST
/api/v1/chat`` and ``WS /api/v1/ws/chat``, checked up front, audio events beside the text, one ``done``."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart.typing import TestClientProtocol

from entrypoints.http.app import create_app
from tests.support.app import auth_headers, make_container, make_settings

STORY = "Once upon a time. There was a gateway! It spoke."


def body(speech: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    extra.setdefault("stream", True)
    return {
        "model": "fake/echo",
        "messages": [{"role": "user", "content": STORY}],
        "speech": speech if speech is not None else {"model": "fake/speech", "voice": "alloy", "format": "mp3"},
        **extra,
    }


def sse_events(raw: str) -> list[dict[str, Any]]:
    """The JSON data of every SSE frame that has data (each carries its ``type`` and ``seq``)."""
    events = []
    for frame in raw.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line and not line.startswith(":"))
        if "data" in fields:
            events.append(json.loads(fields["data"]))
    return events


async def test_a_voiced_stream_carries_text_audio_and_one_done(client: TestClientProtocol) -> None:
    """SSE: the text as always, ``audio`` events (base64 attachments) for three segments in order, then one ``done``
    with the speech summary."""
    response = await client.post("/api/v1/chat", json=body(), headers=auth_headers())
    assert response.status_code == 200
    events = sse_events(await response.get_data(as_text=True))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start"
    assert kinds[-1] == "done"
    assert kinds.count("done") == 1
    assert "".join(e["text"] for e in events if e["type"] == "text") == STORY
    audio = [e for e in events if e["type"] == "audio"]
    finals = [e["text"] for e in audio if e["final_chunk"]]
    assert finals == ["Once upon a time.", "There was a gateway!", "It spoke."]
    assert [e["segment"] for e in audio] == sorted(e["segment"] for e in audio)
    assert all(len(base64.b64decode(e["data_b64"])) == e["data_bytes"] for e in audio)
    speech = events[-1]["speech"]
    assert (speech["status"], speech["segments"], speech["format"], speech["voice"]) == ("ok", 3, "mp3", "alloy")
    assert speech["characters"] == sum(map(len, finals))
    assert speech["cost_usd"] == pytest.approx(speech["characters"] * 15.0 / 1e6)


@pytest.mark.parametrize(
    ("request_body", "status", "field"),
    [
        (body(stream=False), 422, "speech"),
        (body({"model": "fake/speech", "voice": "nobody"}), 422, "speech.voice"),
        (body({"model": "fake/speech", "format": "midi"}), 422, "speech.format"),
        (body({"model": "fake/speech", "speed": 10}), 422, "speech.speed"),
        (body({"model": "fake/echo"}), 422, "speech.model"),
        (body({"model": "fake/speech", "voice": "alloy", "tempo": 2}), 422, "$.speech: extra fields found (tempo)"),
        (body({"voice": "alloy"}), 422, "speech.model"),
    ],
)
async def test_bad_speech_is_refused_before_anything_starts(
    client: TestClientProtocol, request_body: dict[str, Any], status: int, field: str
) -> None:
    """Each problem with ``speech`` is an error envelope naming the field, never a started stream."""
    response = await client.post("/api/v1/chat", json=request_body, headers=auth_headers())
    assert response.status_code == status
    assert "X-Stream-ID" not in response.headers
    assert field in json.dumps(await response.get_json())


async def test_the_openapi_document_describes_speech(client: TestClientProtocol) -> None:
    """``ChatRequest.speech`` is in the schema, with the speech model, voice and format."""
    spec = await (await client.get("/openapi.json")).get_json()
    text = json.dumps(spec)
    assert '"speech"' in text
    assert "SpeechOptions" in text


@pytest.fixture
async def ws_client(tmp_path: Path) -> AsyncIterator[TestClientProtocol]:
    container = make_container(make_settings(tmp_path))
    app = create_app(container)
    async with app.test_app():
        yield app.test_client()
    container.unwire()


async def test_the_websocket_gets_audio_as_binary_frames(ws_client: TestClientProtocol) -> None:
    """``WS /api/v1/ws/chat?binary=1``: each audio event's JSON says ``data_bytes`` and its bytes follow in the next
    frame; the stream ends with one ``done``."""
    async with ws_client.websocket("/api/v1/ws/chat?binary=1", headers=auth_headers()) as ws:
        await ws.send(json.dumps({"type": "chat", "id": "v1", "request": body()}))
        accepted = json.loads(await ws.receive())
        assert accepted["type"] == "accepted"
        events: list[dict[str, Any]] = []
        audio = b""
        while not events or events[-1]["type"] not in ("done", "error", "cancelled"):
            message = json.loads(await ws.receive())
            if message["type"] == "ping":
                continue
            events.append(message)
            if message["type"] == "audio":
                frame = await ws.receive()
                assert isinstance(frame, bytes)
                assert len(frame) == message["data_bytes"]
                assert "data_b64" not in message
                audio += frame
    assert events[-1]["type"] == "done"
    assert events[-1]["speech"]["segments"] == 3
    assert audio.startswith(b"ID3")
    assert audio.count(b"ID3") == 1  # later segments drop their tag: one clean MP3 stream
