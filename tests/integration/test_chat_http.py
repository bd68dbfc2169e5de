"""The chat and models API through the real app and container (fake vendor, SQLite usage ledger)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from quart.typing import TestClientProtocol

from entrypoints.http.app import create_app
from tests.support.app import auth_headers, make_container, make_settings


def chat_body(model: str = "fake/echo", text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def post_chat(client: TestClientProtocol, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/v1/chat", json=body, headers=auth_headers())
    return response.status_code, await response.get_json()


async def test_non_streaming_chat_returns_the_answer_and_who_served(client: TestClientProtocol) -> None:
    """stream=false answers the envelope with text, usage, finish reason, cost and meta naming model/provider."""
    status, body = await post_chat(client, chat_body())
    assert status == 200, body
    data = body["data"]
    assert data["text"] == "hello there"
    assert data["finish_reason"] == "stop"
    assert data["model"] == "fake/echo"
    assert data["provider"] == "fake"
    assert data["usage"]["output_tokens"] == 2
    assert data["cost_usd"] == round((2 * 1.0 + 2 * 2.0) / 1_000_000, 8)
    assert body["meta"]["extra"]["model"] == "fake/echo"
    assert body["meta"]["extra"]["fallback_used"] is None


async def test_alias_and_image_parts_resolve(client: TestClientProtocol) -> None:
    """An alias resolves, and image parts reach a vision model."""
    content = [{"type": "text", "text": "see"}, {"type": "image", "image_url": "data:image/png;base64,AA=="}]
    status, body = await post_chat(client, {"model": "echo", "messages": [{"role": "user", "content": content}]})
    assert status == 200, body
    assert body["data"]["text"] == "see"


async def test_tool_calls_come_back_assembled(client: TestClientProtocol) -> None:
    """fake/tools calls both offered tools in parallel; the response lists them in order with whole arguments."""
    tools = [{"name": "weather", "parameters": {"type": "object"}}, {"name": "clock"}]
    status, body = await post_chat(client, chat_body("fake/tools", "oslo", tools=tools))
    assert status == 200, body
    calls = body["data"]["tool_calls"]
    assert [c["name"] for c in calls] == ["weather", "clock"]
    assert calls[0]["arguments"] == '{"query": "oslo", "tool": "weather"}'
    assert body["data"]["finish_reason"] == "tool_calls"


async def test_rate_limit_then_success_is_retried_server_side(client: TestClientProtocol) -> None:
    """A vendor 429 on the first call is retried; the client gets one answer and meta counts the retry."""
    metadata = {"fake_error": "rate_limited", "fake_fail_times": "1", "fake_retry_after": "0", "fake_key": "t1"}
    status, body = await post_chat(client, chat_body(metadata=metadata))
    assert status == 200, body
    assert body["data"]["text"] == "hello there"
    assert body["meta"]["extra"]["retries"] == 1


async def test_catalog_fallback_serves_and_meta_says_so(client: TestClientProtocol) -> None:
    """fake/unreliable is overloaded before content; its catalog fallback fake/echo serves."""
    status, body = await post_chat(client, chat_body("fake/unreliable", metadata={"fake_retry_after": "0"}))
    assert status == 200, body
    assert body["data"]["model"] == "fake/echo"
    assert body["meta"]["extra"]["fallback_used"] == "fake/echo"
    assert body["meta"]["extra"]["requested_model"] == "fake/unreliable"


async def test_vendor_failure_maps_to_502_and_rate_limit_to_429(client: TestClientProtocol) -> None:
    """A failing vendor is a 502 ProviderError; an exhausted 429 is a 429 with Retry-After."""
    status, body = await post_chat(client, chat_body("fake/failing"))
    assert status == 502
    assert body["data"]["error"] == "provider_error"
    response = await client.post(
        "/api/v1/chat",
        json=chat_body(metadata={"fake_error": "rate_limited", "fake_retry_after": "90"}),
        headers=auth_headers(),
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "90"


async def test_unknown_model_is_404_with_closest_ids(client: TestClientProtocol) -> None:
    """A misspelt model is a 404 whose message and context name the closest known ids."""
    status, body = await post_chat(client, chat_body("fake/ecko"))
    assert status == 404
    assert "fake/echo" in body["message"]
    assert "fake/echo" in body["data"]["context"]["suggestions"]


async def test_disabled_vendor_model_is_404_saying_why(client: TestClientProtocol) -> None:
    """A catalogued model of an unconfigured vendor says the vendor is not enabled."""
    status, body = await post_chat(client, chat_body("openai/gpt-4o"))
    assert status == 404
    assert "not enabled" in body["message"]


async def test_missing_capability_is_422_naming_both(client: TestClientProtocol) -> None:
    """Tools on fake/echo is a 422 capability_error naming the model and the capability."""
    status, body = await post_chat(client, chat_body(tools=[{"name": "x"}]))
    assert status == 422
    assert body["data"]["error"] == "capability_error"
    assert body["data"]["context"] == {"model": "fake/echo", "capability": "tools"}


async def test_semantic_and_structural_errors_are_422_naming_the_field(client: TestClientProtocol) -> None:
    """Empty messages and a misspelt field are 422s naming the field."""
    status, body = await post_chat(client, {"model": "fake/echo", "messages": []})
    assert status == 422
    assert body["data"]["errors"] == [{"loc": "messages", "msg": "must contain at least one message"}]
    status, body = await post_chat(client, {**chat_body(), "temprature": 1})
    assert status == 422
    assert "temprature" in body["data"]["errors"][0]["msg"]


async def test_chat_requires_a_token(client: TestClientProtocol) -> None:
    """No bearer token, no chat."""
    response = await client.post("/api/v1/chat", json=chat_body())
    assert response.status_code == 401


async def test_models_lists_enabled_models_and_filters_by_capability(client: TestClientProtocol) -> None:
    """Only enabled vendors' models are listed; ?capability narrows; an unknown capability is a 422."""
    response = await client.get("/api/v1/models", headers=auth_headers())
    body = await response.get_json()
    ids = [m["id"] for m in body["data"]["models"]]
    assert "fake/echo" in ids
    assert not any(i.startswith("openai/") for i in ids)
    assert body["meta"]["pagination"]["total"] == len(ids)
    response = await client.get("/api/v1/models?capability=tools", headers=auth_headers())
    tools = [m["id"] for m in (await response.get_json())["data"]["models"]]
    assert "fake/tools" in tools
    assert "fake/echo" not in tools
    response = await client.get("/api/v1/models?capability=telepathy", headers=auth_headers())
    assert response.status_code == 422


def sse_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """(event type, data) of every SSE frame that has data."""
    events = []
    for frame in raw.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line and not line.startswith(":"))
        if "data" in fields:
            events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


async def test_streaming_chat_is_sse_with_the_stream_id_and_one_terminal(client: TestClientProtocol) -> None:
    """stream=true: text/event-stream, X-Stream-ID, start naming the id and model, the text, done last."""
    response = await client.post("/api/v1/chat", json=chat_body(stream=True), headers=auth_headers())
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    stream_id = response.headers["X-Stream-ID"]
    events = sse_events(await response.get_data(as_text=True))
    assert [t for t, _ in events] == ["start", "text", "text", "usage", "done"]
    assert events[0][1]["stream_id"] == stream_id
    assert events[0][1]["model"] == "fake/echo"
    assert "".join(d["text"] for t, d in events if t == "text") == "hello there"
    assert events[-1][1]["finish_reason"] == "stop"


async def test_streaming_errors_before_the_stream_are_http_errors(client: TestClientProtocol) -> None:
    """An unknown model with stream=true is a plain 404 envelope, not a stream."""
    status, body = await post_chat(client, chat_body("fake/nope", stream=True))
    assert status == 404
    assert body["data"]["error"] == "not_found"


async def test_mid_stream_failure_gives_one_error_event_and_no_repeat(client: TestClientProtocol) -> None:
    """After the first word, an overloaded vendor ends the SSE stream with exactly one error event."""
    metadata = {"fake_error": "overloaded", "fake_fail_after": "1"}
    response = await client.post(
        "/api/v1/chat", json=chat_body(text="a b c", stream=True, metadata=metadata), headers=auth_headers()
    )
    events = sse_events(await response.get_data(as_text=True))
    assert [t for t, _ in events] == ["start", "text", "error"]
    assert events[-1][1]["code"] == "provider_error"


async def test_a_chat_stream_can_be_resumed_after_a_seq(client: TestClientProtocol) -> None:
    """The chat stream lives in the StreamingManager: reading again after seq 2 gives exactly the rest."""
    response = await client.post("/api/v1/chat", json=chat_body(stream=True), headers=auth_headers())
    first = sse_events(await response.get_data(as_text=True))
    stream_id = response.headers["X-Stream-ID"]
    again = await client.get(f"/api/v1/streams/{stream_id}/events", headers={**auth_headers(), "Last-Event-ID": "2"})
    rest = sse_events(await again.get_data(as_text=True))
    assert rest == first[2:]


async def test_a_chat_is_counted_in_usage_and_metrics(tmp_path: Path) -> None:
    """One chat leaves its usage record (the caller's /api/v1/usage totals) and provider metrics on /metrics."""
    settings = make_settings(tmp_path, database={"ledger_flush_interval_s": 0.05})
    container = make_container(settings)
    app = create_app(container)
    async with app.test_app():
        client = app.test_client()
        headers = auth_headers("usage-probe")
        response = await client.post("/api/v1/chat", json=chat_body(text="count these four"), headers=headers)
        assert response.status_code == 200
        totals: list[dict[str, Any]] = []
        for _ in range(60):  # the ledger writes off the hot path
            usage = await (await client.get("/api/v1/usage?group_by=model", headers=headers)).get_json()
            totals = usage["data"]["totals"]
            if totals:
                break
            await asyncio.sleep(0.05)
        assert totals == [
            {
                "group": "fake/echo",
                "requests": 1,
                "errors": 0,
                "input_tokens": 3,
                "output_tokens": 3,
                "cost_usd": pytest.approx((3 * 1.0 + 3 * 2.0) / 1e6),
                "estimated": 0,
                "images": 0,
                "characters": 0,
                "audio_seconds": 0.0,
                "video_seconds": 0.0,
            }
        ]
        metrics = await (await client.get("/metrics")).get_data(as_text=True)
        assert 'provider_requests_total{model="fake/echo",outcome="done",provider="fake"}' in metrics
    container.unwire()
