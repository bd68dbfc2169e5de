"""API keys over HTTP: the admin routes (admin scope only), and a key accepted wherever a JWT is (native routes,
WebSocket, the OpenAI and Anthropic front doors), refused once revoked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart.testing.connections import WebsocketDisconnectError
from quart.typing import TestClientProtocol, TestWebsocketConnectionProtocol

from entrypoints.http.app import create_app
from tests.support.app import auth_headers, make_container, make_settings

ADMIN = auth_headers("ops", scopes=("admin",))


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClientProtocol]:
    container = make_container(make_settings(tmp_path))
    app = create_app(container)
    async with app.test_app():
        yield app.test_client()
    container.unwire()


async def issue(client: TestClientProtocol, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/admin/keys", json={"customer_id": "acme", "name": "ci", **body}, headers=ADMIN
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    data: dict[str, Any] = (await response.get_json())["data"]
    return data


async def close_code(ws: TestWebsocketConnectionProtocol) -> int:
    """Read until the server closes; the close code."""
    while True:
        try:
            await ws.receive()
        except WebsocketDisconnectError as closed:
            code: int = closed.args[0]
            return code


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_an_admin_issues_a_key_that_authenticates_as_its_customer(client: TestClientProtocol) -> None:
    """POST answers the key once; the key calls /api/v1/usage as acme; the listing shows only its prefix."""
    issued = await issue(client, scopes=["chat"])
    key = issued["key"]
    assert key.startswith("sy-")
    assert issued["details"]["prefix"] == key[:11]
    usage = await client.get("/api/v1/usage", headers=bearer(key))
    assert usage.status_code == 200
    assert (await usage.get_json())["data"]["customer_id"] == "acme"
    listing = await client.get("/api/v1/admin/keys?customer_id=acme", headers=ADMIN)
    text = await listing.get_data(as_text=True)
    assert key not in text
    assert [k["id"] for k in json.loads(text)["data"]] == [issued["details"]["id"]]


@pytest.mark.parametrize("method", ["get", "post", "delete"])
async def test_admin_routes_refuse_a_caller_without_the_admin_scope(client: TestClientProtocol, method: str) -> None:
    """A valid JWT without `admin`, and a key without it, are 403 naming the scope; no token is 401."""
    key = (await issue(client, scopes=["chat"]))["key"]
    path = "/api/v1/admin/keys" + ("/sy-abcd" if method == "delete" else "")
    body = {"json": {"customer_id": "acme", "name": "x"}} if method == "post" else {}
    for headers in (auth_headers("alice", scopes=("chat",)), bearer(key)):
        response = await getattr(client, method)(path, headers=headers, **body)
        assert response.status_code == 403
        assert (await response.get_json())["data"]["context"]["missing_scopes"] == ["admin"]
    assert (await getattr(client, method)(path, **body)).status_code == 401


async def test_a_key_with_the_admin_scope_is_an_admin(client: TestClientProtocol) -> None:
    """Scopes on a key work like scopes in a JWT: an admin key may issue keys."""
    admin_key = (await issue(client, scopes=["admin"]))["key"]
    response = await client.post(
        "/api/v1/admin/keys", json={"customer_id": "beta", "name": "b"}, headers=bearer(admin_key)
    )
    assert response.status_code == 201


async def test_a_revoked_key_is_refused_at_once(client: TestClientProtocol) -> None:
    """DELETE by prefix answers the revoked key; the next call with it is a 401 saying it was revoked."""
    issued = await issue(client)
    key = issued["key"]
    assert (await client.get("/api/v1/models", headers=bearer(key))).status_code == 200
    revoked = await client.delete(f"/api/v1/admin/keys/{issued['details']['prefix']}", headers=ADMIN)
    assert revoked.status_code == 200
    assert (await revoked.get_json())["data"]["revoked_at"] is not None
    refused = await client.get("/api/v1/models", headers=bearer(key))
    assert refused.status_code == 401
    assert "revoked" in (await refused.get_json())["message"]
    assert "invalid_token" in refused.headers["WWW-Authenticate"]


async def test_unknown_key_and_bad_bodies(client: TestClientProtocol) -> None:
    """An unknown key is 401; revoking an unknown prefix 404; a misspelt field 422 naming it."""
    assert (await client.get("/api/v1/models", headers=bearer("sy-" + "Q" * 43))).status_code == 401
    assert (await client.delete("/api/v1/admin/keys/sy-nope", headers=ADMIN)).status_code == 404
    bad = await client.post("/api/v1/admin/keys", json={"customer_id": "a", "nam": "x"}, headers=ADMIN)
    assert bad.status_code == 422
    assert "nam" in await bad.get_data(as_text=True)


async def test_a_key_opens_a_websocket(client: TestClientProtocol) -> None:
    """The WebSocket chat accepts a key in the Authorization header and streams as the key's customer."""
    key = (await issue(client))["key"]
    async with client.websocket("/api/v1/ws/chat", headers=bearer(key)) as ws:
        request = {"model": "fake/echo", "messages": [{"role": "user", "content": "hello key"}]}
        await ws.send(json.dumps({"type": "chat", "id": "a", "request": request}))
        types: list[str] = []
        while not types or types[-1] not in ("done", "error"):
            message = json.loads(await ws.receive())
            if message["type"] not in ("ping", "accepted"):
                types.append(message["type"])
        assert types[-1] == "done"


async def test_the_front_doors_take_a_key_as_their_vendor_key(client: TestClientProtocol) -> None:
    """The OpenAI door takes it as a bearer token, the Anthropic door as x-api-key."""
    key = (await issue(client))["key"]
    models = await client.get("/v1/models", headers=bearer(key))
    assert models.status_code == 200
    message = {"model": "fake/echo", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    answer = await client.post(
        "/v1/messages", json=message, headers={"x-api-key": key, "anthropic-version": "2023-06-01"}
    )
    assert answer.status_code == 200, await answer.get_data(as_text=True)


async def test_a_key_issued_with_limits_is_held_to_them(client: TestClientProtocol) -> None:
    """`limits` in the body are stored and listed; the key's 1 request a minute refuses its second chat with a 429
    naming the key's limit, while the customer (no limits of its own) is otherwise unlimited."""
    issued = await issue(client, limits={"requests_per_minute": 1, "daily_budget_usd": 2.5})
    assert issued["details"]["limits"] == {
        "requests_per_minute": 1, "tokens_per_minute": None, "concurrent_streams": None, "daily_budget_usd": 2.5,
        "monthly_budget_usd": None,
    }  # fmt: skip
    body = {"model": "fake/echo", "messages": [{"role": "user", "content": "hi"}]}
    first = await client.post("/api/v1/chat", json=body, headers=bearer(issued["key"]))
    assert first.status_code == 200
    assert first.headers["X-RateLimit-Limit"] == "1"
    assert first.headers["X-RateLimit-Remaining"] == "0"
    second = await client.post("/api/v1/chat", json=body, headers=bearer(issued["key"]))
    assert second.status_code == 429
    assert (await second.get_json())["data"]["context"]["scope"] == "key"
    other = (await issue(client))["key"]
    assert (await client.post("/api/v1/chat", json=body, headers=bearer(other))).status_code == 200
    bad = await client.post(
        "/api/v1/admin/keys", json={"customer_id": "acme", "name": "x", "limits": {"rpm": 1}}, headers=ADMIN
    )
    assert bad.status_code == 422
    assert "rpm" in await bad.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    ["/api/v1/ws/chat", "/api/v1/ws/transcribe?model=fake/transcribe", "/api/v1/ws/realtime?model=fake-realtime"],
)
async def test_a_socket_opened_with_a_key_closes_4401_once_the_key_is_revoked(
    client: TestClientProtocol, path: str
) -> None:
    """An open WebSocket (chat, live transcription, realtime) authenticated with a key is closed with 4401 and the
    reason `API key revoked` right after an admin revokes the key; a socket opened with another key stays usable."""
    key = (await issue(client))["key"]
    kept = (await issue(client, name="kept"))["key"]
    async with (
        client.websocket(path, headers=bearer(key)) as ws,
        client.websocket("/api/v1/ws/chat", headers=bearer(kept)) as other,
    ):
        await asyncio.sleep(0.05)  # both sockets are up and watched
        revoked = await client.delete(f"/api/v1/admin/keys/{key[:11]}", headers=ADMIN)
        assert revoked.status_code == 200
        async with asyncio.timeout(5):
            assert await close_code(ws) == 4401
        request = {"model": "fake/echo", "messages": [{"role": "user", "content": "still here"}]}
        await other.send(json.dumps({"type": "chat", "id": "b", "request": request}))
        types: list[str] = []
        while not types or types[-1] not in ("done", "error"):
            message = json.loads(await other.receive())
            if message["type"] not in ("ping", "accepted"):
                types.append(message["type"])
        assert types[-1] == "done"
