"""Limits and budgets over HTTP on the embedded default (no Redis): a 429 with Retry-After and the X-RateLimit headers
on the native API and both front doors, before any vendor call; budgets named by their code; per-customer overrides
through the admin routes; an API key's model allow-list as a 403 naming the model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart.typing import TestClientProtocol

from entrypoints.http.app import create_app
from tests.support.app import auth_headers, make_container, make_settings

ADMIN = auth_headers("ops", scopes=("admin",))
ALICE = auth_headers("alice")


def chat(text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "fake/echo", "messages": [{"role": "user", "content": text}], **extra}


async def started(tmp_path: Path, **quotas: Any) -> AsyncIterator[TestClientProtocol]:
    container = make_container(make_settings(tmp_path, quotas=quotas))
    app = create_app(container)
    async with app.test_app():
        yield app.test_client()
    container.unwire()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClientProtocol]:
    async for test_client in started(tmp_path, requests_per_minute=2):
        yield test_client


async def test_over_the_minute_limit_is_a_429_with_the_headers(client: TestClientProtocol) -> None:
    """Two chats a minute: the third is a 429 `rate_limited` with Retry-After and X-RateLimit-Limit/Remaining/Reset."""
    for _ in range(2):
        assert (await client.post("/api/v1/chat", json=chat(), headers=ALICE)).status_code == 200
    refused = await client.post("/api/v1/chat", json=chat(), headers=ALICE)
    assert refused.status_code == 429
    body = await refused.get_json()
    assert body["data"]["error"] == "rate_limited"
    assert body["data"]["context"]["limit"] == "requests_per_minute"
    reset = int(refused.headers["X-RateLimit-Reset"])
    assert 0 < reset <= 60
    assert refused.headers["Retry-After"] == str(reset)
    assert (refused.headers["X-RateLimit-Limit"], refused.headers["X-RateLimit-Remaining"]) == ("2", "0")
    assert (await client.post("/api/v1/chat", json=chat(), headers=auth_headers("bob"))).status_code == 200


async def test_the_front_doors_answer_the_same_429_in_their_shapes(client: TestClientProtocol) -> None:
    """OpenAI's door: rate_limit_error with the headers; Anthropic's: rate_limit_error with them too."""
    for _ in range(2):
        await client.post("/api/v1/chat", json=chat(), headers=ALICE)
    openai = await client.post("/v1/chat/completions", json=chat(), headers=ALICE)
    assert openai.status_code == 429
    assert (await openai.get_json())["error"]["type"] == "rate_limit_error"
    assert openai.headers["X-RateLimit-Limit"] == "2"
    assert "Retry-After" in openai.headers
    message = {"model": "fake/echo", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    anthropic = await client.post("/v1/messages", json=message, headers={**ALICE, "anthropic-version": "2023-06-01"})
    assert anthropic.status_code == 429
    assert (await anthropic.get_json())["error"]["type"] == "rate_limit_error"
    assert anthropic.headers["X-RateLimit-Remaining"] == "0"


async def test_a_budget_override_is_refused_by_its_code_and_can_be_removed(client: TestClientProtocol) -> None:
    """An admin sets alice a $0.001 daily budget: a request reserving more is a 429 `daily_budget_exceeded` in USD
    (no Retry-After: alone it can never fit); removing the override restores the defaults."""
    put = await client.put("/api/v1/admin/quotas/alice", json={"daily_budget_usd": 0.001, "requests_per_minute": -1},
                           headers=ADMIN)  # fmt: skip
    assert put.status_code == 200, await put.get_data(as_text=True)
    effective = (await put.get_json())["data"]["effective"]
    assert effective == {"requests_per_minute": None, "tokens_per_minute": None, "concurrent_streams": None,
                         "daily_budget_usd": 0.001, "monthly_budget_usd": None}  # fmt: skip
    refused = await client.post("/api/v1/chat", json=chat(max_tokens=1000), headers=ALICE)
    assert refused.status_code == 429
    assert (await refused.get_json())["data"]["error"] == "daily_budget_exceeded"
    assert refused.headers["X-RateLimit-Limit"] == "0.001"
    assert "Retry-After" not in refused.headers
    for _ in range(3):  # -1 lifted the minute limit for alice; small requests fit the budget
        assert (await client.post("/api/v1/chat", json=chat(max_tokens=10), headers=ALICE)).status_code == 200
    report = (await (await client.get("/api/v1/admin/quotas/alice", headers=ADMIN)).get_json())["data"]
    assert report["usage"]["spent_today_usd"] > 0
    assert report["usage"]["in_flight"] == 0
    assert (await client.get("/api/v1/admin/quotas", headers=ADMIN)).status_code == 200
    assert (await (await client.delete("/api/v1/admin/quotas/alice", headers=ADMIN)).get_json())["data"]["removed"]
    assert (await client.post("/api/v1/chat", json=chat(max_tokens=1000), headers=ALICE)).status_code == 429  # rpm


async def test_bad_overrides_and_non_admins_are_refused(client: TestClientProtocol) -> None:
    """A value below -1 is a 422 naming it; a non-admin is a 403 on every quota route."""
    bad = await client.put("/api/v1/admin/quotas/alice", json={"concurrent_streams": -5}, headers=ADMIN)
    assert bad.status_code == 422
    assert (await bad.get_json())["data"]["context"]["field"] == "concurrent_streams"
    typo = await client.put("/api/v1/admin/quotas/alice", json={"daily_budget": 1}, headers=ADMIN)
    assert typo.status_code == 422
    for method in ("get", "put", "delete"):
        response = await getattr(client, method)("/api/v1/admin/quotas/alice", headers=ALICE, json={})
        assert response.status_code == 403


async def test_a_stream_over_the_concurrency_limit_is_refused_before_it_starts(tmp_path: Path) -> None:
    """One call in flight: while a slow stream runs, a second stream is a 429 (not a stream that errors)."""
    async for client in started(tmp_path, concurrent_streams=1):
        slow = chat("word " * 30, stream=True, metadata={"fake_delay_ms": "40"}, max_tokens=50)
        first = asyncio.create_task(client.post("/api/v1/chat", json=slow, headers=ALICE))
        await asyncio.sleep(0.2)
        second = await client.post("/api/v1/chat", json=chat(stream=True), headers=ALICE)
        assert second.status_code == 429
        assert second.headers["X-RateLimit-Limit"] == "1"
        assert (await first).status_code == 200
        assert (await client.post("/api/v1/chat", json=chat(stream=True), headers=ALICE)).status_code == 200


async def test_a_keys_model_allow_list_is_a_403_naming_the_model(tmp_path: Path) -> None:
    """A key for fake/echo only: fake/fixed is a 403 naming it on the native API and OpenAI's door; echo works."""
    async for client in started(tmp_path):
        issued = await client.post("/api/v1/admin/keys", headers=ADMIN,
                                   json={"customer_id": "acme", "name": "ci", "models": ["fake/echo"]})  # fmt: skip
        key = {"Authorization": f"Bearer {(await issued.get_json())['data']['key']}"}
        assert (await client.post("/api/v1/chat", json=chat(), headers=key)).status_code == 200
        native = await client.post("/api/v1/chat", json={**chat(), "model": "fake/fixed"}, headers=key)
        assert native.status_code == 403
        assert (await native.get_json())["data"]["context"]["model"] == "fake/fixed"
        door = await client.post("/v1/chat/completions", json={**chat(), "model": "fake/fixed"}, headers=key)
        assert door.status_code == 403
        assert "fake/fixed" in (await door.get_json())["error"]["message"]


async def test_successful_limited_responses_carry_the_headers_everywhere(tmp_path: Path) -> None:
    """Ten requests a minute: every admitted answer (native chat whole and streamed, embeddings, both front doors,
    streamed too) says the limit, what is left after it and when it resets; an unlimited caller's answers carry none."""
    async for client in started(tmp_path, requests_per_minute=10):
        answers = [
            await client.post("/api/v1/chat", json=chat(), headers=ALICE),
            await client.post("/api/v1/chat", json=chat(stream=True), headers=ALICE),
            await client.post("/api/v1/embeddings", json={"model": "fake/embed", "input": ["a"]}, headers=ALICE),
            await client.post("/v1/chat/completions", json=chat(), headers=ALICE),
            await client.post("/v1/chat/completions", json=chat(stream=True), headers=ALICE),
            await client.post(
                "/v1/messages",
                json={"model": "fake/echo", "max_tokens": 16, "stream": True,
                      "messages": [{"role": "user", "content": "hi"}]},
                headers={**ALICE, "anthropic-version": "2023-06-01"},
            ),
        ]  # fmt: skip
        remaining = []
        for answer in answers:
            assert answer.status_code == 200, await answer.get_data(as_text=True)
            assert answer.headers["X-RateLimit-Limit"] == "10"
            assert answer.headers["X-RateLimit-Resource"] == "requests_per_minute"
            assert 0 < int(answer.headers["X-RateLimit-Reset"]) <= 60
            remaining.append(int(answer.headers["X-RateLimit-Remaining"]))
        assert remaining == [9, 8, 7, 6, 5, 4]
        listing = await client.get("/api/v1/models", headers=ALICE)  # no call admitted: nothing to report
        assert "X-RateLimit-Limit" not in listing.headers
    async for client in started(tmp_path / "free"):
        assert "X-RateLimit-Limit" not in (await client.post("/api/v1/chat", json=chat(), headers=ALICE)).headers


async def test_the_headers_name_the_tightest_limit(tmp_path: Path) -> None:
    """Under 100 requests a minute and 2 in flight, a chat's answer names the one with least left (2 in flight,
    this one counted: 1 left)."""
    async for client in started(tmp_path, requests_per_minute=100, concurrent_streams=2):
        answer = await client.post("/api/v1/chat", json=chat(), headers=ALICE)
        assert answer.headers["X-RateLimit-Resource"] == "concurrent_streams"
        assert (answer.headers["X-RateLimit-Limit"], answer.headers["X-RateLimit-Remaining"]) == ("2", "1")


async def test_model_listings_show_a_key_only_its_allowed_models(tmp_path: Path) -> None:
    """A key allowed fake/echo and openai/*: /api/v1/models and the OpenAI door's /v1/models list exactly the enabled
    models it may use; a model outside the list is a 404 on the door's retrieve; a JWT still sees every model."""
    async for client in started(tmp_path):
        body = {"customer_id": "acme", "name": "ci", "models": ["fake/echo", "openai/*"]}
        issued = await client.post("/api/v1/admin/keys", headers=ADMIN, json=body)
        key = {"Authorization": f"Bearer {(await issued.get_json())['data']['key']}"}
        everything = [
            m["id"] for m in (await (await client.get("/api/v1/models", headers=ALICE)).get_json())["data"]["models"]
        ]
        assert "fake/fixed" in everything
        expected = [m for m in everything if m == "fake/echo" or m.startswith("openai/")]
        native = await (await client.get("/api/v1/models", headers=key)).get_json()
        assert [m["id"] for m in native["data"]["models"]] == expected
        assert native["meta"]["pagination"]["total"] == len(expected)
        door = await (await client.get("/v1/models", headers=key)).get_json()
        assert [m["id"] for m in door["data"]] == expected
        assert (await client.get("/v1/models/fake/fixed", headers=key)).status_code == 404
        assert (await client.get("/v1/models/fake/echo", headers=key)).status_code == 200
        assert len((await (await client.get("/v1/models", headers=ALICE)).get_json())["data"]) == len(everything)
