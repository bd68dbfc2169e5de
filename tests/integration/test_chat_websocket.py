"""WS /api/v1/ws/chat: several chat streams over one socket, each with its own events; bad messages keep it open."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart.typing import TestClientProtocol, TestWebsocketConnectionProtocol

from entrypoints.http.app import create_app
from tests.support.app import auth_headers, make_container, make_settings

TERMINAL = ("done", "error", "cancelled")


@pytest.fixture
async def ws_client(tmp_path: Path) -> AsyncIterator[TestClientProtocol]:
    container = make_container(make_settings(tmp_path))
    app = create_app(container)
    async with app.test_app():
        yield app.test_client()
    container.unwire()


def chat(text: str, ref: str, model: str = "fake/echo", **extra: Any) -> str:
    request = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    return json.dumps({"type": "chat", "id": ref, "request": request})


async def receive(ws: TestWebsocketConnectionProtocol) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await ws.receive())
    return message


async def until_terminal(ws: TestWebsocketConnectionProtocol) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while not messages or messages[-1]["type"] not in TERMINAL:
        message = await receive(ws)
        if message["type"] != "ping":
            messages.append(message)
    return messages


async def test_two_requests_over_one_socket_each_get_their_own_stream(ws_client: TestClientProtocol) -> None:
    """Two chat messages give two accepted stream ids; each stream's events arrive complete, ending in done."""
    async with ws_client.websocket("/api/v1/ws/chat", headers=auth_headers()) as ws:
        await ws.send(chat("first words here", "a", metadata={"fake_delay_ms": "5"}))
        await ws.send(chat("second", "b"))
        by_stream: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        accepted: dict[str, str] = {}
        done = 0
        while done < 2:
            message = await receive(ws)
            if message["type"] == "accepted":
                accepted[message["ref"]] = message["stream_id"]
            elif message["type"] != "ping":
                by_stream[message["stream_id"]].append(message)
                done += message["type"] == "done"
    assert set(accepted) == {"a", "b"}
    assert accepted["a"] != accepted["b"]
    for ref, expected in (("a", "first words here"), ("b", "second")):
        events = by_stream[accepted[ref]]
        assert events[0]["type"] == "start"
        assert events[0]["model"] == "fake/echo"
        assert events[-1]["type"] == "done"
        assert "".join(e["text"] for e in events if e["type"] == "text") == expected
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


async def test_bad_messages_are_rejected_and_the_socket_stays_open(ws_client: TestClientProtocol) -> None:
    """Invalid JSON, an unknown model and a misspelt field are each rejected; a bare request then still streams."""
    async with ws_client.websocket("/api/v1/ws/chat", headers=auth_headers()) as ws:
        await ws.send("{not json")
        assert (await receive(ws))["payload"]["code"] == "malformed_request"
        await ws.send(chat("x", "r404", model="fake/ecko"))
        rejected = await receive(ws)
        assert rejected["type"] == "error"
        assert rejected["stream_id"] is None
        assert rejected["ref"] == "r404"
        assert rejected["payload"]["status"] == 404
        await ws.send(json.dumps({"model": "fake/echo", "mesages": []}))
        assert (await receive(ws))["payload"]["code"] == "request_validation_error"
        await ws.send(json.dumps({"model": "fake/echo", "messages": [{"role": "user", "content": "bare"}]}))
        types = [m["type"] for m in await until_terminal(ws)]
    assert types[:2] == ["accepted", "start"]
    assert types[-1] == "done"


async def test_mid_stream_failure_is_one_error_event(ws_client: TestClientProtocol) -> None:
    """A failure after content ends that stream with one error event, after the text it already sent."""
    metadata = {"fake_error": "overloaded", "fake_fail_after": "1"}
    async with ws_client.websocket("/api/v1/ws/chat", headers=auth_headers()) as ws:
        await ws.send(chat("one two three", "m", metadata=metadata))
        events = await until_terminal(ws)
    assert [e["type"] for e in events] == ["accepted", "start", "text", "error"]
    assert events[-1]["code"] == "provider_error"


async def test_cancel_ends_a_running_stream(ws_client: TestClientProtocol) -> None:
    """A cancel message for a slow stream ends it with ``cancelled``."""
    async with ws_client.websocket("/api/v1/ws/chat", headers=auth_headers()) as ws:
        await ws.send(chat("a b c d e f g h", "slow", model="fake/slow", metadata={"fake_delay_ms": "200"}))
        accepted = await receive(ws)
        assert (await receive(ws))["type"] == "start"
        await ws.send(json.dumps({"type": "cancel", "stream_id": accepted["stream_id"]}))
        events = await until_terminal(ws)
    assert events[-1]["type"] == "cancelled"
