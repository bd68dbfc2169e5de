"""The vendor adapters against the emulator: what each one puts on the wire (messages, images, tool calls and
results, tools, tool choice, structured output, catalog parameters), how it treats retries and Retry-After, and the
normalizer and redaction rules the contract suite cannot reach."""

from __future__ import annotations

import base64
from typing import Any, Protocol

import pytest

from adapters.anthropic import build_anthropic_text_provider
from adapters.anthropic.text import NONSTREAMING_MAX_TOKENS
from adapters.gemini import build_gemini_text_provider
from adapters.openai import build_openai_text_provider
from domain.catalog import ModelSpec
from domain.chat import (
    ChatRequest,
    ContentPart,
    Message,
    ProviderEvent,
    ResponseFormat,
    ToolCall,
    ToolChoice,
    ToolSpec,
)
from domain.errors import ProviderError, ProviderTimeoutError, RateLimitError, ServiceError, ValidationError
from ports.text import TextProvider as TextPort
from tests.emulator import Fault, RunningEmulator, Scenario
from tests.emulator.transcripts import assert_invariants, normalize


class TextProvider(TextPort, Protocol):
    """The port plus ``aclose``: these tests build adapters outside a vendor bundle, so they close them."""

    async def aclose(self) -> None: ...


PIXEL = b"\x89PNG\r\n\x1a\n-not-really-a-png"
IMAGE_URL = "data:image/png;base64," + base64.b64encode(PIXEL).decode()
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
WEATHER = ToolSpec("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}})
TIME = ToolSpec("get_time", "Time in a zone", {"type": "object", "properties": {"tz": {"type": "string"}}})


def conversation(model: str = "text", **changes: Any) -> ChatRequest:
    """A turn with every feature to translate: system, an image, two earlier tool calls and their results."""
    fields: dict[str, Any] = {
        "model": model,
        "system": "Be brief.",
        "messages": [
            Message(
                "user",
                [ContentPart("text", text="What is this, and the weather?"), ContentPart("image", image_url=IMAGE_URL)],
            ),
            Message(
                "assistant",
                "Checking.",
                tool_calls=[
                    ToolCall("call_1", "get_weather", '{"city": "Paris"}'),
                    ToolCall("call_2", "get_time", '{"tz": "Europe/Paris"}'),
                ],
            ),
            Message("tool", "18C and sunny", tool_call_id="call_1"),
            Message("tool", "14:00", tool_call_id="call_2"),
        ],
        "tools": [WEATHER, TIME],
        "tool_choice": ToolChoice("tool", "get_weather"),
        "response_format": ResponseFormat("json_schema", SCHEMA, "answer"),
        "temperature": 0.2,
        "max_tokens": 100,
        "stop": ["END"],
    }
    fields.update(changes)
    return ChatRequest(**fields)


def spec(model: str, provider: str, **changes: Any) -> ModelSpec:
    """A catalog entry for an emulator scenario."""
    return ModelSpec(id=model, provider=provider, capabilities=frozenset({"text", "tools", "vision"}), **changes)


def openai_provider(emulator: RunningEmulator, name: str = "openai") -> TextProvider:
    return build_openai_text_provider(
        name=name, api_key="sk-test", base_url=emulator.openai_base_url, timeout_s=10.0, connect_timeout_s=2.0
    )


def anthropic_provider(emulator: RunningEmulator) -> TextProvider:
    return build_anthropic_text_provider(
        name="anthropic", api_key="k", base_url=emulator.anthropic_base_url, timeout_s=10.0, connect_timeout_s=2.0
    )


def gemini_provider(emulator: RunningEmulator) -> TextProvider:
    return build_gemini_text_provider(
        name="gemini", api_key="k", base_url=emulator.gemini_base_url, timeout_s=10.0, connect_timeout_s=2.0
    )


async def drain(provider: TextProvider, request: ChatRequest, model: ModelSpec) -> list[ProviderEvent]:
    """Every event of one call, the provider closed afterwards."""
    try:
        return [event async for event in provider.stream(request, model)]
    finally:
        await provider.aclose()


async def failure(provider: TextProvider, request: ChatRequest, model: ModelSpec) -> ServiceError:
    """The domain error one call ends with."""
    with pytest.raises(ServiceError) as caught:
        await drain(provider, request, model)
    return caught.value


async def test_openai_chat_request_translation(emulator: RunningEmulator) -> None:
    """Chat Completions gets the system message first, image_url parts, assistant tool_calls, tool messages, function
    tools, a named tool_choice, a strict json_schema, ``max_completion_tokens`` and the usage chunk option."""
    await drain(openai_provider(emulator), conversation(), spec("text", "openai", api="chat"))
    body = emulator.state.last("openai_chat").body
    system, user, assistant, tool_1, tool_2 = body["messages"]
    assert system == {"role": "system", "content": "Be brief."}
    assert user["content"][1] == {"type": "image_url", "image_url": {"url": IMAGE_URL}}
    assert assistant["tool_calls"][1] == {
        "id": "call_2",
        "type": "function",
        "function": {"name": "get_time", "arguments": '{"tz": "Europe/Paris"}'},
    }
    assert (tool_1["role"], tool_1["tool_call_id"], tool_2["content"]) == ("tool", "call_1", "14:00")
    assert body["tools"][0]["function"]["parameters"] == WEATHER.parameters
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["response_format"]["json_schema"] == {"name": "answer", "schema": SCHEMA, "strict": True}
    assert (body["max_completion_tokens"], body["temperature"], body["stop"]) == (100, 0.2, ["END"])
    assert body["stream_options"] == {"include_usage": True}


async def test_openai_compatible_vendor_uses_catalog_params(emulator: RunningEmulator) -> None:
    """A compatible vendor gets ``max_tokens``; the catalog's unsupported params are dropped and its default params
    sent, even ones the SDK does not know (through ``extra_body``)."""
    model = spec(
        "text",
        "groq",
        unsupported_params=frozenset({"temperature", "stream_options"}),
        default_params={"reasoning_effort": "low", "vendor_flag": True},
    )
    await drain(openai_provider(emulator, "groq"), conversation(), model)
    body = emulator.state.last("openai_chat").body
    assert body["max_tokens"] == 100
    assert "max_completion_tokens" not in body
    assert "temperature" not in body
    assert "stream_options" not in body
    assert (body["reasoning_effort"], body["vendor_flag"]) == ("low", True)


async def test_openai_responses_request_translation(emulator: RunningEmulator) -> None:
    """The Responses API gets ``instructions``, typed input items (input_image, function_call,
    function_call_output), flat function tools, ``text.format`` and ``store: false``."""
    await drain(openai_provider(emulator), conversation(), spec("text", "openai", api="responses"))
    body = emulator.state.last("openai_responses").body
    assert body["instructions"] == "Be brief."
    items = body["input"]
    assert items[0]["content"][1] == {"type": "input_image", "image_url": IMAGE_URL}
    assert items[1] == {"role": "assistant", "content": "Checking."}
    assert items[2] == {
        "type": "function_call",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert items[4] == {"type": "function_call_output", "call_id": "call_1", "output": "18C and sunny"}
    assert body["tools"][1]["name"] == "get_time"
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body["text"]["format"]["schema"] == SCHEMA
    assert (body["max_output_tokens"], body["store"]) == (100, False)
    assert "stop" not in body


async def test_anthropic_request_translation(emulator: RunningEmulator) -> None:
    """Anthropic gets ``system``, a base64 image block, tool_use blocks with parsed input, both tool results in ONE
    user turn, ``input_schema`` tools, ``{"type": "tool"}`` choice and an ``output_config`` JSON schema."""
    await drain(anthropic_provider(emulator), conversation(), spec("text", "anthropic"))
    body = emulator.state.last("anthropic").body
    assert body["system"] == "Be brief."
    user, assistant, results = body["messages"]
    source = user["content"][1]["source"]
    assert source == {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PIXEL).decode()}
    assert assistant["content"][1] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert results["role"] == "user"
    assert [b["tool_use_id"] for b in results["content"]] == ["call_1", "call_2"]
    assert body["tools"][0]["input_schema"] == WEATHER.parameters
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert (body["max_tokens"], body["temperature"], body["stop_sequences"]) == (100, 0.2, ["END"])


async def test_anthropic_requires_max_tokens_so_a_default_is_sent(emulator: RunningEmulator) -> None:
    """Without a request or catalog limit, Anthropic still gets ``max_tokens`` (the catalog's, else 4096)."""
    await drain(anthropic_provider(emulator), conversation(max_tokens=None), spec("text", "anthropic"))
    assert emulator.state.last("anthropic").body["max_tokens"] == 4096
    model = spec("text", "anthropic", max_output_tokens=8192)
    await drain(anthropic_provider(emulator), conversation(max_tokens=None), model)
    assert emulator.state.last("anthropic").body["max_tokens"] == 8192


async def test_gemini_request_translation(emulator: RunningEmulator) -> None:
    """Gemini gets a system instruction, inline image bytes, model-role function calls, function responses named
    after their call, function declarations, ANY mode limited to the named tool, and a JSON response schema."""
    await drain(gemini_provider(emulator), conversation(), spec("text", "gemini"))
    body = emulator.state.last("gemini").body
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    user, model_turn, results = body["contents"]
    inline = user["parts"][1]["inlineData"]
    assert inline["data"] == base64.b64encode(PIXEL).decode()
    assert inline.get("mimeType", inline.get("mime_type")) == "image/png"  # google-genai 3.6 sends snake_case here
    assert model_turn["role"] == "model"
    assert model_turn["parts"][1]["functionCall"] == {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}
    responses = [p["functionResponse"] for p in results["parts"]]
    assert [(r["id"], r["name"]) for r in responses] == [("call_1", "get_weather"), ("call_2", "get_time")]
    assert responses[0]["response"] == {"result": "18C and sunny"}
    declaration = body["tools"][0]["functionDeclarations"][0]
    schema = declaration.get("parametersJsonSchema", declaration.get("parameters_json_schema"))  # SDK: snake_case
    assert (declaration["name"], schema) == ("get_weather", WEATHER.parameters)
    calling = body["toolConfig"]["functionCallingConfig"]
    assert (calling["mode"], calling["allowedFunctionNames"]) == ("ANY", ["get_weather"])
    config = body["generationConfig"]
    assert (config["responseMimeType"], config["responseJsonSchema"]) == ("application/json", SCHEMA)
    assert (config["maxOutputTokens"], config["temperature"], config["stopSequences"]) == (100, 0.2, ["END"])


@pytest.mark.parametrize("make", [anthropic_provider, gemini_provider], ids=["anthropic", "gemini"])
async def test_invalid_tool_call_arguments_in_history_are_a_validation_error(
    emulator: RunningEmulator, make: Any
) -> None:
    """An assistant tool call whose arguments are not JSON is refused as a ValidationError before any request."""
    before = len(emulator.state.requests)
    broken = Message("assistant", "", tool_calls=[ToolCall("call_x", "get_weather", "{not json")])
    request = conversation(messages=[Message("user", "hi"), broken, Message("tool", "ok", tool_call_id="call_x")])
    provider: TextProvider = make(emulator)
    error = await failure(provider, request, spec("text", provider.name))
    assert isinstance(error, ValidationError)
    assert error.field == "messages.tool_calls.arguments"
    assert len(emulator.state.requests) == before


PROVIDERS = {
    "openai": (openai_provider, None),
    "openai_responses": (openai_provider, "responses"),
    "anthropic": (anthropic_provider, None),
    "gemini": (gemini_provider, None),
}


@pytest.mark.parametrize("target", list(PROVIDERS))
async def test_sdk_retries_are_off(emulator: RunningEmulator, target: str) -> None:
    """A 500 reaches the emulator exactly once: the SDK does not retry behind the chat service's back."""
    make, api = PROVIDERS[target]
    name = emulator.state.add(f"once-{target}", Scenario(text_chunks=("x",), fault=Fault("server_error")))
    before = len(emulator.state.requests)
    provider: TextProvider = make(emulator)
    error = await failure(provider, conversation(name), spec(name, provider.name, api=api))
    assert isinstance(error, ProviderError)
    assert error.retryable
    assert len(emulator.state.requests) == before + 1


@pytest.mark.parametrize("target", list(PROVIDERS))
async def test_rate_limit_carries_the_vendors_retry_after(emulator: RunningEmulator, target: str) -> None:
    """Retry-After (OpenAI: retry-after-ms; Anthropic: retry-after; Gemini: RetryInfo) becomes ``retry_after``."""
    make, api = PROVIDERS[target]
    name = emulator.state.add(f"slow-down-{target}", Scenario(fault=Fault("rate_limited", retry_after_s=2.0)))
    provider: TextProvider = make(emulator)
    error = await failure(provider, conversation(name), spec(name, provider.name, api=api))
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 2.0


_BUILDERS: dict[str, tuple[Any, Any, str | None]] = {
    "openai": (build_openai_text_provider, lambda e: e.openai_base_url, None),
    "openai_responses": (build_openai_text_provider, lambda e: e.openai_base_url, "responses"),
    "anthropic": (build_anthropic_text_provider, lambda e: e.anthropic_base_url, None),
    "gemini": (build_gemini_text_provider, lambda e: e.gemini_base_url, None),
}


@pytest.mark.parametrize("target", list(_BUILDERS))
async def test_a_whole_call_is_bounded_by_its_own_timeout(emulator: RunningEmulator, target: str) -> None:
    """``complete(timeout_s=...)`` bounds the whole call in place of the client's read timeout: a vendor that takes
    1 s over an answer, with a client read timeout of 0.5 s, answers within 5 s and times out within 0.3 s."""
    build, base_url, api = _BUILDERS[target]
    name = emulator.state.add(f"ponder-{target}", Scenario(text_chunks=("slow",), fault=Fault("stall", stall_s=1.0)))
    provider: TextProvider = build(
        name=target.split("_")[0], api_key="k", base_url=base_url(emulator), timeout_s=0.5, connect_timeout_s=2.0
    )
    model = spec(name, provider.name, api=api)
    try:
        answer = await provider.complete(conversation(name, tools=[], tool_choice=None), model, timeout_s=5.0)
        assert answer.text == "slow"
        with pytest.raises(ProviderTimeoutError):
            await provider.complete(conversation(name, tools=[], tool_choice=None), model, timeout_s=0.3)
    finally:
        await provider.aclose()


async def test_anthropic_streams_a_call_it_would_refuse_whole(emulator: RunningEmulator) -> None:
    """A ``max_tokens`` implying more than ten minutes (the SDK's own rule) is streamed and assembled; below it the
    call is made without streaming. Both give the same answer."""
    provider = anthropic_provider(emulator)
    model = spec("text", "anthropic")
    try:
        for max_tokens, streamed in ((NONSTREAMING_MAX_TOKENS + 1, True), (NONSTREAMING_MAX_TOKENS, False)):
            answer = await provider.complete(conversation(max_tokens=max_tokens, tools=[], tool_choice=None), model)
            assert (answer.text, answer.finish_reason) == ("Hello, world!", "stop")
            assert emulator.state.last("anthropic").body.get("stream", False) is streamed
    finally:
        await provider.aclose()


async def test_emulator_script_serves_a_fault_then_success(emulator: RunningEmulator) -> None:
    """A scripted name answers 429 first and then the text, so retry behaviour can be tested end to end."""
    name = emulator.state.script(
        "flaky-then-fine", Scenario(fault=Fault("rate_limited")), Scenario(text_chunks=("fine",))
    )
    model = spec(name, "openai", api="chat")
    assert isinstance(await failure(openai_provider(emulator), conversation(name), model), RateLimitError)
    events = await drain(openai_provider(emulator), conversation(name), model)
    assert [getattr(e, "text", None) for e in events][:1] == ["fine"]


async def test_emulator_records_no_credentials(emulator: RunningEmulator) -> None:
    """The emulator's request log keeps headers for assertions but never the key headers."""
    await drain(openai_provider(emulator), conversation(), spec("text", "openai"))
    headers = emulator.state.last("openai_chat").headers
    assert "authorization" not in headers
    assert headers["x-stainless-retry-count"] == "0"


def test_chat_normalizer_separates_calls_that_share_an_index() -> None:
    """A compatible server that puts every call at index 0 (new id each time) still yields two separate calls."""
    from adapters.openai.chat_completions import ChatStreamNormalizer

    def chunk(tool_call: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
        delta = {"tool_calls": [tool_call]} if tool_call else {}
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [choice]}

    normalizer = ChatStreamNormalizer()
    stream = [
        chunk({"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x": 1}'}}),
        chunk({"index": 0, "id": "b", "function": {"name": "g", "arguments": "{"}}),
        chunk({"index": 0, "function": {"arguments": "}"}}),
        chunk(None, "stop"),
    ]
    events = [event for c in stream for event in normalizer.feed(c)]
    events += list(normalizer.finish())
    assert_invariants(events)
    assert [c["tool_call"]["id"] for c in normalize(events) if "tool_call" in c] == ["a", "b"]
    assert normalize(events)[1]["tool_call"]["arguments"] == {}
    assert normalize(events)[-1] == {"finish": "tool_calls"}


@pytest.mark.parametrize(
    "reason",
    [
        "Incorrect API key provided: sk-proj-abcdefghijklmnop1234",
        "bad key AIzaSyA-abcdefghijklmnopqrstuvwxyz012345",
        "token " + "x" * 64,
    ],
)
def test_vendor_reasons_are_scrubbed_of_keys(reason: str) -> None:
    """Every adapter masks key-like tokens in the vendor reason it passes on, and caps its length."""
    from adapters.anthropic.errors import safe_reason as anthropic_reason
    from adapters.gemini.errors import safe_reason as gemini_reason
    from adapters.openai.errors import safe_reason as openai_reason

    secret = reason.split()[-1]
    for scrub in (openai_reason, anthropic_reason, gemini_reason):
        cleaned = scrub(reason)
        assert secret not in cleaned
        assert "[redacted]" in cleaned
        assert len(scrub(reason * 50)) <= 300
