"""GET /api/v1/usage: the caller's own totals, grouped, with 422 naming a bad query field."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from quart.typing import TestClientProtocol

from domain.usage import UsageRecord
from entrypoints.http.app import create_app
from tests.fakes.usage import InMemoryUsageLedger
from tests.support.app import auth_headers, make_container, make_settings

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _record(customer: str, model: str, when: datetime, outcome: str = "done") -> UsageRecord:
    return UsageRecord(
        request_id=f"r-{customer}-{model}-{when.timestamp()}",
        customer_id=customer,
        capability="text",
        provider=model.split("/")[0],
        model=model,
        outcome=outcome,
        created_at=when,
        input_tokens=10,
        output_tokens=4,
        cost_usd=0.25,
    )


@pytest.fixture
async def fake_client(tmp_path: Path) -> AsyncIterator[tuple[TestClientProtocol, InMemoryUsageLedger]]:
    """The app with an in-memory ledger holding records of alice and bob."""
    ledger = InMemoryUsageLedger()
    for record in (
        _record("alice", "openai/gpt-x", T0),
        _record("alice", "openai/gpt-x", T0 + timedelta(hours=2), outcome="provider_error"),
        _record("alice", "anthropic/claude-y", T0 + timedelta(days=1)),
        _record("bob", "openai/gpt-x", T0),
    ):
        await ledger.record(record)
    container = make_container(make_settings(tmp_path), usage_ledger=ledger)
    app = create_app(container)
    async with app.test_app():
        yield app.test_client(), ledger
    container.unwire()


async def _get(client: TestClientProtocol, query: str, subject: str = "alice") -> tuple[int, dict[str, Any]]:
    response = await client.get(f"/api/v1/usage{query}", headers=auth_headers(subject))
    return response.status_code, await response.get_json()


async def test_totals_are_the_callers_own(fake_client: tuple[TestClientProtocol, InMemoryUsageLedger]) -> None:
    """Alice sees her requests grouped by model, with errors and cost; bob's record is not in them."""
    client, _ = fake_client
    status, body = await _get(client, "?group_by=model")
    assert status == 200, body
    data = body["data"]
    assert data["customer_id"] == "alice"
    totals = {t["group"]: t for t in data["totals"]}
    assert totals["openai/gpt-x"]["requests"] == 2
    assert totals["openai/gpt-x"]["errors"] == 1
    assert totals["anthropic/claude-y"]["cost_usd"] == 0.25
    status, body = await _get(client, "?group_by=model", subject="bob")
    assert [t["requests"] for t in body["data"]["totals"]] == [1]


async def test_window_and_grouping_by_day(fake_client: tuple[TestClientProtocol, InMemoryUsageLedger]) -> None:
    """from/to bound the window ([from, to), dates or date-times) and group_by=day groups by UTC day."""
    client, _ = fake_client
    status, body = await _get(client, "?from=2026-11-01&to=2026-11-02&group_by=day")
    assert status == 200, body
    assert [(t["group"], t["requests"]) for t in body["data"]["totals"]] == [("2026-11-01", 2)]
    status, body = await _get(client, "?from=2026-11-01T13:00:00%2B00:00&group_by=provider")
    assert [(t["group"], t["requests"]) for t in body["data"]["totals"]] == [("anthropic", 1), ("openai", 1)]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?group_by=week", "group_by"),
        ("?from=yesterday", "from"),
        ("?to=2026-13-45", "to"),
        ("?from=2026-11-02&to=2026-11-01", "to"),
        ("?customer_id=bob", "customer_id"),
    ],
)
async def test_bad_query_values_are_422_naming_the_field(
    fake_client: tuple[TestClientProtocol, InMemoryUsageLedger], query: str, field: str
) -> None:
    """Every bad query value answers 422 and names the offending field."""
    client, _ = fake_client
    status, body = await _get(client, query)
    assert status == 422, body
    assert field in body["message"]


async def test_usage_requires_a_token(fake_client: tuple[TestClientProtocol, InMemoryUsageLedger]) -> None:
    """Without a bearer token the route answers 401."""
    client, _ = fake_client
    assert (await client.get("/api/v1/usage")).status_code == 401


async def test_a_chat_call_shows_up_in_usage(client: TestClientProtocol) -> None:
    """End to end on the real SQLite ledger: a chat is recorded off the hot path and appears in the caller's totals."""
    body = {"model": "fake/echo", "messages": [{"role": "user", "content": "hello there"}]}
    response = await client.post("/api/v1/chat", json=body, headers=auth_headers("carol"))
    assert response.status_code == 200, await response.get_json()
    deadline = time.monotonic() + 10
    while True:
        status, usage = await _get(client, "?group_by=provider", subject="carol")
        assert status == 200, usage
        if usage["data"]["totals"]:
            break
        assert time.monotonic() < deadline, "the chat's usage record never reached the ledger"
        await asyncio.sleep(0.05)
    (total,) = usage["data"]["totals"]
    assert (total["group"], total["requests"], total["output_tokens"]) == ("fake", 1, 2)
