"""WebSocket auth over real Hypercorn: every way of passing the token, and expiry mid-connection closing with 4401.

Two servers: `switchyard serve` (tests/support/server.py) with its real chat socket (/api/v1/ws/chat, whose polite
"error" reply to an unknown message proves an authenticated handler is serving), and the same app served by
Hypercorn in a thread with a test-only echo route, so these checks do not hang on the chat socket's protocol alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Blueprint, websocket
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from entrypoints.http.app import create_app
from entrypoints.http.auth import websocket_auth
from tests.support.app import make_container, make_settings, mint
from tests.support.server import RunningServer, free_port, running_server

CHAT = "/api/v1/ws/chat"
ECHO = "/api/v1/e2e/echo"

probe = Blueprint("auth_e2e_probe", __name__)


@probe.websocket(ECHO)
async def echo() -> None:
    caller = await websocket_auth()
    await websocket.send(json.dumps({"type": "hello", "customer_id": caller.customer_id}))
    while True:
        await websocket.send(await websocket.receive())


def ws_url(base_url: str, path: str) -> str:
    return base_url.replace("http://", "ws://") + path


def open_socket(url: str, **kwargs: Any) -> ClientConnection:
    connection: ClientConnection = connect(url, proxy=None, open_timeout=5, close_timeout=2, **kwargs)
    return connection


def close_code(ws: ClientConnection) -> int | None:
    """Read until the server closes; the code it closed with."""
    while True:
        try:
            ws.recv(timeout=10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None


def rejected_status(url: str, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as rejected:
        open_socket(url, **kwargs)
    status: int = rejected.value.response.status_code
    body = json.loads(rejected.value.response.body or b"{}")
    assert body["data"]["error"] == "authentication_error"
    return status


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {"SWITCHYARD_AUTH_WS_AUTH_TIMEOUT_S": "0.5", "SWITCHYARD_AUTH_LEEWAY_S": "0"}
    with running_server(tmp_path_factory.mktemp("ws"), env) as running:
        yield running


@contextlib.contextmanager
def echo_server(tmp_path: Path, **auth: Any) -> Iterator[str]:
    """The Switchyard app plus the echo route, on real Hypercorn in a background thread; yields the base URL."""
    port = free_port()
    container = make_container(make_settings(tmp_path, auth=auth))
    app = create_app(container)
    app.register_blueprint(probe)
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.5
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(serve(app, config, mode="asgi", shutdown_trigger=stop.wait),)
    )
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/health", timeout=0.5).status_code == 200:
                    break
            assert time.monotonic() < deadline, "in-process server did not start"
            time.sleep(0.05)
        yield base_url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()
        container.unwire()


def chat_reply(ws: ClientConnection) -> dict[str, Any]:
    """Send the chat socket a message it rejects politely; its reply proves an authenticated handler is serving."""
    ws.send(json.dumps({"type": "no-such-type", "id": "probe"}))
    reply: dict[str, Any] = json.loads(ws.recv(timeout=5))
    assert reply["type"] == "error", reply
    return reply


def test_authorization_header(server: RunningServer) -> None:
    """Header: a good token opens the chat socket; a forged one or another scheme is an HTTP 401 envelope."""
    url = ws_url(server.base_url, CHAT)
    with open_socket(url, additional_headers={"Authorization": f"Bearer {mint()}"}) as ws:
        chat_reply(ws)
    assert rejected_status(url, additional_headers={"Authorization": "Bearer forged"}) == 401
    assert rejected_status(url, additional_headers={"Authorization": "Basic YWxpY2U6eA=="}) == 401


def test_bearer_subprotocol_is_echoed(server: RunningServer) -> None:
    """Sec-WebSocket-Protocol: bearer, <token>: accepted with `bearer` echoed; a forged token is an HTTP 401."""
    url = ws_url(server.base_url, CHAT)
    with open_socket(url, subprotocols=[Subprotocol("bearer"), Subprotocol(mint())]) as ws:
        assert ws.subprotocol == "bearer"
        chat_reply(ws)
    assert rejected_status(url, subprotocols=[Subprotocol("bearer"), Subprotocol("forged.token.x")]) == 401


def test_first_message_auth(server: RunningServer) -> None:
    """First message: a good token opens the socket; a forged one, or silence past the timeout, closes 4401."""
    url = ws_url(server.base_url, CHAT)
    with open_socket(url) as ws:
        ws.send(json.dumps({"type": "auth", "token": mint()}))
        chat_reply(ws)
    with open_socket(url) as ws:
        ws.send(json.dumps({"type": "auth", "token": "forged"}))
        assert close_code(ws) == 4401
    with open_socket(url) as ws:  # silence past ws_auth_timeout_s
        assert close_code(ws) == 4401


def test_query_token_disabled_by_default(server: RunningServer) -> None:
    """?access_token= is refused with an HTTP 401 unless auth.allow_query_token is set."""
    assert rejected_status(ws_url(server.base_url, f"{CHAT}?access_token={mint()}")) == 401


def test_token_expiring_mid_connection_closes_4401_on_serve(server: RunningServer) -> None:
    """`switchyard serve` with SWITCHYARD_AUTH_LEEWAY_S=0: a 2 s token works, then the socket is closed with 4401."""
    started = time.time()
    with open_socket(
        ws_url(server.base_url, CHAT), additional_headers={"Authorization": f"Bearer {mint(ttl_s=2)}"}
    ) as ws:
        chat_reply(ws)
        assert close_code(ws) == 4401
    assert 0.5 < time.time() - started < 5


def test_every_carrier_reaches_a_handler(tmp_path: Path) -> None:
    """On a real route: header, subprotocol, first message and (when enabled) query token all authenticate."""
    with echo_server(tmp_path, allow_query_token=True) as base_url:
        url = ws_url(base_url, ECHO)
        carriers: list[tuple[str, dict[str, Any], str | None]] = [
            ("header", {"additional_headers": {"Authorization": f"Bearer {mint('h')}"}}, None),
            ("subprotocol", {"subprotocols": [Subprotocol("bearer"), Subprotocol(mint("s"))]}, None),
            ("message", {}, mint("m")),
        ]
        for name, kwargs, message_token in carriers:
            with open_socket(url, **kwargs) as ws:
                if message_token is not None:
                    ws.send(json.dumps({"type": "auth", "token": message_token}))
                hello = json.loads(ws.recv(timeout=5))
                assert hello["customer_id"] == name[0], name
                ws.send("ping")
                assert ws.recv(timeout=5) == "ping"
        with open_socket(f"{url}?access_token={mint('q')}") as ws:
            assert json.loads(ws.recv(timeout=5))["customer_id"] == "q"


def test_token_expiring_mid_connection_closes_4401_on_echo(tmp_path: Path) -> None:
    """A 2 s token with leeway 0 on a plain echo handler: it works, then the server closes it with 4401 at expiry."""
    with echo_server(tmp_path, leeway_s=0.0) as base_url:
        token = mint("short", ttl_s=2)
        started = time.time()
        with open_socket(ws_url(base_url, ECHO), additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            assert json.loads(ws.recv(timeout=5))["customer_id"] == "short"
            ws.send("ping")
            assert ws.recv(timeout=5) == "ping"
            assert close_code(ws) == 4401
        assert 0.5 < time.time() - started < 5
