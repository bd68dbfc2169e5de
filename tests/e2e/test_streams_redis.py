"""Two server processes sharing one Redis: a stream produced by the first is resumed (and cancelled) via the second."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest

from tests.e2e.streams_client import read_sse, start_stream, wait_for_status
from tests.support.app import auth_headers
from tests.support.server import RunningServer, running_server
from tests.support.services import require_service

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, RunningServer]]:
    env = {
        "SWITCHYARD_STREAMING_BACKEND": "redis",
        "SWITCHYARD_REDIS_URL": require_service("redis"),
        "SWITCHYARD_STREAMING_REDIS_PREFIX": f"e2e:{uuid.uuid4().hex}:",
    }
    # Start both at once (startup is mostly imports): the stack stops whichever started, whatever happens.
    with ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        servers = [running_server(tmp_path_factory.mktemp(name), env, test_routes=True) for name in ("a", "b")]
        first, second = pool.map(stack.enter_context, servers)
        yield first, second


def test_stream_produced_by_one_process_resumes_through_the_other(pair: tuple[RunningServer, RunningServer]) -> None:
    """Read 5 events from A, drop, resume from B with Last-Event-ID: exactly the rest, ending with `done`."""
    a, b = pair
    stream_id = start_stream(a.base_url, events=30, interval_ms=20)
    first = read_sse(a.base_url, stream_id, limit=5)
    rest = read_sse(b.base_url, stream_id, last_event_id=first[-1]["seq"])
    assert [e["seq"] for e in first + rest] == list(range(1, 34))
    assert rest[-1]["type"] == "done"
    assert read_sse(b.base_url, stream_id, subject="alice", last_event_id=33) == []


def test_cancel_through_the_other_process_ends_the_stream(pair: tuple[RunningServer, RunningServer]) -> None:
    """A cancel sent to B ends A's stream with `cancelled` (A's producer is fenced out); B answers 404 to others."""
    a, b = pair
    stream_id = start_stream(a.base_url, events=1, hang=True)
    url = f"{b.base_url}/api/v1/streams/{stream_id}/cancel"
    assert httpx.post(url, headers=auth_headers("bob")).status_code == 404
    assert httpx.post(url, headers=auth_headers()).json()["data"]["status"] == "cancelled"
    wait_for_status(a.base_url, stream_id, "cancelled")
    events = read_sse(a.base_url, stream_id)
    assert [e["type"] for e in events] == ["start", "text", "usage", "cancelled"]
