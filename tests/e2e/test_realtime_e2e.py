"""Realtime voice over a real server: `switchyard serve` (Hypercorn) relays a scripted conversation with the fake
realtime model to a WebSocket client (a spoken turn, a text turn, a tool call and its result, then the session's end
with its usage); a client that stops reading is disconnected with ``client_too_slow`` and close code 4408 instead of
being buffered for; an expired token closes the socket with 4401."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Message, Request, TextMessage

from tests.support.app import mint
from tests.support.live_audio import frames, tone_pcm
from tests.support.server import RunningServer, running_server

PATH = "/api/v1/ws/realtime"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {
        "SWITCHYARD_AUTH_LEEWAY_S": "0",
        "SWITCHYARD_REALTIME_WRITE_TIMEOUT_S": "1",
        "SWITCHYARD_REALTIME_OUTBOUND_QUEUE_EVENTS": "256",
    }
    with running_server(tmp_path_factory.mktemp("realtime"), env) as running:
        yield running


@contextlib.contextmanager
def open_session(
    server: RunningServer, session: dict[str, Any], *, ttl_s: float = 3600.0
) -> Iterator[ClientConnection]:
    """A socket to the fake realtime model whose first message (``session.update``) is sent."""
    url = server.base_url.replace("http://", "ws://") + f"{PATH}?model=fake-realtime"
    headers = {"Authorization": f"Bearer {mint(ttl_s=ttl_s)}"}
    with connect(url, proxy=None, open_timeout=5, close_timeout=2, additional_headers=headers, max_size=None) as ws:
        ws.send(json.dumps({"type": "session.update", "session": session}))
        yield ws


def until(ws: ClientConnection, kind: str) -> tuple[list[dict[str, Any]], int]:
    """JSON messages up to and including the first of ``kind``, and the audio bytes received meanwhile."""
    messages: list[dict[str, Any]] = []
    audio = 0
    while True:
        frame = ws.recv(timeout=10)
        if isinstance(frame, bytes):
            audio += len(frame)
            continue
        messages.append(json.loads(frame))
        if messages[-1]["type"] == kind:
            return messages, audio


def until_closed(ws: ClientConnection, timeout: float = 30.0) -> tuple[list[dict[str, Any]], int, int | None]:
    """Every JSON message until the server closes, the audio bytes, and the close code."""
    messages: list[dict[str, Any]] = []
    audio = 0
    while True:
        try:
            frame = ws.recv(timeout=timeout)
        except ConnectionClosed as closed:
            return messages, audio, closed.rcvd.code if closed.rcvd is not None else None
        if isinstance(frame, bytes):
            audio += len(frame)
        else:
            messages.append(json.loads(frame))


def test_a_scripted_conversation_is_relayed(server: RunningServer) -> None:
    """Spoken turn (commit), text turn, tool call and result, then session.end: transcripts, audio as binary frames
    at 24 kHz, turn ends, then usage and done, and a normal close."""
    tools = [{"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {}}}]
    session = {"input_audio": {"sample_rate": 16000}, "turn_detection": "none", "tools": tools, "voice": "alloy"}
    with open_session(server, session) as ws:
        created, _ = until(ws, "session.created")
        assert created[-1]["model"] == "fake/realtime"
        assert created[-1]["output_audio"] == {"format": "pcm16", "sample_rate": 24000}
        for frame in frames(tone_pcm(1.2)):
            ws.send(frame)
        ws.send(json.dumps({"type": "input.commit"}))
        spoken, audio = until(ws, "turn.done")
        heard = [m for m in spoken if m["type"] == "transcript.input"]
        answer = [m for m in spoken if m["type"] == "transcript.output" and m["final"]]
        assert len(heard) == 1
        assert heard[0]["final"]
        assert answer[0]["text"] == f"You said: {heard[0]['text']}"
        assert audio > 0
        assert audio % 2 == 0
        assert spoken[-1]["status"] == "completed"

        ws.send(json.dumps({"type": "input.text", "text": "Use get_weather for Paris"}))
        asked, _ = until(ws, "turn.done")
        [call] = [m for m in asked if m["type"] == "tool.call"]
        assert call["name"] == "get_weather"
        ws.send(json.dumps({"type": "tool.result", "call_id": call["call_id"], "output": "sunny"}))
        answered, audio = until(ws, "turn.done")
        assert [m["text"] for m in answered if m["type"] == "transcript.output" and m["final"]] == [
            "The get_weather tool says: sunny"
        ]
        assert audio > 0

        ws.send(json.dumps({"type": "session.end"}))
        ending, _, code = until_closed(ws)
    assert [m["type"] for m in ending] == ["usage", "done"]
    usage = ending[0]
    assert usage["turns"] == 3
    assert usage["input_audio_seconds"] == pytest.approx(1.2)
    assert usage["output_audio_seconds"] > 0
    assert usage["cost_usd"] > 0
    assert code == 1000


def test_a_malformed_message_is_a_typed_error_naming_the_field(server: RunningServer) -> None:
    """A control with an unknown field: one ``error`` naming it, then close code 4422."""
    with open_session(server, {}) as ws:
        until(ws, "session.created")
        ws.send(json.dumps({"type": "input.text", "text": "hi", "colour": "blue"}))
        messages, _, code = until_closed(ws)
    [error] = [m for m in messages if m["type"] == "error"]
    assert messages[-1] is error
    assert error["code"] == "request_validation_error"
    assert "colour" in error["message"] or "colour" in json.dumps(error)
    assert code == 4422


class RawClient:
    """A WebSocket client on a plain socket (wsproto) with a small receive buffer, which reads only when told to: a
    client that stops reading, which library clients never are (they keep reading into memory in the background)."""

    def __init__(self, server: RunningServer, target: str) -> None:
        port = int(server.base_url.rsplit(":", 1)[1])
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.ws = WSConnection(ConnectionType.CLIENT)
        headers = [(b"authorization", f"Bearer {mint()}".encode())]
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{port}", target=target, extra_headers=headers)))
        self.texts: list[dict[str, Any]] = []
        self.audio = 0
        self.code: int | None = None
        self._text = ""
        while not self._pump(AcceptConnection):
            pass

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(self.ws.send(Message(data=json.dumps(message))))

    def _pump(self, wanted: type[Any] | None = None) -> bool:
        """Read once and handle what came; whether an event of ``wanted`` came (or the connection ended)."""
        data = self.sock.recv(65536)
        self.ws.receive_data(data or None)
        found = not data
        for event in self.ws.events():
            if wanted is not None and isinstance(event, wanted):
                found = True
            if isinstance(event, BytesMessage):
                self.audio += len(event.data)
            elif isinstance(event, TextMessage):
                self._text += event.data
                if event.message_finished:
                    self.texts.append(json.loads(self._text))
                    self._text = ""
            elif isinstance(event, CloseConnection):
                self.code = event.code
                found = True
        return found

    def until_type(self, kind: str) -> None:
        while not any(m["type"] == kind for m in self.texts):
            self._pump()

    def until_closed(self) -> None:
        while self.code is None and not self._pump(CloseConnection):
            pass

    def close(self) -> None:
        self.sock.close()


def test_a_client_that_stops_reading_is_disconnected(server: RunningServer) -> None:
    """A client that reads nothing while the model talks (15 minutes of audio): the server does not buffer for it;
    it ends the session with ``client_too_slow`` and closes with 4408, which the client finds after what it had."""
    client = RawClient(server, f"{PATH}?model=fake-realtime")
    try:
        client.send(
            {"type": "session.update", "session": {"metadata": {"fake_audio_ms": "900000", "fake_chunk_pause_ms": "0"}}}
        )
        client.until_type("session.created")
        client.send({"type": "input.text", "text": "Talk for fifteen minutes."})
        time.sleep(4)  # not reading: the socket's buffers fill, a write blocks past realtime.write_timeout_s
        client.until_closed()
    finally:
        client.close()
    error = client.texts[-1]
    assert client.code == 4408, error
    assert error["type"] == "error"
    assert error["code"] == "client_too_slow"
    assert client.audio < 900 * 48_000 // 10  # a small part of the answer: the rest was never queued for it


def test_an_expired_token_closes_the_session_with_4401(server: RunningServer) -> None:
    """A 2 s token (leeway 0): the session works, then the socket is closed with 4401."""
    with open_session(server, {}, ttl_s=2) as ws:
        until(ws, "session.created")
        ws.send(json.dumps({"type": "input.text", "text": "Hello."}))
        until(ws, "turn.done")
        _, _, code = until_closed(ws, timeout=10)
    assert code == 4401
