"""A real ``switchyard serve`` on the embedded default: chat with a fake model over HTTP, whole and streamed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.support.app import auth_headers
from tests.support.server import RunningServer, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("chat-e2e")) as running:
        yield running


def body(model: str = "fake/echo", text: str = "hello from curl", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def test_models_and_whole_answer(server: RunningServer) -> None:
    """GET /api/v1/models lists the fake models; POST /api/v1/chat answers the envelope with the echoed text."""
    models = httpx.get(f"{server.base_url}/api/v1/models", headers=auth_headers()).json()["data"]["models"]
    assert "fake/echo" in [m["id"] for m in models]
    response = httpx.post(f"{server.base_url}/api/v1/chat", json=body(), headers=auth_headers(), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["text"] == "hello from curl"


def test_streamed_chat_is_sse_ending_in_done(server: RunningServer) -> None:
    """stream=true answers text/event-stream: start (with the X-Stream-ID id), the text, done last."""
    with (
        httpx.Client(timeout=10) as client,
        connect_sse(
            client, "POST", f"{server.base_url}/api/v1/chat", json=body(stream=True), headers=auth_headers()
        ) as source,
    ):
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        stream_id = source.response.headers["X-Stream-ID"]
        events = [(sse.event, json.loads(sse.data)) for sse in source.iter_sse() if sse.data]
    types = [t for t, _ in events]
    assert types[0] == "start"
    assert types[-1] == "done"
    assert events[0][1]["stream_id"] == stream_id
    assert "".join(p["text"] for t, p in events if t == "text") == "hello from curl"
