"""The Anthropic door, proven with Anthropic's own SDK: ``AsyncAnthropic`` drives the real app in-process (httpx2's
ASGI transport) against the fake vendor, whose requests are recorded to show what reached the provider."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import anthropic
import httpx2
import pytest
from dependency_injector import providers
from quart import Quart

from adapters.fake.text import FakeTextProvider
from container import Container
from domain.catalog import ModelSpec
from domain.chat import ChatRequest, ProviderEvent
from domain.completion import Completion
from entrypoints.http.app import create_app
from ports.providers import VendorProviders
from ports.text import TEXT_PORT
from tests.support.app import make_container, make_settings, mint

BASE_URL = "http://switchyard.test"
TOOLS: list[Any] = [
    {"name": "weather", "description": "Weather in a city", "input_schema": {"type": "object"}},
    {"name": "clock", "input_schema": {"type": "object", "properties": {}}},
]


class RecordingText:
    """The fake vendor's text provider, remembering every request it was sent; ``first_delay_s`` makes it slow to
    begin answering."""

    def __init__(self) -> None:
        self.inner = FakeTextProvider("fake")
        self.requests: list[ChatRequest] = []
        self.first_delay_s = 0.0

    @property
    def name(self) -> str:
        return self.inner.name

    def stream(self, request: ChatRequest, model: ModelSpec) -> AsyncIterator[ProviderEvent]:
        self.requests.append(request)
        return self._delayed(self.inner.stream(request, model))

    async def complete(self, request: ChatRequest, model: ModelSpec, *, timeout_s: float | None = None) -> Completion:
        self.requests.append(request)
        await asyncio.sleep(self.first_delay_s)
        return await self.inner.complete(request, model, timeout_s=timeout_s)

    async def _delayed(self, events: AsyncIterator[ProviderEvent]) -> AsyncIterator[ProviderEvent]:
        await asyncio.sleep(self.first_delay_s)
        async for event in events:
            yield event


@pytest.fixture
def recorder() -> RecordingText:
    return RecordingText()


@pytest.fixture
def door_container(tmp_path: Path, recorder: RecordingText) -> Iterator[Container]:
    # A short keepalive: the slow-start test waits less than a second for its first idle tick.
    container = make_container(make_settings(tmp_path, streaming={"keepalive_s": 0.2}))
    container.vendors.override(providers.Object({"fake": VendorProviders("fake", {TEXT_PORT: recorder})}))
    yield container
    container.unwire()


@pytest.fixture
async def door_app(door_container: Container) -> AsyncIterator[Quart]:
    app = create_app(door_container)
    async with app.test_app():
        yield app


@pytest.fixture
async def http(door_app: Quart) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=cast(Any, door_app)), base_url=BASE_URL) as client:
        yield client


def sdk(http: httpx2.AsyncClient, **options: Any) -> anthropic.AsyncAnthropic:
    """Anthropic's SDK pointed at the app: the base URL alone changes (no retries, so each test sees one answer)."""
    options.setdefault("api_key", mint())
    return anthropic.AsyncAnthropic(base_url=BASE_URL, http_client=http, max_retries=0, **options)


@pytest.fixture
def client(http: httpx2.AsyncClient) -> anthropic.AsyncAnthropic:
    return sdk(http)


async def native_text(http: httpx2.AsyncClient, model: str, text: str) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    response = await http.post("/api/v1/chat", json=body, headers={"Authorization": f"Bearer {mint()}"})
    assert response.status_code == 200, response.text
    answer: str = response.json()["data"]["text"]
    return answer


def error_of(exc: anthropic.APIStatusError) -> dict[str, Any]:
    """The ``error`` object of Anthropic's error body."""
    body = exc.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    error: dict[str, Any] = body["error"]
    return error


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# --- text ----------------------------------------------------------------------------------------------------------


async def test_message_has_the_native_routes_text_and_anthropics_shape(
    client: anthropic.AsyncAnthropic, http: httpx2.AsyncClient
) -> None:
    """A non-streaming message answers the native route's text in a Message object: id, role, model, stop reason
    and usage (the fake counts words: 3 in, 3 out)."""
    message = await client.messages.create(model="fake/echo", max_tokens=100, messages=user("one two three"))
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].type == "text"
    assert message.content[0].text == await native_text(http, "fake/echo", "one two three")
    assert message.id.startswith("msg_")
    assert (message.type, message.role, message.model) == ("message", "assistant", "fake/echo")
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (3, 3)


async def test_alias_and_max_tokens_stop_reason(client: anthropic.AsyncAnthropic) -> None:
    """A catalog alias names the model; an answer cut at max_tokens says ``max_tokens``."""
    message = await client.messages.create(model="echo", max_tokens=2, messages=user("one two three"))
    assert message.model == "fake/echo"
    assert message.content[0].type == "text"
    assert message.content[0].text == "one two"
    assert message.stop_reason == "max_tokens"


async def test_stream_helper_yields_the_native_text_once_and_a_final_message(
    client: anthropic.AsyncAnthropic, http: httpx2.AsyncClient
) -> None:
    """``messages.stream``: the text deltas join to the native route's text exactly once; the final message has it,
    ``end_turn`` and the usage."""
    prompt = "the quick brown fox jumps"
    async with client.messages.stream(model="fake/echo", max_tokens=100, messages=user(prompt)) as stream:
        pieces = [piece async for piece in stream.text_stream]
        final = await stream.get_final_message()
    expected = await native_text(http, "fake/echo", prompt)
    assert "".join(pieces) == expected
    assert len(pieces) == 5  # one delta per word: none repeated, none merged
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].type == "text"
    assert final.content[0].text == expected
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (5, 5)


async def test_raw_stream_events_come_in_anthropics_order_on_a_switchyard_stream(
    client: anthropic.AsyncAnthropic, http: httpx2.AsyncClient
) -> None:
    """message_start, ping, one text block (start, deltas, stop), message_delta, message_stop; the stream id in
    ``X-Stream-ID`` names a finished Switchyard stream on the native route."""
    stream = await client.messages.create(model="fake/echo", max_tokens=100, messages=user("a b"), stream=True)
    kinds = [event.type async for event in stream]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # the SDK drops ping itself; the wire is checked below
    stream_id = stream.response.headers["x-stream-id"]
    described = await http.get(f"/api/v1/streams/{stream_id}", headers={"Authorization": f"Bearer {mint()}"})
    assert described.status_code == 200, described.text
    assert described.json()["data"]["status"] == "done"


async def test_wire_names_every_event_and_pings_after_message_start(http: httpx2.AsyncClient) -> None:
    """Every SSE event has its ``event:`` line (Anthropic's SDKs skip events without one) matching its data's type,
    and a ``ping`` follows ``message_start``."""
    body = {"model": "fake/echo", "max_tokens": 50, "stream": True, "messages": user("hi")}
    headers = {"Authorization": f"Bearer {mint()}", "anthropic-version": "2023-06-01"}
    response = await http.post("/v1/messages", json=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [frame for frame in response.text.split("\n\n") if frame.strip()]
    names = []
    for frame in frames:
        event_line, data_line = frame.split("\n")
        name = event_line.removeprefix("event: ")
        assert json.loads(data_line.removeprefix("data: "))["type"] == name
        names.append(name)
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]


async def test_a_vendor_slow_to_begin_gets_the_stream_opened_first(
    client: anthropic.AsyncAnthropic, recorder: RecordingText, http: httpx2.AsyncClient
) -> None:
    """When nothing comes within the keepalive, the SSE answer opens anyway (message_start naming the requested
    model, pings) and the answer follows in it."""
    recorder.first_delay_s = 0.6
    body = {"model": "echo", "max_tokens": 50, "stream": True, "messages": user("late words")}
    headers = {"Authorization": f"Bearer {mint()}", "anthropic-version": "2023-06-01"}
    response = await http.post("/v1/messages", json=body, headers=headers)
    names = [frame.split("\n")[0].removeprefix("event: ") for frame in response.text.split("\n\n") if frame.strip()]
    assert names[:3] == ["message_start", "ping", "ping"]
    assert names[-1] == "message_stop"
    start = json.loads(response.text.split("\n\n")[0].split("\n")[1].removeprefix("data: "))
    assert start["message"]["model"] == "echo"
    async with client.messages.stream(model="echo", max_tokens=50, messages=user("late words")) as stream:
        assert await stream.get_final_text() == "late words"


# --- tools, system, content -----------------------------------------------------------------------------------------


async def test_tool_use_streams_its_input_json_in_pieces_one_block_at_a_time(client: anthropic.AsyncAnthropic) -> None:
    """Two parallel calls (the fake interleaves their argument deltas) arrive as two sequential tool_use blocks,
    each input split over several ``input_json_delta``s; the final message has both inputs parsed, ``tool_use``."""
    open_blocks: set[int] = set()
    json_deltas: dict[int, list[str]] = {}
    async with client.messages.stream(model="fake/tools", max_tokens=100, tools=TOOLS, messages=user("oslo")) as stream:
        async for event in stream:
            if event.type == "content_block_start":
                assert not open_blocks, "a block opened while another was open"
                open_blocks.add(event.index)
            elif event.type == "content_block_delta":
                assert event.index in open_blocks
                if event.delta.type == "input_json_delta":
                    json_deltas.setdefault(event.index, []).append(event.delta.partial_json)
            elif event.type == "content_block_stop":
                open_blocks.discard(event.index)
        final = await stream.get_final_message()
    assert sorted(json_deltas) == [0, 1]
    assert all(len(pieces) >= 2 for pieces in json_deltas.values())
    calls = [block for block in final.content if block.type == "tool_use"]
    assert [(c.id, c.name, c.input) for c in calls] == [
        ("call_fake_0", "weather", {"query": "oslo", "tool": "weather"}),
        ("call_fake_1", "clock", {"query": "oslo", "tool": "clock"}),
    ]
    assert final.stop_reason == "tool_use"


async def test_tool_round_trip_without_streaming(client: anthropic.AsyncAnthropic, recorder: RecordingText) -> None:
    """tool_use comes back whole; replaying it with a tool_result reaches the provider as a tool message (named
    after its call) and the model answers from it."""
    first = await client.messages.create(
        model="fake/tools",
        max_tokens=100,
        tools=TOOLS,
        tool_choice={"type": "tool", "name": "clock"},
        messages=user("oslo"),
    )
    calls = [block for block in first.content if block.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [("clock", {"query": "oslo", "tool": "clock"})]
    assert first.stop_reason == "tool_use"
    assert recorder.requests[-1].tool_choice is not None
    assert recorder.requests[-1].tool_choice.mode == "tool"
    second = await client.messages.create(
        model="fake/tools",
        max_tokens=100,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "oslo"},
            {
                "role": "assistant",
                "content": [cast(Any, c.model_dump(include={"type", "id", "name", "input"})) for c in calls],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "12:00"}]},
        ],
    )
    assert second.content[0].type == "text"
    assert second.content[0].text == "Tool results: 12:00"
    sent = recorder.requests[-1].messages
    assert [m.role for m in sent] == ["user", "assistant", "tool"]
    assert sent[1].tool_calls[0].arguments == json.dumps({"query": "oslo", "tool": "clock"})
    assert (sent[2].tool_call_id, sent[2].name, sent[2].content) == (calls[0].id, "clock", "12:00")


async def test_system_prompt_image_and_parameters_reach_the_provider(
    client: anthropic.AsyncAnthropic, recorder: RecordingText
) -> None:
    """System text (string or blocks), an image block, stop sequences, temperature and metadata all reach the
    provider's request; the system's words count as input."""
    await client.messages.create(
        model="fake/echo",
        max_tokens=50,
        system=[{"type": "text", "text": "be brief"}, {"type": "text", "text": "and kind"}],
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        extra_body={"temperature": 0.5},  # this SDK version no longer types temperature; the API still takes it
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                ],
            }
        ],
    )
    sent = recorder.requests[-1]
    assert sent.system == "be brief\nand kind"
    assert (sent.temperature, sent.max_tokens, sent.stop, sent.metadata) == (0.5, 50, ["END"], {"user_id": "u-1"})
    parts = sent.messages[0].content
    assert not isinstance(parts, str)
    assert [(p.type, p.text, p.image_url) for p in parts] == [
        ("text", "what is this", None),
        ("image", None, "data:image/png;base64,AAAA"),
    ]
    message = await client.messages.create(model="fake/echo", max_tokens=50, system="be brief", messages=user("hi"))
    assert recorder.requests[-1].system == "be brief"
    assert message.usage.input_tokens == 3


async def test_unknown_fields_are_ignored(client: anthropic.AsyncAnthropic) -> None:
    """Fields this door does not know (newer SDK features, cache_control on a block) do not fail the request."""
    message = await client.messages.create(
        model="fake/echo",
        max_tokens=50,
        service_tier="auto",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}
        ],
        extra_body={"thinking": {"type": "disabled"}, "no_such_field": 1},
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "hi"


async def test_count_tokens_estimates_and_checks_the_model(client: anthropic.AsyncAnthropic) -> None:
    """count_tokens answers a positive estimate that grows with the text; an unknown model is a NotFoundError."""
    short = await client.messages.count_tokens(model="fake/echo", messages=user("hi"))
    longer = await client.messages.count_tokens(model="fake/echo", system="be brief", messages=user("hi " * 50))
    assert 0 < short.input_tokens < longer.input_tokens
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.count_tokens(model="fake/ecko", messages=user("hi"))


# --- errors ----------------------------------------------------------------------------------------------------------


async def test_unknown_model_is_not_found_error(client: anthropic.AsyncAnthropic) -> None:
    """A misspelt model is Anthropic's 404 not_found_error, whose message names the closest model."""
    with pytest.raises(anthropic.NotFoundError) as caught:
        await client.messages.create(model="fake/ecko", max_tokens=10, messages=user("hi"))
    assert caught.value.status_code == 404
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": error_of(caught.value)["message"]},
        "request_id": caught.value.response.headers["request-id"],
    }
    assert "fake/echo" in caught.value.message


async def test_bad_key_is_authentication_error(http: httpx2.AsyncClient) -> None:
    """A key that is no Switchyard token is a 401 authentication_error."""
    with pytest.raises(anthropic.AuthenticationError) as caught:
        await sdk(http, api_key="sk-ant-not-a-token").messages.create(
            model="fake/echo", max_tokens=10, messages=user("hi")
        )
    assert error_of(caught.value)["type"] == "authentication_error"


async def test_token_as_x_api_key_works_on_messages_only(
    http: httpx2.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token in ``x-api-key`` (what Anthropic documents and curl users send) is accepted on /v1/messages, not on
    the native API; when ``Authorization`` is present too, it is the one checked."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    keyed = anthropic.AsyncAnthropic(
        base_url=BASE_URL, http_client=http, max_retries=0, default_headers={"x-api-key": mint()}
    )
    message = await keyed.messages.create(model="fake/echo", max_tokens=10, messages=user("hi"))
    assert message.content[0].type == "text"
    assert message.content[0].text == "hi"
    native = await http.post(
        "/api/v1/chat", json={"model": "fake/echo", "messages": user("hi")}, headers={"x-api-key": mint()}
    )
    assert native.status_code == 401
    both = sdk(http, api_key="not-a-token", default_headers={"x-api-key": mint()})
    with pytest.raises(anthropic.AuthenticationError):
        await both.messages.create(model="fake/echo", max_tokens=10, messages=user("hi"))


async def test_rate_limit_is_rate_limit_error_with_retry_after(client: anthropic.AsyncAnthropic) -> None:
    """A vendor 429 the gateway could not retry away is RateLimitError with ``retry-after`` (streaming or not)."""
    metadata: Any = {"fake_error": "rate_limited", "fake_retry_after": "90"}  # the fake vendor's fault knobs
    with pytest.raises(anthropic.RateLimitError) as caught:
        await client.messages.create(model="fake/echo", max_tokens=10, messages=user("hi"), metadata=metadata)
    assert caught.value.response.headers["retry-after"] == "90"
    assert error_of(caught.value)["type"] == "rate_limit_error"
    with pytest.raises(anthropic.RateLimitError) as streamed:  # before any output: an HTTP error, not a 200 stream
        await client.messages.create(
            model="fake/echo",
            max_tokens=10,
            messages=user("hi"),
            metadata=metadata,
            stream=True,
        )
    assert streamed.value.response.headers["retry-after"] == "90"  # the stream's error event kept it


async def test_wrong_types_and_missing_max_tokens_are_bad_request_naming_the_field(
    client: anthropic.AsyncAnthropic,
) -> None:
    """A wrong type, a missing ``max_tokens`` and a temperature outside Anthropic's range are each a 400
    invalid_request_error naming the parameter."""
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(
            model="fake/echo", max_tokens=5, messages=user("hi"), extra_body={"max_tokens": "5"}
        )
    assert error_of(caught.value)["type"] == "invalid_request_error"
    assert error_of(caught.value)["message"].startswith("max_tokens:")
    not_a_list: Any = "END"
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(model="fake/echo", max_tokens=5, messages=user("hi"), stop_sequences=not_a_list)
    assert error_of(caught.value)["message"] == "stop_sequences: invalid value for type, expected list[str] | None"
    body = {"model": "fake/echo", "messages": user("hi")}
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.post("/v1/messages", cast_to=anthropic.types.Message, body=body)
    assert error_of(caught.value)["message"] == "max_tokens: required field missing"
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(
            model="fake/echo", max_tokens=5, messages=user("hi"), extra_body={"temperature": 1.5}
        )
    assert error_of(caught.value)["message"] == "temperature: must be between 0 and 1"
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(
            model="fake/echo",
            max_tokens=5,
            messages=[{"role": "user", "content": [cast(Any, {"type": "text"})]}],
        )
    assert error_of(caught.value)["message"] == "messages[0].content[0].text: is required"


async def test_missing_anthropic_version_is_refused_like_anthropic_does(http: httpx2.AsyncClient) -> None:
    """Anthropic's API refuses a request without ``anthropic-version``; so does the door (any value is accepted)."""
    bare = sdk(http, default_headers={"anthropic-version": anthropic.omit})
    with pytest.raises(anthropic.BadRequestError) as caught:
        await bare.messages.create(model="fake/echo", max_tokens=10, messages=user("hi"))
    assert error_of(caught.value)["message"] == "anthropic-version: header is required"
    old = sdk(http, default_headers={"anthropic-version": "2023-06-01"})
    assert (await old.messages.create(model="fake/echo", max_tokens=10, messages=user("hi"))).content


async def test_failure_after_output_is_an_error_event(client: anthropic.AsyncAnthropic) -> None:
    """A vendor failing mid-answer ends the SSE stream with ``event: error`` (Anthropic's body, api_error), which
    the SDK raises while iterating, after the text already delivered."""
    metadata: Any = {"fake_error": "provider_error", "fake_fail_after": "2"}
    seen: list[str] = []

    async def read_all() -> None:
        async with client.messages.stream(
            model="fake/echo",
            max_tokens=50,
            messages=user("one two three four"),
            metadata=metadata,
        ) as stream:
            async for piece in stream.text_stream:
                seen.append(piece)

    with pytest.raises(anthropic.APIStatusError) as caught:
        await read_all()
    assert "".join(seen) == "one two"
    assert error_of(caught.value)["type"] == "api_error"


async def test_openapi_documents_the_door_in_its_own_shape(http: httpx2.AsyncClient) -> None:
    """The document shows Anthropic's Message and error bodies for /v1/messages, and its request objects open."""
    spec = (await http.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/messages"]["post"]
    ok = operation["responses"]["200"]["content"]
    assert ok["application/json"]["schema"]["$ref"].endswith("/AnthropicMessage")
    assert "text/event-stream" in ok
    assert operation["responses"]["429"]["content"]["application/json"]["schema"]["$ref"].endswith("/AnthropicError")
    assert "additionalProperties" not in spec["components"]["schemas"]["AnthropicMessagesRequest"]
