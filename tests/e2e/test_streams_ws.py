"""Streams over a real WebSocket: resume after a drop, cancel by message, ping/pong, owner scoping."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.e2e.streams_client import start_stream
from tests.support.app import auth_headers
from tests.support.server import RunningServer, running_server

ENV = {"SWITCHYARD_STREAMING_KEEPALIVE_S": "5"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("ws"), ENV, test_routes=True) as running:
        yield running


def _socket(server: RunningServer, subject: str = "alice") -> ClientConnection:
    url = server.base_url.replace("http://", "ws://") + "/api/v1/ws/streams"
    return connect(url, additional_headers=auth_headers(subject), open_timeout=5)


def _until_terminal(ws: ClientConnection, *, limit: int | None = None) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        message = json.loads(ws.recv(timeout=10))
        if message["type"] == "ping":
            continue
        messages.append(message)
        if message["type"] in ("done", "error", "cancelled", "disconnect"):
            return messages
        if limit is not None and len(messages) >= limit:
            return messages


def test_websocket_resume_after_a_drop_gets_exactly_the_rest(server: RunningServer) -> None:
    """A socket reads 4 events and drops; a new one sends resume after 4 and receives seq 5.. to `done`."""
    stream_id = start_stream(server.base_url, events=20, interval_ms=15)
    with _socket(server) as ws:
        ws.send(json.dumps({"type": "resume", "stream_id": stream_id, "after": 0}))
        first = _until_terminal(ws, limit=4)
    assert [m["seq"] for m in first] == [1, 2, 3, 4]
    assert all(m["stream_id"] == stream_id for m in first)
    with _socket(server) as ws:
        ws.send(json.dumps({"type": "resume", "stream_id": stream_id, "after": 4}))
        rest = _until_terminal(ws)
    assert [m["seq"] for m in rest] == list(range(5, 24))
    assert rest[-1]["type"] == "done"


def test_websocket_cancel_message_and_ping_pong(server: RunningServer) -> None:
    """`ping` is answered with `pong`; `cancel` ends a hanging stream with one `cancelled` delivered in-band."""
    stream_id = start_stream(server.base_url, events=1, hang=True)
    with _socket(server) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}
        ws.send(json.dumps({"type": "subscribe", "stream_id": stream_id}))
        assert [m["type"] for m in _until_terminal(ws, limit=3)] == ["start", "text", "usage"]
        ws.send(json.dumps({"type": "cancel", "stream_id": stream_id}))
        end = _until_terminal(ws)
    assert [m["type"] for m in end] == ["cancelled"]
    assert end[0]["reason"] == "client"


def test_websocket_foreign_stream_and_bad_messages(server: RunningServer) -> None:
    """Another customer's stream is a `disconnect` with code not_found; a malformed message closes with 4400."""
    stream_id = start_stream(server.base_url, events=1)
    with _socket(server, "bob") as ws:
        ws.send(json.dumps({"type": "resume", "stream_id": stream_id}))
        message = json.loads(ws.recv(timeout=5))
        assert (message["type"], message["code"], message["stream_id"]) == ("disconnect", "not_found", stream_id)
        ws.send("not json")
        with pytest.raises(Exception, match="4400"):
            ws.recv(timeout=5)


def test_websocket_too_deep_message_closes_with_4422(server: RunningServer) -> None:
    """A control message nested past ``limits.max_json_depth`` is refused as invalid (4422), never a crash."""
    with _socket(server) as ws:
        ws.send('{"type": "ping", "x": ' + "[" * 30_000 + "]" * 30_000 + "}")
        with pytest.raises(Exception, match="4422"):
            ws.recv(timeout=5)
