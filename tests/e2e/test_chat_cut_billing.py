"""A real server: a chat stream cancelled mid-way is billed (estimated), and a silent vendor is one error both ways."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.support.app import auth_headers
from tests.support.server import RunningServer, running_server

WORDS = " ".join(f"word{n}" for n in range(40))
CUT_AFTER = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # The vendor bounds are short so the silent-vendor test ends quickly (the stream's silence bound, and the bound on
    # a call made without streaming); retries stay at their default.
    env = {"SWITCHYARD_PROVIDERS_REQUEST_TIMEOUT_S": "0.5", "SWITCHYARD_PROVIDERS_COMPLETE_TIMEOUT_S": "0.5"}
    with running_server(tmp_path_factory.mktemp("chat-cut"), env, timeout_s=60.0) as running:
        yield running


def _database(server: RunningServer) -> Path:
    port = server.base_url.rsplit(":", 1)[1]
    return server.log_path.parent / f"server-{port}.db"


def _chat(**metadata: str) -> dict[str, Any]:
    return {"model": "fake/echo", "messages": [{"role": "user", "content": WORDS}], "metadata": metadata}


def _ledger_rows(server: RunningServer, subject: str, timeout_s: float = 15.0) -> list[sqlite3.Row]:
    """The subject's usage rows, once the ledger's writer flushed at least one."""
    deadline = time.monotonic() + timeout_s
    while True:
        with sqlite3.connect(_database(server)) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute("SELECT * FROM usage_records WHERE customer_id = ?", (subject,)).fetchall()
        if rows:
            return rows
        assert time.monotonic() < deadline, "no usage row was written"
        time.sleep(0.1)


def test_a_stream_cancelled_after_n_chunks_is_billed_an_estimate(server: RunningServer) -> None:
    """Cancel after 5 chunks: the ledger row and GET /api/v1/usage show input, output and cost, estimated."""
    subject = "cut-billing"
    headers = auth_headers(subject)
    types: list[str] = []
    with (
        httpx.Client(timeout=15) as client,
        connect_sse(
            client,
            "POST",
            f"{server.base_url}/api/v1/chat",
            json={**_chat(fake_delay_ms="100"), "stream": True},
            headers=headers,
        ) as source,
    ):
        stream_id = source.response.headers["X-Stream-ID"]
        for sse in source.iter_sse():
            if not sse.data:
                continue
            types.append(sse.event)
            if types.count("text") == CUT_AFTER and "cancel" not in types:
                cancelled = client.post(f"{server.base_url}/api/v1/streams/{stream_id}/cancel", headers=headers)
                assert cancelled.status_code == 200, cancelled.text
                types.append("cancel")
    assert types[-1] == "cancelled", types
    delivered = types.count("text")
    assert CUT_AFTER <= delivered < 40

    [row] = _ledger_rows(server, subject)
    assert (row["outcome"], bool(row["estimated"])) == ("cancelled", True)
    assert row["input_tokens"] > 40  # 40 words are more tokens than that in cl100k ("word12" is two)
    assert row["output_tokens"] >= delivered
    assert row["cost_usd"] > 0

    usage = httpx.get(f"{server.base_url}/api/v1/usage?group_by=model", headers=headers).json()["data"]
    [total] = usage["totals"]
    assert (total["group"], total["requests"], total["estimated"]) == ("fake/echo", 1, 1)
    assert (total["input_tokens"], total["output_tokens"]) == (row["input_tokens"], row["output_tokens"])
    assert total["cost_usd"] == pytest.approx(row["cost_usd"])


def test_a_silent_vendor_is_provider_timeout_streamed_and_not(server: RunningServer) -> None:
    """A vendor that sends nothing: JSON answers 504 provider_timeout, SSE ends with error provider_timeout."""
    body = _chat(fake_hang_after="0")
    response = httpx.post(f"{server.base_url}/api/v1/chat", json=body, headers=auth_headers(), timeout=15)
    assert response.status_code == 504, response.text
    assert response.json()["data"]["error"] == "provider_timeout"

    with (
        httpx.Client(timeout=15) as client,
        connect_sse(
            client, "POST", f"{server.base_url}/api/v1/chat", json={**body, "stream": True}, headers=auth_headers()
        ) as source,
    ):
        events = [(sse.event, json.loads(sse.data)) for sse in source.iter_sse() if sse.data]
    assert events[-1][0] == "error", events
    assert events[-1][1]["code"] == "provider_timeout"
    assert events[-1][1]["retryable"] is True
