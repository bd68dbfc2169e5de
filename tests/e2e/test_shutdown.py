"""SIGTERM on a real ``switchyard serve`` with clients connected: every running stream keeps its promise.

Each test starts its own server (SIGTERM ends it), connects SSE and WebSocket clients to slow streams, waits until
they are mid-stream, sends SIGTERM and checks: each client's last message is exactly one terminal event
(``cancelled``/``shutdown``, or ``done`` for a stream short enough to finish within the grace) before its connection
closed, a new stream during the drain is a retryable 503, the process exits 0 within a bound, and its output holds
no traceback.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.e2e.streams_client import start_stream
from tests.support.app import auth_headers
from tests.support.server import RunningServer, running_server
from tests.support.services import require_service

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

TERMINAL = frozenset({"done", "error", "cancelled"})
START_S = 240.0  # cold starts (no bytecode cache, 2 shared cores, N workers importing at once) are slow
EXIT_BOUND_S = 60.0  # grace 4 s + delivery + Hypercorn's graceful timeout + ledger flush, with room for a busy host
SLOW: dict[str, Any] = {"events": 400, "interval_ms": 100}  # ~40 s: still running at SIGTERM, whatever the host's speed
BASE_ENV = {
    "SWITCHYARD_HTTP_SHUTDOWN_GRACE_S": "4",
    "SWITCHYARD_STREAMING_KEEPALIVE_S": "2",
}


class Client:
    """One client's view: the stream messages it received, how its connection ended."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.closed_by: str = ""

    @property
    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    def assert_ended_once_with(self, terminal: str, **payload: Any) -> None:
        """Exactly one terminal event, the last message before the connection closed."""
        assert [t for t in self.types if t in TERMINAL] == [terminal], (self.types[-5:], self.closed_by)
        assert self.types[-1] == terminal, self.types[-5:]
        assert {k: self.messages[-1].get(k) for k in payload} == payload
        seqs = [m["seq"] for m in self.messages]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "events lost or repeated"


def _sse(server: RunningServer, client: Client, started: Callable[[], None], method: str, path: str, **kw: Any) -> None:
    with (
        httpx.Client(timeout=120.0) as http,
        connect_sse(http, method, f"{server.base_url}{path}", headers=auth_headers(), **kw) as source,
    ):
        assert source.response.status_code == 200, source.response.read()
        for sse in source.iter_sse():
            if not sse.data:
                continue
            client.messages.append(json.loads(sse.data))
            if client.types.count("text") == 2:
                started()
    client.closed_by = "end of response"


def _ws(
    server: RunningServer, client: Client, started: Callable[[], None], path: str, first: Mapping[str, Any]
) -> None:
    url = server.base_url.replace("http://", "ws://") + path
    with connect(url, additional_headers=auth_headers(), open_timeout=30) as ws:
        ws.send(json.dumps(first))
        try:
            while True:
                message = json.loads(ws.recv(timeout=120))
                if message["type"] in ("ping", "accepted"):
                    continue
                client.messages.append(message)
                if client.types.count("text") == 2:
                    started()
        except ConnectionClosed as closed:
            client.closed_by = f"close {closed.rcvd.code if closed.rcvd else None}"


def _chat(text_words: int) -> dict[str, Any]:
    words = " ".join(f"w{i}" for i in range(text_words))
    return {
        "model": "fake/slow",
        "messages": [{"role": "user", "content": words}],
        "stream": True,
        "metadata": {"fake_delay_ms": "100"},
    }


class Shutdown:
    """Clients on a started server, a SIGTERM once they are all mid-stream, and what the process did."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.pool = ThreadPoolExecutor(8)
        self.readers: list[Future[None]] = []
        self.started: list[Future[None]] = []
        self.exit_code: int | None = None

    def add(self, reader: Callable[..., None], *args: Any, **kwargs: Any) -> Client:
        client = Client()
        ready: Future[None] = Future()
        self.started.append(ready)

        def mark_started() -> None:
            if not ready.done():
                ready.set_result(None)

        self.readers.append(self.pool.submit(reader, self.server, client, mark_started, *args, **kwargs))
        return client

    def sse_stream(self, stream_id: str) -> Client:
        return self.add(_sse, "GET", f"/api/v1/streams/{stream_id}/events")

    def ws_stream(self, stream_id: str) -> Client:
        return self.add(_ws, "/api/v1/ws/streams", {"type": "resume", "stream_id": stream_id, "after": 0})

    def terminate(self) -> float:
        """SIGTERM once every client is mid-stream; returns the seconds until the process exited."""
        for ready in self.started:
            ready.result(timeout=120)
        began = time.monotonic()
        self.server.process.send_signal(signal.SIGTERM)
        self._wait_for_log("shutdown_draining")  # the drain began (the grace period runs now)
        return began

    def try_new_stream(self) -> tuple[int, str]:
        """Status and error code of a new stream request (0 and the error when the connection failed)."""
        try:
            response = httpx.post(f"{self.server.base_url}/api/v1/streams/test", json=SLOW, headers=auth_headers())
        except httpx.HTTPError as exc:
            return 0, repr(exc)
        return response.status_code, str(response.json().get("data", {}).get("error"))

    def finish(self, began: float) -> float:
        self.exit_code = self.server.process.wait(timeout=EXIT_BOUND_S * 2)
        took = time.monotonic() - began
        for reader in self.readers:
            reader.result(timeout=60)
        self.pool.shutdown()
        return took

    def _wait_for_log(self, marker: str) -> None:
        deadline = time.monotonic() + 30  # bounded; a server that never logs it fails the assertions on its clients
        while marker not in self.server.log() and time.monotonic() < deadline and self.server.process.poll() is None:
            time.sleep(0.05)

    def assert_clean_exit(self, took: float) -> None:
        log = self.server.log()
        assert self.exit_code == 0, log[-3000:]
        assert took < EXIT_BOUND_S, f"exit took {took:.1f}s"
        assert "Traceback" not in log, log[-5000:]
        assert "Exception in callback" not in log, log[-5000:]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**BASE_ENV, "SWITCHYARD_APP_DATA_DIR": str(tmp_path), **extra}


def _redis_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return _env(
        tmp_path,
        SWITCHYARD_STREAMING_BACKEND="redis",
        SWITCHYARD_REDIS_URL=require_service("redis"),
        SWITCHYARD_STREAMING_REDIS_PREFIX=f"e2e:{uuid.uuid4().hex}:",
        **extra,
    )


def test_sigterm_ends_every_stream_with_one_delivered_cancelled_and_exits_cleanly(tmp_path: Path) -> None:
    """Memory backend, one process: SSE and WebSocket clients (test streams and chat) each get `cancelled`/
    `shutdown` as their last message before the connection closes (WebSockets with 1001), a stream short enough
    finishes with `done`, a new stream during the drain is a retryable 503, the cut chat stream's usage row is in
    the ledger, and the process exits 0 in bounded time without a traceback."""
    with running_server(tmp_path, _env(tmp_path), timeout_s=START_S, test_routes=True) as server:
        run = Shutdown(server)
        sse = run.sse_stream(start_stream(server.base_url, **SLOW))
        ws = run.ws_stream(start_stream(server.base_url, **SLOW))
        chat_sse = run.add(_sse, "POST", "/api/v1/chat", json=_chat(400))
        chat_ws = run.add(_ws, "/api/v1/ws/chat", _chat(400))
        short = run.sse_stream(start_stream(server.base_url, events=12, interval_ms=150))
        began = run.terminate()
        refused = run.try_new_stream()
        took = run.finish(began)

    for client in (sse, ws, chat_sse, chat_ws):
        client.assert_ended_once_with("cancelled", reason="shutdown")
    assert sse.closed_by == chat_sse.closed_by == "end of response"
    assert ws.closed_by == chat_ws.closed_by == "close 1001"
    short.assert_ended_once_with("done")
    assert refused == (503, "service_unavailable")
    run.assert_clean_exit(took)
    chat_stream_id = chat_sse.messages[0]["stream_id"]
    with sqlite3.connect(next(tmp_path.glob("server-*.db"))) as db:
        rows = db.execute("SELECT outcome FROM usage_records WHERE stream_id = ?", (chat_stream_id,)).fetchall()
    assert len(rows) == 1, "the cut stream's usage was not flushed to the ledger"


@pytest.mark.redis
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_on_the_redis_backend_delivers_cancelled_before_closing(tmp_path: Path, workers: int) -> None:
    """Redis backend, one process and two workers: SSE and WebSocket clients get `cancelled`/`shutdown` as their
    last message before their connections close, and every process exits 0 in bounded time without a traceback."""
    env = _redis_env(tmp_path, SWITCHYARD_HTTP_WORKERS=str(workers))
    with running_server(tmp_path, env, timeout_s=START_S, test_routes=True) as server:
        run = Shutdown(server)
        clients = [run.sse_stream(start_stream(server.base_url, **SLOW)) for _ in range(2)]
        clients += [run.ws_stream(start_stream(server.base_url, **SLOW)) for _ in range(2)]
        began = run.terminate()
        took = run.finish(began)

    for client in clients:
        client.assert_ended_once_with("cancelled", reason="shutdown")
    assert [c.closed_by for c in clients] == ["end of response"] * 2 + ["close 1001"] * 2
    run.assert_clean_exit(took)
