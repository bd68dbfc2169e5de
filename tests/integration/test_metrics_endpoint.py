"""GET /metrics through the real app: Prometheus text that parses, and counters that move as requests and streams go."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from quart.typing import TestClientProtocol

from adapters.memory.stream_log import InMemoryStreamLog
from domain.types import CustomerId
from entrypoints.http.app import create_app
from ports.metrics import Metrics
from services.streaming.manager import StreamingManager, StreamPublisher
from tests.support.app import auth_headers, make_container, make_settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(client: TestClientProtocol, headers: Mapping[str, str] | None = None) -> Samples:
    response = await client.get("/metrics", headers=dict(headers or {}))
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    page = await response.get_data(as_text=True)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def _sum(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for (sample, found), value in samples.items() if sample == name and wanted <= set(found))


@contextlib.asynccontextmanager
async def _app(tmp_path: Path, **sections: dict[str, Any]) -> AsyncIterator[tuple[TestClientProtocol, Any]]:
    container = make_container(make_settings(tmp_path, **sections))
    app = create_app(container)
    async with app.test_app():
        yield app.test_client(), container
    container.unwire()


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[tuple[TestClientProtocol, Any]]:
    """A started app with test settings, and its container."""
    async with _app(tmp_path) as pair:
        yield pair


async def test_http_requests_are_counted_by_route_and_status(started: tuple[TestClientProtocol, Any]) -> None:
    """Each request moves http_requests_total for its route template and status, and the latency histogram."""
    client, _ = started
    before = await _scrape(client)
    for _ in range(3):
        assert (await client.get("/health")).status_code == 200
    assert (await client.get("/no/such/route")).status_code == 404
    after = await _scrape(client)
    health = {"route": "/health", "method": "GET", "status": "200"}
    assert _sum(after, "http_requests_total", **health) - _sum(before, "http_requests_total", **health) == 3
    assert _sum(after, "http_requests_total", route="<unmatched>", status="404") >= 1
    count = "http_request_duration_seconds_count"
    assert _sum(after, count, route="/health") - _sum(before, count, route="/health") == 3


async def test_a_chat_call_moves_provider_token_and_ledger_counters(started: tuple[TestClientProtocol, Any]) -> None:
    """A chat through the fake vendor counts the provider call, its tokens, and (once flushed) the ledger write."""
    client, _ = started
    body = {"model": "fake/echo", "messages": [{"role": "user", "content": "hello there"}]}
    response = await client.post("/api/v1/chat", json=body, headers=auth_headers())
    assert response.status_code == 200, await response.get_json()
    samples = await _scrape(client)
    assert _sum(samples, "provider_requests_total", provider="fake") == 1
    assert _sum(samples, "tokens_total", provider="fake", kind="output") == 2
    deadline = time.monotonic() + 10
    while _sum(samples, "ledger_records_written_total") < 1:
        assert time.monotonic() < deadline, "the usage record was never written"
        await asyncio.sleep(0.05)
        samples = await _scrape(client)


async def test_a_stream_moves_the_stream_counters(started: tuple[TestClientProtocol, Any]) -> None:
    """A stream run by the StreamingManager on the app's metrics shows up on /metrics (started, events, completed)."""
    client, container = started
    metrics: Metrics = container.metrics()
    manager = StreamingManager(InMemoryStreamLog(), metrics=metrics)

    async def produce(publisher: StreamPublisher) -> None:
        await publisher.publish("text", {"text": "hel"})
        await publisher.publish("text", {"text": "lo"})

    before = await _scrape(client)
    owner = CustomerId("alice")
    stream_id = await manager.start(owner=owner, producer=produce)
    events = [event async for event in manager.subscribe(stream_id, owner=owner)]
    assert events[-1].terminal
    after = await _scrape(client)
    await manager.aclose()
    assert _sum(after, "streams_started_total") - _sum(before, "streams_started_total") == 1
    assert _sum(after, "streams_completed_total", outcome="done") - _sum(before, "streams_completed_total") == 1
    assert _sum(after, "stream_events_total", type="text") - _sum(before, "stream_events_total", type="text") == 2
    assert _sum(after, "streams_active") == 0


async def test_disabled_metrics_answer_404(tmp_path: Path) -> None:
    """With http.metrics_enabled off there is no page (and requests still work)."""
    async with _app(tmp_path, http={"metrics_enabled": False}) as (client, _):
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/metrics")).status_code == 404


async def test_metrics_can_require_a_token(tmp_path: Path) -> None:
    """With auth.metrics_require_auth the page needs a valid bearer token."""
    async with _app(tmp_path, auth={"metrics_require_auth": True}) as (client, _):
        assert (await client.get("/metrics")).status_code == 401
        bad = {"Authorization": "Bearer not-a-token"}
        assert (await client.get("/metrics", headers=bad)).status_code == 401
        samples = await _scrape(client, auth_headers())
        assert _sum(samples, "http_requests_total", route="/metrics", status="401") == 2
