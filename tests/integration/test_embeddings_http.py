"""``POST /api/v1/embeddings`` through the whole app: the fake's deterministic vectors, the strict body, the rules
naming their field, usage by capability, and the real OpenAI and Gemini adapters at the vendor emulator (vectors,
``dimensions``, a 429 retried server-side)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol

from entrypoints.http.app import create_app
from settings import Secret
from tests.emulator import Fault, RunningEmulator, Scenario
from tests.emulator.embeddings import emulated_tokens, emulated_vector
from tests.fakes.usage import InMemoryUsageLedger
from tests.support.app import auth_headers, make_container, make_settings

THREE = ["the lighthouse at dawn", "a ship in the fog", "gulls over the harbour"]


async def _embed(client: TestClientProtocol, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/v1/embeddings", json=body, headers=headers or auth_headers())
    return response.status_code, await response.get_json()


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


async def test_three_strings_embed_in_order_with_usage(client: TestClientProtocol) -> None:
    """Three strings give three unit vectors in input order (each equal to its text embedded alone), their length,
    the input tokens and their cost, and meta naming the serving model."""
    status, body = await _embed(client, {"model": "fake/embed", "input": THREE})
    assert status == 200, body
    data = body["data"]
    assert data["model"] == "fake/embed"
    assert data["dimensions"] == 256
    assert len(data["embeddings"]) == 3
    for text, vector in zip(THREE, data["embeddings"], strict=True):
        assert len(vector) == 256
        assert _norm(vector) == pytest.approx(1.0)
        _, alone = await _embed(client, {"model": "fake-embed", "input": text})
        assert alone["data"]["embeddings"] == [vector]
    tokens = sum(len(text.split()) for text in THREE)
    assert data["usage"] == {"input_tokens": tokens, "cost_usd": pytest.approx(tokens * 0.02e-6)}
    assert body["meta"]["extra"]["model"] == "fake/embed"
    assert body["meta"]["extra"]["fallback_used"] is None


async def test_a_scripted_429_is_retried_by_the_server(client: TestClientProtocol) -> None:
    """The fake's marker scripts "429, then success": the app retries and answers whole, saying it retried."""
    marked = "[[fake fake_error=rate_limited fake_retry_after=0 fake_fail_times=1]] harbour lights"
    status, body = await _embed(client, {"model": "fake/embed", "input": [THREE[0], marked]})
    assert status == 200, body
    assert len(body["data"]["embeddings"]) == 2
    assert body["meta"]["extra"]["retries"] == 1


async def test_dimensions_shorten_the_vectors(client: TestClientProtocol) -> None:
    """``dimensions`` gives vectors of that length, still unit vectors."""
    status, body = await _embed(client, {"model": "fake/embed", "input": ["one", "two"], "dimensions": 8})
    assert status == 200, body
    assert body["data"]["dimensions"] == 8
    assert all(len(v) == 8 and _norm(v) == pytest.approx(1.0) for v in body["data"]["embeddings"])


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"model": "fake/embed", "input": ["a"], "dimension": 8}, 422, "$"),
        ({"model": "fake/embed", "input": ["a", 7]}, 422, "$.input[1]"),
        ({"model": "fake/embed", "input": {"text": "a"}}, 422, "$.input"),
        ({"model": "fake/embed"}, 422, "$.input"),
        ({"model": "fake/embed", "input": ["a", ""]}, 422, "input[1]"),
        ({"model": "fake/embed", "input": []}, 422, "input"),
        ({"model": "", "input": ["a"]}, 422, "model"),
        ({"model": "fake/embed", "input": ["a"], "dimensions": 257}, 422, "dimensions"),
        ({"model": "fake/embed", "input": ["a"], "dimensions": 0}, 422, "dimensions"),
        ({"model": "fake/echo", "input": ["a"]}, 422, None),
        ({"model": "fake/nope", "input": ["a"]}, 404, None),
    ],
)
async def test_bad_requests_name_the_field(
    client: TestClientProtocol, payload: dict[str, Any], status: int, field: str | None
) -> None:
    """Every refusal is a 4xx envelope; validation failures name the offending field."""
    got, body = await _embed(client, payload)
    assert got == status, body
    assert body["success"] is False
    if field is not None:
        assert body["data"]["context"]["field"] == field, body
    if "dimension" in payload:  # an unknown key is named in the message
        assert "extra fields found (dimension)" in body["message"]


async def test_a_lone_surrogate_is_a_422_naming_the_text(client: TestClientProtocol) -> None:
    """JSON can carry ``\\ud800``, UTF-8 cannot: the text is refused by index instead of failing the server."""
    raw = b'{"model": "fake/embed", "input": ["ok", "bad \\ud800 text"]}'
    headers = {**auth_headers(), "content-type": "application/json"}
    response = await client.post("/api/v1/embeddings", data=raw, headers=headers)
    assert response.status_code == 422
    assert (await response.get_json())["data"]["context"]["field"] == "input[1]"


async def test_embeddings_need_a_token(client: TestClientProtocol) -> None:
    """Without a bearer token the route answers 401."""
    response = await client.post("/api/v1/embeddings", json={"model": "fake/embed", "input": "a"})
    assert response.status_code == 401


async def test_each_attempt_is_recorded_under_the_embeddings_capability(tmp_path: Path) -> None:
    """The attempt leaves one usage record: capability ``embeddings``, the input tokens and their cost."""
    ledger = InMemoryUsageLedger()
    container = make_container(make_settings(tmp_path), usage_ledger=ledger)
    app = create_app(container)
    async with app.test_app():
        status, _ = await _embed(app.test_client(), {"model": "fake/embed", "input": THREE})
    container.unwire()
    assert status == 200
    [record] = ledger.records
    tokens = sum(len(text.split()) for text in THREE)
    assert (record.capability, record.model, record.outcome) == ("embeddings", "fake/embed", "done")
    assert (record.customer_id, record.input_tokens, record.output_tokens) == ("alice", tokens, 0)
    assert record.cost_usd == pytest.approx(tokens * 0.02e-6)


async def test_the_openapi_document_describes_the_route(client: TestClientProtocol) -> None:
    """``/openapi.json`` lists the route with its request body (input: string or list of strings)."""
    response = await client.get("/openapi.json")
    spec = await response.get_json()
    operation = spec["paths"]["/api/v1/embeddings"]["post"]
    assert "requestBody" in operation
    assert "EmbeddingRequest" in str(spec["components"]["schemas"])


# --- the real adapters at the vendor emulator -------------------------------------------------------------------


@pytest.fixture
async def vendor_app(emulator: RunningEmulator, tmp_path: Path) -> AsyncIterator[Quart]:
    """The real app with OpenAI and Gemini pointed at the emulator and the built-in catalog's embedding models."""
    providers = {
        "openai_api_key": Secret("sk-test"),
        "openai_base_url": emulator.openai_base_url,
        "gemini_api_key": Secret("g-test"),
        "gemini_base_url": emulator.gemini_base_url,
        "retry_base_delay_s": 0.01,
        "retry_max_delay_s": 0.05,
    }
    container = make_container(make_settings(tmp_path, providers=providers))
    app = create_app(container)
    async with app.test_app():
        yield app
    container.unwire()


@pytest.mark.parametrize(
    ("model", "wire"),
    [
        ("openai/text-embedding-3-small", "text-embedding-3-small"),
        ("gemini/gemini-embedding-001", "gemini-embedding-001"),
    ],
)
async def test_vendor_embeddings_through_the_app(
    vendor_app: Quart, emulator: RunningEmulator, model: str, wire: str
) -> None:
    """The catalog's vendor models answer through their SDK adapters: the emulator's vectors in order, shortened by
    ``dimensions``, after a 429 that the app retried itself."""
    emulator.state.script(wire, Scenario(fault=Fault("rate_limited")), Scenario())
    status, body = await _embed(vendor_app.test_client(), {"model": model, "input": THREE, "dimensions": 64})
    assert status == 200, body
    data = body["data"]
    assert data["model"] == model
    assert data["embeddings"] == [emulated_vector(text, 64) for text in THREE]
    assert data["dimensions"] == 64
    assert body["meta"]["extra"]["retries"] == 1
    if model.startswith("openai/"):
        assert data["usage"]["input_tokens"] == emulated_tokens(THREE)
    emulator.state.sequences.pop(wire)
