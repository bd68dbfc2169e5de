"""E2E helpers for stream tests: start a scripted stream, read SSE events, wait for a status."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from httpx_sse import connect_sse

from tests.support.app import auth_headers

__all__ = ["read_sse", "start_stream", "wait_for_status"]


def start_stream(base_url: str, *, subject: str = "alice", **script: Any) -> str:
    """Start a scripted test stream; returns its id."""
    response = httpx.post(f"{base_url}/api/v1/streams/test", json=script, headers=auth_headers(subject))
    assert response.status_code == 200, response.text
    stream_id: str = response.json()["data"]["stream_id"]
    return stream_id


def read_sse(
    base_url: str,
    stream_id: str,
    *,
    limit: int | None = None,
    last_event_id: int | None = None,
    subject: str = "alice",
    timeout_s: float = 15.0,
) -> list[dict[str, Any]]:
    """SSE events (as their JSON data) until the response ends or ``limit`` events were read (then drop)."""
    headers = auth_headers(subject)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    events: list[dict[str, Any]] = []
    with (
        httpx.Client(timeout=timeout_s) as client,
        connect_sse(client, "GET", f"{base_url}/api/v1/streams/{stream_id}/events", headers=headers) as source,
    ):
        assert source.response.status_code == 200
        for sse in source.iter_sse():
            if not sse.data:  # the opening `retry:` hint
                continue
            data = json.loads(sse.data)
            if sse.event != "disconnect":
                assert sse.id == str(data["seq"])
                assert sse.event == data["type"]
            events.append(data)
            if limit is not None and len(events) >= limit:
                break
    return events


def wait_for_status(base_url: str, stream_id: str, status: str, *, timeout_s: float = 5.0) -> dict[str, Any]:
    """Poll the stream's status until it is ``status``; returns the view."""
    deadline = time.monotonic() + timeout_s
    while True:
        view: dict[str, Any] = httpx.get(f"{base_url}/api/v1/streams/{stream_id}", headers=auth_headers()).json()
        if view["data"]["status"] == status:
            return view
        assert time.monotonic() < deadline, f"stream stayed {view['data']['status']}, wanted {status}"
        time.sleep(0.05)
