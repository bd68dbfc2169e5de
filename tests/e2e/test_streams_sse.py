"""Streams over a real Hypercorn server: SSE resume, disconnect vs. grace vs. cancel, keepalive, owner scoping."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.streams_client import read_sse, start_stream, wait_for_status
from tests.support.app import auth_headers
from tests.support.server import RunningServer, running_server

ENV = {
    "SWITCHYARD_STREAMING_RESUME_GRACE_S": "2.0",
    "SWITCHYARD_STREAMING_FIRST_CONSUMER_S": "1.0",
    "SWITCHYARD_STREAMING_KEEPALIVE_S": "0.2",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("streams"), ENV, test_routes=True) as running:
        yield running


def test_sse_reconnect_with_last_event_id_gets_exactly_the_rest(server: RunningServer) -> None:
    """A client that drops after 5 events and reconnects with Last-Event-ID gets seq 6.. to the one `done`."""
    stream_id = start_stream(server.base_url, events=30, interval_ms=15)
    first = read_sse(server.base_url, stream_id, limit=5)
    assert [e["seq"] for e in first] == [1, 2, 3, 4, 5]
    assert first[0]["type"] == "start"
    rest = read_sse(server.base_url, stream_id, last_event_id=first[-1]["seq"])
    assert [e["seq"] for e in rest] == list(range(6, 34))
    assert [e["type"] for e in rest].count("done") == 1
    assert rest[-1]["type"] == "done"
    texts = [e["text"] for e in first + rest if e["type"] == "text"]
    assert texts == [f"tok{i} " for i in range(30)]


def test_after_query_resumes_and_a_finished_stream_replays(server: RunningServer) -> None:
    """?after=N on a finished stream replays exactly the events after N, then the response ends."""
    stream_id = start_stream(server.base_url, events=3)
    wait_for_status(server.base_url, stream_id, "done")
    response = httpx.get(f"{server.base_url}/api/v1/streams/{stream_id}/events?after=2", headers=auth_headers())
    ids = [line[4:] for line in response.text.splitlines() if line.startswith("id: ")]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("retry: 3000")
    assert ids == ["3", "4", "5", "6"]


def test_disconnect_does_not_cancel(server: RunningServer) -> None:
    """Dropping the only consumer leaves the producer running: the stream still ends with `done`."""
    stream_id = start_stream(server.base_url, events=20, interval_ms=25)  # runs ~0.5 s, well inside the 2 s grace
    read_sse(server.base_url, stream_id, limit=2)
    view = wait_for_status(server.base_url, stream_id, "done", timeout_s=10)
    assert view["data"]["last_seq"] == 23


def test_grace_period_cancels_an_abandoned_stream(server: RunningServer) -> None:
    """With nobody reading for resume_grace_s, the upstream work is cancelled and the stream ends `cancelled`."""
    stream_id = start_stream(server.base_url, events=1, hang=True)
    read_sse(server.base_url, stream_id, limit=1)
    wait_for_status(server.base_url, stream_id, "cancelled", timeout_s=10)
    events = read_sse(server.base_url, stream_id)
    assert events[-1]["type"] == "cancelled"
    assert events[-1]["reason"] == "grace"


def test_explicit_cancel_ends_the_stream_within_a_second(server: RunningServer) -> None:
    """POST /cancel by the owner stops the producer at once; readers get one `cancelled`; others get 404."""
    stream_id = start_stream(server.base_url, events=1, hang=True)
    url = f"{server.base_url}/api/v1/streams/{stream_id}/cancel"
    assert httpx.post(url, headers=auth_headers("bob")).status_code == 404
    started = time.monotonic()
    response = httpx.post(url, headers=auth_headers())
    assert time.monotonic() - started < 1.0
    assert response.json()["data"]["status"] == "cancelled"
    events = read_sse(server.base_url, stream_id)
    assert [e["type"] for e in events] == ["start", "text", "usage", "cancelled"]
    assert events[-1]["reason"] == "client"


def test_keepalive_comments_flow_while_the_producer_is_quiet(server: RunningServer) -> None:
    """A quiet stream sends `: keepalive` comments every keepalive_s."""
    stream_id = start_stream(server.base_url, events=1, interval_ms=700)
    with httpx.stream("GET", f"{server.base_url}/api/v1/streams/{stream_id}/events", headers=auth_headers()) as r:
        lines = list(r.iter_lines())
    assert lines.count(": keepalive") >= 2
    assert lines[-2].startswith("data: ")
    assert '"type":"done"' in lines[-2]


def test_unknown_and_foreign_streams_are_404_envelopes(server: RunningServer) -> None:
    """Unknown stream and another customer's stream both answer the 404 envelope; a bad cursor is 422."""
    stream_id = start_stream(server.base_url, events=1)
    for sid, subject in (("st_nope", "alice"), (stream_id, "bob")):
        response = httpx.get(f"{server.base_url}/api/v1/streams/{sid}/events", headers=auth_headers(subject))
        assert response.status_code == 404
        assert response.json()["data"]["error"] == "not_found"
    bad = httpx.get(
        f"{server.base_url}/api/v1/streams/{stream_id}/events", headers={**auth_headers(), "Last-Event-ID": "x"}
    )
    assert bad.status_code == 422
