"""The fake vendor: deterministic echo, fixed text, delays, scripted failures, parallel tool calls, reasoning."""

from __future__ import annotations

import json

import pytest

from adapters.fake import FakeTextProvider
from domain.catalog import ModelSpec
from domain.chat import (
    ChatRequest,
    Finish,
    Message,
    ProviderEvent,
    ReasoningDelta,
    ResponseFormat,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolChoice,
    ToolSpec,
    UsageReport,
)
from domain.errors import ProviderError, ProviderTimeoutError, RateLimitError, ServiceError, ValidationError


def model(mode: str, **defaults: object) -> ModelSpec:
    return ModelSpec(mode, "fake", frozenset({"text", "tools"}), default_params=dict(defaults))


def ask(text: str = "hello big world", **kwargs: object) -> ChatRequest:
    return ChatRequest("fake/x", [Message("user", text)], **kwargs)  # type: ignore[arg-type]


async def collect(provider: FakeTextProvider, request: ChatRequest, spec: ModelSpec) -> list[ProviderEvent]:
    return [event async for event in provider.stream(request, spec)]


def text_of(events: list[ProviderEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_echo_repeats_the_last_user_text_word_by_word() -> None:
    """echo streams the last user message in word chunks, then usage, then Finish(stop)."""
    events = await collect(FakeTextProvider(), ask(), model("echo"))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["hello", " big", " world"]
    assert isinstance(events[-2], UsageReport)
    assert events[-2].usage.output_tokens == 3
    assert events[-1] == Finish("stop")


async def test_max_tokens_truncates_with_finish_length() -> None:
    """Fewer max_tokens than words ends with finish reason ``length``."""
    events = await collect(FakeTextProvider(), ask(max_tokens=2), model("echo"))
    assert text_of(events) == "hello big"
    assert events[-1] == Finish("length")


async def test_fixed_text_and_json_echo() -> None:
    """fixed answers fake_text; echo with a JSON response format answers a JSON object."""
    fixed = await collect(FakeTextProvider(), ask(metadata={"fake_text": "set answer"}), model("fixed"))
    assert text_of(fixed) == "set answer"
    as_json = await collect(FakeTextProvider(), ask(response_format=ResponseFormat("json_object")), model("echo"))
    assert json.loads(text_of(as_json)) == {"echo": "hello big world"}


async def test_slow_sleeps_between_chunks_through_the_injected_sleep() -> None:
    """slow waits fake_delay_ms between chunks, using the injected sleep."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    await collect(FakeTextProvider(sleep=sleep), ask(), model("slow", fake_delay_ms=50))
    assert slept == [0.05, 0.05]


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("rate_limited", RateLimitError),
        ("overloaded", ProviderError),
        ("timeout", ProviderTimeoutError),
        ("auth", ProviderError),
        ("context_length", ValidationError),
    ],
)
async def test_failures_raise_domain_errors_before_content(kind: str, error_type: type[ServiceError]) -> None:
    """fake_error raises the matching domain error before any event."""
    with pytest.raises(error_type):
        await collect(FakeTextProvider(), ask(metadata={"fake_error": kind}), model("echo"))


async def test_failure_after_content_and_only_the_first_times() -> None:
    """fake_fail_after sends that many chunks first; fake_fail_times fails only the first N calls per key."""
    provider = FakeTextProvider()
    seen: list[ProviderEvent] = []

    async def read() -> None:
        async for event in provider.stream(
            ask(metadata={"fake_error": "overloaded", "fake_fail_after": "2"}), model("echo")
        ):
            seen.append(event)

    with pytest.raises(ProviderError):
        await read()
    assert text_of(seen) == "hello big"
    flaky = ask(metadata={"fake_error": "rate_limited", "fake_fail_times": "1"})
    with pytest.raises(RateLimitError):
        await collect(provider, flaky, model("echo"))
    assert text_of(await collect(provider, flaky, model("echo"))) == "hello big world"


async def test_tools_emits_two_parallel_calls_with_interleaved_argument_deltas() -> None:
    """Both calls start, argument halves interleave, both end, finish is tool_calls; JSON reassembles per index."""
    request = ask("oslo", tools=[ToolSpec("weather"), ToolSpec("clock"), ToolSpec("unused")])
    events = await collect(FakeTextProvider(), request, model("tools"))
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.index, s.name) for s in starts] == [(0, "weather"), (1, "clock")]
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [d.index for d in deltas] == [0, 1, 0, 1]
    for index, name in ((0, "weather"), (1, "clock")):
        arguments = "".join(d.arguments for d in deltas if d.index == index)
        assert json.loads(arguments) == {"query": "oslo", "tool": name}
    assert [e.index for e in events if isinstance(e, ToolCallEnd)] == [0, 1]
    assert events[-1] == Finish("tool_calls")


async def test_tool_choice_and_tool_results() -> None:
    """A named tool choice calls only that tool; after tool results the model answers in text."""
    named = ask(tools=[ToolSpec("a"), ToolSpec("b")], tool_choice=ToolChoice("tool", "b"))
    starts = [e for e in await collect(FakeTextProvider(), named, model("tools")) if isinstance(e, ToolCallStart)]
    assert [s.name for s in starts] == ["b"]
    answered = ChatRequest(
        "fake/tools",
        [Message("user", "hi"), Message("tool", "sunny", tool_call_id="call_fake_0")],
        tools=[ToolSpec("a")],
    )
    assert text_of(await collect(FakeTextProvider(), answered, model("tools"))) == "Tool results: sunny"


async def test_reasoning_thinks_before_answering() -> None:
    """reasoning streams reasoning deltas first and counts them as reasoning tokens."""
    events = await collect(FakeTextProvider(), ask("why"), model("reasoning"))
    assert isinstance(events[0], ReasoningDelta)
    usage = next(e for e in events if isinstance(e, UsageReport)).usage
    assert usage.reasoning_tokens == 3
    assert text_of(events) == "why"


async def test_finish_reason_and_text_before_tool_calls_are_configurable() -> None:
    """fake_finish sets the finish reason; in tools mode fake_text comes before the calls."""
    filtered = await collect(FakeTextProvider(), ask(metadata={"fake_finish": "content_filter"}), model("echo"))
    assert filtered[-1] == Finish("content_filter")
    events = await collect(
        FakeTextProvider(), ask(tools=[ToolSpec("a")], metadata={"fake_text": "Let me check."}), model("tools")
    )
    first_call = next(i for i, e in enumerate(events) if isinstance(e, ToolCallStart))
    assert text_of(events[:first_call]) == "Let me check."
    assert events[-1] == Finish("tool_calls")
    with pytest.raises(ValidationError):
        await collect(FakeTextProvider(), ask(metadata={"fake_finish": "bored"}), model("echo"))
