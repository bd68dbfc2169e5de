"""A page on another origin calls Switchyard the way a web app does: `fetch` streaming a chat (a preflighted request
with the bearer token, the stream headers readable) and `EventSource` following a live stream with a ticket."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Page

from tests.support.app import auth_headers, mint
from tests.support.server import RunningServer

PROMPT = "one two three four five six"


def _open(page: Page, other_origin: str) -> None:
    """Open the test page of the other origin (its scripts define the calls the tests run)."""
    page.goto(f"{other_origin}/cross-origin.html")


def test_fetch_streams_a_chat_across_origins(page: Page, server: RunningServer, other_origin: str) -> None:
    """The browser's preflighted POST (bearer token, JSON body) streams the answer; the exposed X-Stream-ID and
    X-Request-ID are readable (a failed preflight or a missing Allow-Origin would make fetch reject)."""
    _open(page, other_origin)
    result: dict[str, Any] = page.evaluate(
        "([base, token, prompt]) => followWithFetch(base, token, prompt)", [server.base_url, mint("alice"), PROMPT]
    )
    assert result["status"] == 200
    assert result["text"] == PROMPT
    assert result["types"][0] == "start"
    assert result["types"][-1] == "done"
    assert result["streamId"].startswith("st_")
    assert result["requestId"]
    assert result["chunks"] >= 1


def test_event_source_follows_a_live_stream_with_a_ticket(page: Page, server: RunningServer, other_origin: str) -> None:
    """A slow stream started elsewhere is followed live by EventSource with ?ticket=: every event, in order, once."""
    _open(page, other_origin)
    body = {"model": "fake/slow", "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    with httpx.stream("POST", f"{server.base_url}/api/v1/chat", json=body, headers=auth_headers()) as response:
        stream_id = response.headers["X-Stream-ID"]  # leave at once: the stream runs on in the server
    result: dict[str, Any] = page.evaluate(
        "([base, token, id]) => followWithEventSource(base, token, id)", [server.base_url, mint("alice"), stream_id]
    )
    events = result["events"]
    assert [int(event["id"]) for event in events] == list(range(1, len(events) + 1))
    assert "".join(event["text"] for event in events if event["type"] == "text") == PROMPT
    assert events[-1]["type"] == "done"
    assert all(event["stream_id"] == stream_id for event in events)


def test_event_source_without_a_ticket_gives_up(page: Page, server: RunningServer, other_origin: str) -> None:
    """No ticket, no header: the events route answers 401 and EventSource closes instead of retrying forever."""
    _open(page, other_origin)
    body = {"model": "fake/echo", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    stream_id = httpx.post(f"{server.base_url}/api/v1/chat", json=body, headers=auth_headers()).headers["X-Stream-ID"]
    state = page.evaluate("([base, id]) => eventSourceWithoutTicket(base, id)", [server.base_url, stream_id])
    assert state == 2  # EventSource.CLOSED
