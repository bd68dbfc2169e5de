"""The JSON nesting-depth limit (``limits.max_json_depth``) at the HTTP boundary: ``POST /api/v1/chat`` answers a 422
naming the field, and ``WS /api/v1/ws/chat`` answers an ``error`` message and stays open; never a 500 or a close."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart.typing import TestClientProtocol, TestWebsocketConnectionProtocol

from entrypoints.http.app import create_app
from tests.support.app import auth_headers, make_container, make_settings


def nested(key: str, depth: int) -> str:
    """``{"key": {"key": ... "x" ...}}``: ``depth`` objects, as raw text (too deep for ``json.dumps`` to build)."""
    return f'{{"{key}":' * depth + '"x"' + "}" * depth


def chat_text(*, metadata: str = "{}", parameters: str = '{"type": "object"}') -> str:
    return (
        '{"model": "fake/tools", "messages": [{"role": "user", "content": "hi"}], '
        f'"tools": [{{"name": "t", "parameters": {parameters}}}], "metadata": {metadata}}}'
    )


async def post_text(client: TestClientProtocol, text: str) -> tuple[int, dict[str, Any]]:
    headers = {**auth_headers(), "Content-Type": "application/json"}
    response = await client.post("/api/v1/chat", data=text.encode(), headers=headers)
    return response.status_code, await response.get_json()


async def receive(ws: TestWebsocketConnectionProtocol) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await ws.receive())
    return message


@pytest.fixture
async def shallow_client(tmp_path: Path) -> AsyncIterator[TestClientProtocol]:
    """An app whose limit is 6 levels, to pin the boundary and that the setting is what counts."""
    container = make_container(make_settings(tmp_path, limits={"max_json_depth": 6}))
    app = create_app(container)
    async with app.test_app():
        yield app.test_client()
    container.unwire()


@pytest.mark.parametrize(
    ("text", "loc"),
    [
        (chat_text(metadata=nested("a", 100_000)), "$.metadata.a.a.a.a.a.a.a…"),
        (
            chat_text(parameters=nested("properties", 5_000)),
            "$.tools[0].parameters.properties.properties.properties.properties.properties…",
        ),
        (
            chat_text(parameters=nested("properties", 100)),
            "$.tools[0].parameters.properties.properties.properties.properties.properties…",
        ),
    ],
    ids=["metadata-100000", "parameters-5000", "parameters-100"],
)
async def test_a_deep_chat_body_is_a_422_naming_the_field(client: TestClientProtocol, text: str, loc: str) -> None:
    """Nesting past 64 levels, even far past the decoder's recursion limit, is a 422 envelope whose loc is the path."""
    status, body = await post_text(client, text)
    assert status == 422, body
    assert body["data"]["error"] == "request_validation_error"
    assert body["data"]["errors"] == [
        {"loc": loc, "msg": "JSON nested deeper than the limit of 64 levels (limits.max_json_depth)"}
    ]


async def test_the_limit_is_the_setting_and_its_boundary_is_inclusive(shallow_client: TestClientProtocol) -> None:
    """With max_json_depth=6 a body nested exactly 6 deep is served; one level more is refused with its path."""
    at_limit = '{"type": "object", "properties": {"q": {"type": "string"}}}'  # body > tools > [0] > here: 6 levels
    status, body = await post_text(shallow_client, chat_text(parameters=at_limit))
    assert status == 200, body
    one_more = '{"type": "object", "properties": {"q": {"items": {}}}}'
    status, body = await post_text(shallow_client, chat_text(parameters=one_more))
    assert status == 422, body
    assert body["data"]["errors"][0]["loc"] == "$.tools[0].parameters.properties.q.items"


async def test_a_deep_websocket_message_gets_an_error_and_the_socket_stays_open(client: TestClientProtocol) -> None:
    """On WS /api/v1/ws/chat a too-deep message (enveloped or bare) is answered with a 422 ``error`` message naming
    the path within the message, and the same socket then serves a chat to its end."""
    deep_envelope = f'{{"type": "chat", "id": "deep", "request": {chat_text(metadata=nested("a", 100_000))}}}'
    deep_bare = chat_text(parameters=nested("properties", 5_000))
    async with client.websocket("/api/v1/ws/chat", headers=auth_headers()) as ws:
        for text, loc in ((deep_envelope, "$.request.metadata.a"), (deep_bare, "$.tools[0].parameters.properties")):
            await ws.send(text)
            reply = await receive(ws)
            assert reply["type"] == "error"
            assert reply["stream_id"] is None
            assert reply["payload"]["code"] == "request_validation_error"
            assert reply["payload"]["status"] == 422
            assert loc in reply["payload"]["message"]
        request = {"model": "fake/echo", "messages": [{"role": "user", "content": "still here"}]}
        await ws.send(json.dumps({"type": "chat", "id": "ok", "request": request}))
        assert (await receive(ws))["type"] == "accepted"
        last: dict[str, Any] = {}
        while last.get("type") not in ("done", "error", "cancelled"):
            last = await receive(ws)
    assert last["type"] == "done"
