"""Streams keep their promise when a process dies or Redis restarts: every reader gets exactly one terminal event.

Real ``switchyard serve`` processes on the Redis stream log. The restart test starts a Redis server of its own on a
free port (the machine's Redis is shared by the whole suite and must not be restarted).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from domain.streaming import StreamEvent, sequence_problems
from domain.types import StreamId
from tests.e2e.streams_client import read_sse, start_stream, wait_for_status
from tests.support.app import auth_headers
from tests.support.server import RunningServer, free_port, running_server
from tests.support.services import require_service, service_missing

pytestmark = [pytest.mark.redis, pytest.mark.slow]

LEASE_S = 1.5


def _problems(events: list[dict[str, Any]], after: int = 0) -> list[str]:
    typed = [
        StreamEvent(StreamId(e["stream_id"]), e["seq"], e["type"], {}) for e in events if e["type"] != "disconnect"
    ]
    return sequence_problems(typed, after=after)


def test_a_killed_producer_ends_its_stream_with_producer_lost_on_the_other_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """kill -9 the producing server: a reader resuming on the other one gets a terminal ``producer_lost`` in time."""
    env = {
        "SWITCHYARD_STREAMING_BACKEND": "redis",
        "SWITCHYARD_REDIS_URL": require_service("redis"),
        "SWITCHYARD_STREAMING_REDIS_PREFIX": f"e2e:{uuid.uuid4().hex}:",
        "SWITCHYARD_STREAMING_PRODUCER_LEASE_S": str(LEASE_S),
    }
    with ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        servers = [running_server(tmp_path_factory.mktemp(name), env, test_routes=True) for name in ("a", "b")]
        a, b = pool.map(stack.enter_context, servers)
        stream_id = start_stream(a.base_url, events=2, hang=True)
        first = read_sse(a.base_url, stream_id, limit=4)
        assert [e["type"] for e in first] == ["start", "text", "text", "usage"]
        a.process.kill()
        a.process.wait()
        started = time.monotonic()
        rest = read_sse(b.base_url, stream_id, last_event_id=first[-1]["seq"], timeout_s=LEASE_S * 10)
        assert time.monotonic() - started < LEASE_S * 10
        assert [e["type"] for e in rest] == ["error"]
        assert rest[0]["code"] == "producer_lost"
        assert rest[0]["retryable"] is True
        assert _problems(first + rest) == []
        assert wait_for_status(b.base_url, stream_id, "error")["data"]["last_seq"] == 5


@contextmanager
def _own_redis(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A Redis server of the test's own on a free port; yields its URL and a restart function."""
    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("redis-server", "the binary is not installed (the restart test starts its own server)")
    port = free_port()

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis(port=port)
        for _ in range(100):
            try:
                if client.ping():
                    break
            except Exception:
                time.sleep(0.05)
        client.close()
        return process

    current = [start()]

    def restart() -> None:
        current[0].terminate()
        current[0].wait(timeout=10)
        current[0] = start()

    try:
        yield f"redis://127.0.0.1:{port}/0", restart
    finally:
        current[0].terminate()
        current[0].wait(timeout=10)


def test_a_redis_restart_ends_in_flight_streams_and_the_next_requests_succeed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Restart Redis mid-stream: the reader gets one terminal event; afterwards every new stream works at once."""
    tmp = tmp_path_factory.mktemp("redis-restart")
    with _own_redis(tmp) as (url, restart):
        env = {
            "SWITCHYARD_STREAMING_BACKEND": "redis",
            "SWITCHYARD_REDIS_URL": url,
            "SWITCHYARD_STREAMING_PRODUCER_LEASE_S": str(LEASE_S),
        }
        server: RunningServer
        with running_server(tmp, env, test_routes=True) as server, ThreadPoolExecutor(1) as pool:
            # Warm the pool: several connections, all of which the restart will leave dead.
            warm = [start_stream(server.base_url, events=2) for _ in range(8)]
            for stream_id in warm:
                assert read_sse(server.base_url, stream_id)[-1]["type"] == "done"
            stream_id = start_stream(server.base_url, events=400, interval_ms=25)
            reading = pool.submit(read_sse, server.base_url, stream_id, timeout_s=LEASE_S * 10)
            time.sleep(0.5)
            restart()
            events = reading.result(timeout=LEASE_S * 20)
            assert events, "the reader got nothing"
            last = events[-1]
            assert last["type"] == "error", f"last event {last}"
            assert last["retryable"] is True
            assert _problems(events) == []
            ok = 0
            for _ in range(10):
                response = httpx.post(
                    f"{server.base_url}/api/v1/streams/test",
                    json={"events": 2},
                    headers=auth_headers(),
                )
                if response.status_code == 200:
                    ok += read_sse(server.base_url, response.json()["data"]["stream_id"])[-1]["type"] == "done"
            assert ok == 10
            assert "Traceback" not in server.log()
