"""Unit tests: the OpenAI and Anthropic adapters read vendor answers as parsed JSON objects.

The adapters take the JSON objects the SDKs parse (``cast_to=object``) instead of SDK models, so these pin what the
models used to smooth over: unknown fields, optional details that are missing or ``null``, refusals, tool calls
without ids or arguments, usage details, a JSON body served under another content type, and in-answer errors.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.anthropic.text import AnthropicStreamNormalizer, message_completion
from adapters.kit.stream import dig, json_body
from adapters.openai.chat_completions import ChatStreamNormalizer, chat_completion
from adapters.openai.responses import ResponsesAnswer, ResponsesStreamNormalizer
from domain.chat import (
    Finish,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)
from domain.completion import Completion
from domain.errors import ProviderError, RateLimitError, ValidationError

# --- the kit ----------------------------------------------------------------------------------------------------------


def test_dig_tolerates_missing_keys_and_non_objects() -> None:
    """``dig`` walks nested objects and gives ``None`` where a key is missing or a level is ``null`` or a scalar."""
    value = {"a": {"b": 3}, "n": None, "s": 5}
    assert dig(value, "a", "b") == 3
    assert [dig(value, "a", "x"), dig(value, "n", "b"), dig(value, "s", "b"), dig(None, "a")] == [None] * 4


def test_json_body_parses_text_and_refuses_what_is_not_json() -> None:
    """A JSON body served as ``text/plain`` (the SDK hands back its text) is parsed; text that is not JSON raises
    ``ValueError``, which the adapters report as a malformed reply."""
    assert json_body('{"a": 1}') == {"a": 1}
    assert json_body({"a": 1}) == {"a": 1}
    with pytest.raises(json.JSONDecodeError):  # a ValueError: in the adapters' MALFORMED
        json_body("<html>bad gateway</html>")


# --- OpenAI Chat Completions ----------------------------------------------------------------------------------------


def _completion(message: dict[str, Any], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None, "future_field": 1}
    return {"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice], **extra}


def test_chat_completion_reads_text_reasoning_calls_and_usage_details() -> None:
    """Text, the compatible family's ``reasoning_content``, calls (one without an id numbered by position, a custom
    tool call without ``function`` kept with an empty name and ``{}``), cached and reasoning tokens; unknown fields
    are ignored, and calls ending a ``stop`` turn finish ``tool_calls``."""
    message = {
        "role": "assistant",
        "content": "Checking.",
        "reasoning_content": "Think.",
        "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
            {"type": "function", "function": {"name": "g", "arguments": None}},
            {"id": "call_c", "type": "custom", "custom": {"name": "h", "input": "raw"}},
        ],
        "annotations": [],
        "unknown": {"deep": True},
    }
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    answer = chat_completion(_completion(message, usage=usage, service_tier="default"))
    assert answer == Completion(
        "Checking.",
        "Think.",
        (ToolCall("call_a", "f", '{"x": 1}'), ToolCall("call_1", "g", "{}"), ToolCall("call_c", "", "{}")),
        "tool_calls",
        Usage(10, 5, cached_tokens=4, reasoning_tokens=2),
    )


def test_chat_completion_without_usage_details_or_content() -> None:
    """``null`` content and details, ``reasoning`` (vLLM's name) and a ``function_call`` finish; no usage at all
    is ``None``, an empty usage object zeros."""
    message = {"role": "assistant", "content": None, "reasoning": "Hm."}
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "prompt_tokens_details": None}
    assert chat_completion(_completion(message, "length", usage=usage)) == Completion(
        "", "Hm.", (), "length", Usage(3, 1)
    )
    assert chat_completion(_completion({"content": "x"}, "function_call")).finish_reason == "tool_calls"
    assert chat_completion(_completion({"content": "x"})).usage is None
    assert chat_completion(_completion({"content": "x"}, usage={})).usage == Usage()


def test_chat_completion_ignores_a_refusal_as_before() -> None:
    """A refusal field is not answer text in Chat Completions (the adapter never read it); the vendor's
    ``content_filter`` finish is what reports a filtered answer."""
    answer = chat_completion(_completion({"content": None, "refusal": "I can't."}, "content_filter"))
    assert (answer.text, answer.finish_reason) == ("", "content_filter")


def test_chat_completion_of_a_text_body_and_of_garbage() -> None:
    """The whole answer as text (served under a non-JSON content type) reads the same; a shape that is not a
    completion raises one of the errors the adapters report as malformed."""
    body = _completion({"content": "Hi"})
    assert chat_completion(json.dumps(body)).text == "Hi"
    with pytest.raises((AttributeError, TypeError, LookupError, ValueError)):
        chat_completion([1, 2])


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [choice], **extra}


def _fed(normalizer: Any, items: list[Any]) -> list[ProviderEvent]:
    events = [event for item in items for event in normalizer.feed(item)]
    return events + list(normalizer.finish())


def test_chat_stream_reads_reasoning_text_calls_and_the_usage_chunk() -> None:
    """Reasoning, text, a call whose arguments arrive in pieces, a ``null`` delta, unknown fields, and the final
    usage chunk with no choices."""
    usage = {"prompt_tokens": 7, "completion_tokens": 3, "completion_tokens_details": {"reasoning_tokens": 1}}
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    stream = [
        _chunk({"role": "assistant", "content": ""}, obfuscation="xyz"),
        _chunk({"reasoning_content": "Hm."}),
        _chunk({"content": "Hi"}),
        _chunk({"tool_calls": [call]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        _chunk(None, "tool_calls"),
        {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [], "usage": usage},
    ]
    assert _fed(ChatStreamNormalizer(), stream) == [
        ReasoningDelta("Hm."),
        TextDelta("Hi"),
        ToolCallStart(0, "call_1", "f"),
        ToolCallDelta(0, "call_1", '{"a"'),
        ToolCallDelta(0, "call_1", ": 1}"),
        ToolCallEnd(0, "call_1"),
        UsageReport(Usage(7, 3, reasoning_tokens=1)),
        Finish("tool_calls"),
    ]


# --- OpenAI Responses -----------------------------------------------------------------------------------------------


def _response(output: list[dict[str, Any]], status: str = "completed", **extra: Any) -> dict[str, Any]:
    return {"id": "r", "object": "response", "status": status, "output": output, "error": None, **extra}


def test_responses_answer_reads_reasoning_text_calls_and_usage() -> None:
    """Reasoning summaries and texts, output text, function calls in order (``{}`` for empty arguments), usage
    details, unknown item types and fields ignored."""
    output: list[dict[str, Any]] = [
        {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "Plan."}], "content": None},
        {"type": "message", "content": [{"type": "output_text", "text": "Hi", "annotations": []}], "extra": 1},
        {"type": "web_search_call", "id": "ws", "status": "completed"},
        {"type": "function_call", "id": "fc", "call_id": "call_1", "name": "f", "arguments": ""},
    ]
    usage = {
        "input_tokens": 9,
        "output_tokens": 4,
        "input_tokens_details": {"cached_tokens": 2},
        "output_tokens_details": {"reasoning_tokens": 1},
    }
    answer = ResponsesAnswer("openai")(_response(output, usage=usage))
    assert answer == Completion(
        "Hi", "Plan.", (ToolCall("call_1", "f", "{}"),), "tool_calls", Usage(9, 4, cached_tokens=2, reasoning_tokens=1)
    )


def test_responses_answer_reads_a_refusal_as_text_that_finishes_content_filter() -> None:
    """A refusal part is the answer's text, and the answer finishes ``content_filter``; usage details may be null."""
    output = [{"type": "message", "content": [{"type": "refusal", "refusal": "I can't help."}]}]
    usage = {"input_tokens": 1, "output_tokens": 2, "input_tokens_details": None, "output_tokens_details": None}
    answer = ResponsesAnswer("openai")(_response(output, usage=usage))
    assert (answer.text, answer.finish_reason, answer.usage) == ("I can't help.", "content_filter", Usage(1, 2))


@pytest.mark.parametrize(("reason", "finish"), [("max_output_tokens", "length"), ("content_filter", "content_filter")])
def test_responses_answer_incomplete(reason: str, finish: str) -> None:
    """An incomplete response finishes as its reason says."""
    body = _response([], "incomplete", incomplete_details={"reason": reason})
    assert ResponsesAnswer("openai")(body).finish_reason == finish


def test_responses_answer_failed_is_the_streamed_error() -> None:
    """A ``failed`` response is the domain error its code names, as when streamed."""
    failed = _response([], "failed") | {"error": {"code": "rate_limit_exceeded", "message": "slow down"}}
    with pytest.raises(RateLimitError):
        ResponsesAnswer("openai")(failed)
    with pytest.raises(ProviderError):
        ResponsesAnswer("openai")(_response([], "failed") | {"error": None})


def test_responses_stream_reads_calls_without_deltas_and_ignores_unknown_events() -> None:
    """A call whose arguments arrive only with ``output_item.done`` still gets them; unknown events are skipped."""
    item = {"type": "function_call", "id": "fc", "call_id": "call_1", "name": "f", "arguments": ""}
    done = item | {"arguments": '{"x": 1}', "status": "completed"}
    stream = [
        {"type": "response.created", "response": _response([], "in_progress")},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.some_future_event", "whatever": 1},
        {"type": "response.output_item.done", "output_index": 0, "item": done},
        {"type": "response.completed", "response": _response([done], usage=None)},
    ]
    assert _fed(ResponsesStreamNormalizer("openai"), stream) == [
        ToolCallStart(0, "call_1", "f"),
        ToolCallDelta(0, "call_1", '{"x": 1}'),
        ToolCallEnd(0, "call_1"),
        Finish("tool_calls"),
    ]


def test_responses_stream_error_event_is_a_domain_error() -> None:
    """An ``error`` event is the domain error of its code."""
    normalizer = ResponsesStreamNormalizer("openai")
    with pytest.raises(ValidationError):
        list(normalizer.feed({"type": "error", "code": "context_length_exceeded", "message": "too long"}))


# --- Anthropic Messages ---------------------------------------------------------------------------------------------


def _message(content: list[dict[str, Any]], stop: str | None = "end_turn", **usage: Any) -> dict[str, Any]:
    return {
        "id": "msg",
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": stop,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
        "container": None,
    }


def test_message_completion_reads_blocks_and_cache_usage() -> None:
    """Thinking, text, ``tool_use`` input as JSON (``{}`` when null), unknown blocks skipped, cache reads and
    writes counted into input and cached tokens."""
    content: list[dict[str, Any]] = [
        {"type": "thinking", "thinking": "Hm.", "signature": "s"},
        {"type": "text", "text": "Checking.", "citations": None},
        {"type": "server_tool_use", "id": "srv", "name": "web_search", "input": {}},
        {"type": "tool_use", "id": "tu_1", "name": "f", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "tu_2", "name": "g", "input": None},
    ]
    answer = message_completion(_message(content, "end_turn", cache_read_input_tokens=3, cache_creation_input_tokens=2))
    assert answer == Completion(
        "Checking.",
        "Hm.",
        (ToolCall("tu_1", "f", '{"city": "Paris"}'), ToolCall("tu_2", "g", "{}")),
        "tool_calls",
        Usage(15, 5, cached_tokens=5),
    )


@pytest.mark.parametrize(
    ("stop", "finish"), [("refusal", "content_filter"), ("max_tokens", "length"), (None, "stop"), ("new", "stop")]
)
def test_message_completion_stop_reasons(stop: str | None, finish: str) -> None:
    """Stop reasons map to finish reasons; a missing or unknown one is ``stop``; null cache fields count zero."""
    answer = message_completion(_message([{"type": "text", "text": "x"}], stop, cache_read_input_tokens=None))
    assert (answer.finish_reason, answer.usage) == (finish, Usage(10, 5))


def test_anthropic_stream_reads_usage_calls_and_skips_unknown_events() -> None:
    """Input usage from ``message_start`` (cache included), a call with no argument deltas gets ``{}``, unknown
    events and deltas (``signature_delta``) are skipped, and the final output tokens come from ``message_delta``."""
    start = _message([], None) | {"usage": {"input_tokens": 6, "output_tokens": 1, "cache_creation_input_tokens": 2}}
    stream = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hm."}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "tu", "name": "f"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "some_future_event"},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        {"type": "message_stop"},
    ]
    normalizer = AnthropicStreamNormalizer()
    events = _fed(normalizer, stream)
    assert normalizer.finished
    assert events == [
        ReasoningDelta("Hm."),
        ToolCallStart(0, "tu", "f"),
        ToolCallDelta(0, "tu", "{}"),
        ToolCallEnd(0, "tu"),
        UsageReport(Usage(8, 9, cached_tokens=2)),
        Finish("tool_calls"),
    ]
