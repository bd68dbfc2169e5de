"""Request logging: one structured line per HTTP request and per WebSocket connection, with its fields, no secrets."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Blueprint, websocket
from quart.testing.connections import WebsocketDisconnectError, WebsocketResponseError
from quart.typing import TestClientProtocol

from container import Container
from domain.errors import NotFoundError
from entrypoints.http.app import create_app
from entrypoints.http.auth import websocket_auth
from entrypoints.http.context import current_websocket_session, websocket_session
from tests.support.app import make_container, make_settings, mint

probe = Blueprint("logging_probe", __name__)


@probe.websocket("/probe/echo")
async def echo() -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message == "bye":
            await websocket.close(4000, "done")
            return
        await websocket.send(f"echo:{message!s}")


@probe.websocket("/api/v1/probe/ws")
async def authed() -> None:
    await websocket_auth()
    await websocket.accept()
    async with websocket_session() as session:
        await websocket.send("hello")
        session.sent += 0  # handlers may add their own counts; the wrapper already counted the send
        raise NotFoundError("no such stream")


@probe.websocket("/probe/quiet")
async def quiet() -> None:
    await websocket.accept()
    current_websocket_session().received += 5  # counted by the handler itself (e.g. frames it reads elsewhere)


@pytest.fixture
async def logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> AsyncIterator[tuple[TestClientProtocol, Any]]:
    """The app logging JSON at INFO, with the probe routes; log lines are read back from ``caplog``."""
    container: Container = make_container(make_settings(tmp_path, logging={"level": "INFO", "format": "json"}))
    app = create_app(container)
    app.register_blueprint(probe)
    async with app.test_app():
        yield app.test_client(), caplog
    container.unwire()


def _lines(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    """The ``event`` lines as the configured handler renders them (after redaction), parsed back from JSON."""
    (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "_switchyard", False)]
    found = []
    for record in caplog.records:
        if record.name == "switchyard.http":
            entry = json.loads(handler.format(record))
            if entry.get("event") == event:
                found.append(entry)
    caplog.clear()
    return found


async def _settle() -> None:
    for _ in range(20):  # let the server side of a closed test WebSocket run its teardown
        await asyncio.sleep(0.01)


async def test_one_line_per_http_request_with_its_fields(logged: tuple[TestClientProtocol, Any]) -> None:
    """Each request logs exactly one http_request line: method, route, status, duration, bytes, ids; no token."""
    client, caplog = logged
    token = mint("alice")
    caplog.clear()
    await client.get("/health", headers={"X-Request-ID": "req-one"})
    await client.get("/api/v1/usage?group_by=model", headers={"Authorization": f"Bearer {token}"})
    lines = _lines(caplog, "http_request")
    assert len(lines) == 2
    health, usage = lines
    assert health["method"] == "GET"
    assert health["route"] == "/health"
    assert health["status"] == 200
    assert health["request_id"] == "req-one"
    assert health["bytes"] > 0
    assert health["duration_ms"] >= 0
    assert health["customer_id"] is None
    assert usage["route"] == "/api/v1/usage"
    assert usage["customer_id"] == "alice"
    assert token not in json.dumps(lines)


async def test_one_line_per_websocket_with_counts_and_close_code(logged: tuple[TestClientProtocol, Any]) -> None:
    """A WebSocket logs one websocket_connection line at its end: duration, messages in/out and the close code."""
    client, caplog = logged
    caplog.clear()
    async with client.websocket("/probe/echo") as socket:
        for text in ("a", "b"):
            await socket.send(text)
            assert await socket.receive() == f"echo:{text}"
        await socket.send("bye")
        await _settle()
    await _settle()
    (line,) = _lines(caplog, "websocket_connection")
    assert line["route"] == "/probe/echo"
    assert (line["messages_in"], line["messages_out"]) == (3, 2)
    assert line["close_code"] == 4000
    assert line["outcome"] == "closed"
    assert line["duration_ms"] >= 0
    assert line["request_id"]
    assert "connected_at" in line


async def test_websocket_error_close_code_and_caller_without_the_token(logged: tuple[TestClientProtocol, Any]) -> None:
    """An error ending a handler logs its table close code and the caller's id, never the bearer token."""
    client, caplog = logged
    token = mint("alice")
    caplog.clear()
    async with client.websocket("/api/v1/probe/ws", headers={"Authorization": f"Bearer {token}"}) as socket:
        assert await socket.receive() == "hello"
        with pytest.raises(WebsocketDisconnectError):
            await socket.receive()
    await _settle()
    lines = _lines(caplog, "websocket_connection")
    assert len(lines) == 1
    (line,) = lines
    assert line["close_code"] == 4404
    assert line["customer_id"] == "alice"
    assert line["messages_out"] == 1
    assert token not in json.dumps(line)


async def test_websocket_gauge_returns_to_zero(logged: tuple[TestClientProtocol, Any]) -> None:
    """websocket_connections counts open sockets and drops back when they end; handler-added counts are logged."""
    client, caplog = logged
    async with client.websocket("/probe/quiet"):
        await _settle()
    await _settle()
    (line,) = _lines(caplog, "websocket_connection")
    assert line["messages_in"] == 5
    assert line["close_code"] == 1000
    page = await (await client.get("/metrics")).get_data(as_text=True)
    assert "websocket_connections 0.0" in page


async def test_rejected_handshake_logs_one_rejected_line(logged: tuple[TestClientProtocol, Any]) -> None:
    """A WebSocket refused at the handshake (bad token) still logs exactly one line, marked rejected."""
    client, caplog = logged
    caplog.clear()
    with pytest.raises(WebsocketResponseError):
        async with client.websocket("/api/v1/probe/ws", headers={"Authorization": "Bearer nope"}) as socket:
            await socket.receive()
    await _settle()
    (line,) = _lines(caplog, "websocket_connection")
    assert (line["outcome"], line["close_code"], line["messages_out"]) == ("rejected", None, 0)
    assert "nope" not in json.dumps(line)
