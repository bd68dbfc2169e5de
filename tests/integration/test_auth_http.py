"""Auth at the HTTP boundary beyond the attack battery: WebSocket token carriers, expiry, /metrics, public routes."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Blueprint, Quart, Response, websocket
from quart.testing.connections import WebsocketDisconnectError, WebsocketResponseError
from quart.typing import TestClientProtocol, TestWebsocketConnectionProtocol

from domain.auth import AuthContext
from domain.types import CustomerId
from entrypoints.http.app import create_app
from entrypoints.http.auth import authenticate_request, websocket_auth
from entrypoints.http.envelope import api_ok
from entrypoints.http.serialization import json_response
from tests.fakes.auth import FakeTokenVerifier
from tests.support.app import make_container, make_settings, mint
from tests.support.jwks import claims, hmac_token, jwks_server, rsa_key

probe = Blueprint("auth_http_probe", __name__)


@probe.websocket("/api/v1/probe/ws")
async def api_echo() -> None:
    caller = await websocket_auth()
    await websocket.send(json.dumps({"type": "hello", "customer_id": caller.customer_id}))
    while True:
        await websocket.send(await websocket.receive())


@probe.websocket("/public/ws")
async def public_echo() -> None:
    caller = await websocket_auth()
    await websocket.send(json.dumps({"type": "hello", "customer_id": caller.customer_id}))


@probe.get("/public/maybe")
async def maybe_private() -> Response:
    caller = await authenticate_request()
    return json_response(api_ok({"customer_id": caller.customer_id}))


async def started(tmp_path: Path, verifier: Any = None, **auth: Any) -> AsyncIterator[Quart]:
    overrides = {"token_verifier": verifier} if verifier is not None else {}
    container = make_container(make_settings(tmp_path, auth={"ws_auth_timeout_s": 0.5, **auth}), **overrides)
    app = create_app(container)
    app.register_blueprint(probe)
    async with app.test_app():
        yield app
    container.unwire()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClientProtocol]:
    async for app in started(tmp_path):
        yield app.test_client()


async def hello(ws: TestWebsocketConnectionProtocol) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await ws.receive())
    assert message["type"] == "hello"
    return message


async def close_code(ws: TestWebsocketConnectionProtocol) -> int:
    """Read until the server closes; the close code."""
    while True:
        try:
            await ws.receive()
        except WebsocketDisconnectError as closed:
            code: int = closed.args[0]
            return code


async def rejected_status(ws: TestWebsocketConnectionProtocol) -> int:
    with pytest.raises(WebsocketResponseError) as rejected:
        await ws.receive()
    assert json.loads(await rejected.value.response.get_data())["data"]["error"] == "authentication_error"
    status: int = rejected.value.response.status_code
    return status


async def test_websocket_authorization_header(client: TestClientProtocol) -> None:
    """A good Authorization header authenticates before the upgrade; a bad one is an HTTP 401 envelope."""
    async with client.websocket("/api/v1/probe/ws", headers={"Authorization": f"Bearer {mint('alice')}"}) as ws:
        assert (await hello(ws))["customer_id"] == "alice"
        await ws.send("ping")
        assert await ws.receive() == "ping"
    async with client.websocket("/api/v1/probe/ws", headers={"Authorization": "Bearer nope"}) as ws:
        assert await rejected_status(ws) == 401


async def test_websocket_bearer_subprotocol(client: TestClientProtocol) -> None:
    """Sec-WebSocket-Protocol: bearer, <token> authenticates; a bearer entry without a token is a 401."""
    # Quart's test client drops its `subprotocols` argument; the ASGI scope carries them as a server would.
    async with client.websocket("/api/v1/probe/ws", scope_base={"subprotocols": ["bearer", mint("bob")]}) as ws:
        assert (await hello(ws))["customer_id"] == "bob"
    async with client.websocket("/api/v1/probe/ws", scope_base={"subprotocols": ["bearer"]}) as ws:
        assert await rejected_status(ws) == 401
    async with client.websocket("/api/v1/probe/ws", scope_base={"subprotocols": ["bearer", "forged.token"]}) as ws:
        assert await rejected_status(ws) == 401


async def test_websocket_first_message_auth(client: TestClientProtocol) -> None:
    """No handshake credentials: the first message {"type": "auth", "token": ...} authenticates."""
    async with client.websocket("/api/v1/probe/ws") as ws:
        await ws.send(json.dumps({"type": "auth", "token": mint("carol")}))
        assert (await hello(ws))["customer_id"] == "carol"
        await ws.send("after auth")
        assert await ws.receive() == "after auth"


@pytest.mark.parametrize(
    "first",
    [
        json.dumps({"type": "auth", "token": "forged"}),
        json.dumps({"type": "chat", "token": "x"}),
        json.dumps({"type": "auth"}),
        "not json",
        json.dumps({"type": "auth", "token": "x" * 20_000}),
    ],
)
async def test_websocket_bad_first_message_closes_4401(client: TestClientProtocol, first: str) -> None:
    """A forged token, another message type, no token, non-JSON or an oversized message: close 4401."""
    async with client.websocket("/api/v1/probe/ws") as ws:
        await ws.send(first)
        assert await close_code(ws) == 4401


async def test_websocket_without_auth_message_times_out_4401(client: TestClientProtocol) -> None:
    """Silence for ws_auth_timeout_s closes the socket with 4401."""
    started_at = time.monotonic()
    async with client.websocket("/api/v1/probe/ws") as ws:
        assert await close_code(ws) == 4401
    assert time.monotonic() - started_at < 3


async def test_query_token_only_when_enabled(tmp_path: Path) -> None:
    """?access_token= is a 401 by default and accepted when auth.allow_query_token is set."""
    async for app in started(tmp_path / "off"):
        async with app.test_client().websocket("/api/v1/probe/ws", query_string={"access_token": mint()}) as ws:
            assert await rejected_status(ws) == 401
    async for app in started(tmp_path / "on", allow_query_token=True):
        async with app.test_client().websocket("/api/v1/probe/ws", query_string={"access_token": mint("dan")}) as ws:
            assert (await hello(ws))["customer_id"] == "dan"


async def test_websocket_closes_4401_when_the_token_expires(tmp_path: Path) -> None:
    """The watchdog closes an authenticated socket with 4401 at exp (+ leeway 0) and stops the handler."""
    verifier = FakeTokenVerifier()
    async for app in started(tmp_path, verifier, leeway_s=0.0):
        # The token's life starts once the app serves: a slow start (a loaded machine) must not expire it first.
        expiring = AuthContext(customer_id=CustomerId("eve"), token="t", expires_at=time.time() + 0.5)
        verifier.tokens["short-lived"] = expiring
        async with app.test_client().websocket(
            "/api/v1/probe/ws", headers={"Authorization": "Bearer short-lived"}
        ) as ws:
            assert (await hello(ws))["customer_id"] == "eve"
            await ws.send("still valid")
            assert await ws.receive() == "still valid"
            assert await close_code(ws) == 4401
        assert time.time() >= expiring.expires_at  # type: ignore[operator]


async def test_websocket_auth_outside_api_runs_the_same_flow(client: TestClientProtocol) -> None:
    """A handler outside /api/ that calls websocket_auth() authenticates too (here by first message)."""
    async with client.websocket("/public/ws") as ws:
        await ws.send(json.dumps({"type": "auth", "token": mint("frank")}))
        assert (await hello(ws))["customer_id"] == "frank"
    async with client.websocket("/public/ws") as ws:
        await ws.send(json.dumps({"type": "auth", "token": "forged"}))
        assert await close_code(ws) == 4401


async def test_public_routes_need_no_token(client: TestClientProtocol) -> None:
    """/health, /ready, /openapi.json and /docs answer without a token."""
    for path in ("/health", "/ready", "/openapi.json", "/docs"):
        assert (await client.get(path)).status_code == 200, path


async def test_authenticate_request_helper_for_run_time_decisions(client: TestClientProtocol) -> None:
    """authenticate_request() inside a route outside /api/ enforces a bearer token there."""
    assert (await client.get("/public/maybe")).status_code == 401
    ok = await client.get("/public/maybe", headers={"Authorization": f"Bearer {mint('gina')}"})
    assert (await ok.get_json())["data"]["customer_id"] == "gina"


async def test_metrics_auth_follows_the_setting(tmp_path: Path) -> None:
    """auth.metrics_require_auth puts /metrics behind a bearer token; off by default."""
    async for app in started(tmp_path / "open"):
        assert (await app.test_client().get("/metrics")).status_code != 401
    async for app in started(tmp_path / "closed", metrics_require_auth=True):
        client = app.test_client()
        denied = await client.get("/metrics")
        assert denied.status_code == 401
        assert denied.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
        allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {mint()}"})
        assert allowed.status_code != 401


async def test_hs_rs_confusion_without_a_shared_secret(tmp_path: Path) -> None:
    """RS256-only configuration: an HS256 token made with the issuer's public key is refused, no key fetched."""
    issuer_key = rsa_key("k1")
    with jwks_server() as issuer:
        issuer.keys = [issuer_key]
        async for app in started(tmp_path, algorithms=("RS256",), jwks_url=issuer.url, jwt_secret=None):
            forged = hmac_token({"alg": "HS256", "kid": "k1"}, claims(), issuer_key.as_pem(private=False))
            response = await app.test_client().get("/api/v1/x", headers={"Authorization": f"Bearer {forged}"})
            assert response.status_code == 401
            assert "algorithm" in (await response.get_json())["message"]
        assert issuer.requests == 0
