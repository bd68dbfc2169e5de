"""Test double (vendor emulator): a scenario in OpenAI's wire formats (Chat Completions and Responses)."""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

from tests.emulator.scenario import CONTEXT_TOO_LONG_REASON, Fault, Scenario, ScriptedToolCall
from tests.emulator.wire import LEAKY_KEY, ErrorReply, Rendered, retry_after_headers, sse

__all__ = [
    "chat_completion",
    "chat_error_event",
    "chat_stream",
    "openai_error",
    "response_object",
    "responses_error_event",
    "responses_stream",
    "stream_options_refused",
]

_CREATED = 1_700_000_000
_CHAT_FINISH = {"stop": "stop", "length": "length", "content_filter": "content_filter", "tool_calls": "tool_calls"}


def _argument_schedule(scenario: Scenario) -> list[tuple[int, str]]:
    """(call index, argument piece) in send order: round-robin when interleaving, call by call otherwise."""
    calls = scenario.tool_calls
    if scenario.interleave_tool_calls:
        rounds = zip_longest(*(call.argument_chunks for call in calls))
        return [(i, piece) for row in rounds for i, piece in enumerate(row) if piece is not None]
    return [(i, piece) for i, call in enumerate(calls) for piece in call.argument_chunks]


def openai_error(fault: Fault) -> ErrorReply:
    """The error answer OpenAI (and the compatible family) gives for a status fault."""

    def body(message: str, type_: str, code: str | None) -> dict[str, Any]:
        return {"error": {"message": message, "type": type_, "param": None, "code": code}}

    match fault.kind:
        case "context_too_long":
            return ErrorReply(400, body(CONTEXT_TOO_LONG_REASON, "invalid_request_error", "context_length_exceeded"))
        case "unauthorized":
            message = f"Incorrect API key provided: {LEAKY_KEY}. You can find your API key at the dashboard."
            return ErrorReply(401, body(message, "invalid_request_error", "invalid_api_key"))
        case "rate_limited":
            headers = retry_after_headers(fault.retry_after_s, with_ms=True)
            return ErrorReply(429, body("Rate limit reached for requests", "requests", "rate_limit_exceeded"), headers)
        case "overloaded":
            return ErrorReply(503, body("The engine is currently overloaded", "server_error", None))
        case _:
            return ErrorReply(500, body("The server had an error processing your request.", "server_error", None))


def stream_options_refused() -> ErrorReply:
    """OpenAI's 400 for ``stream_options`` on a call that does not stream."""
    message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    error = {"message": message, "type": "invalid_request_error", "param": "stream_options", "code": None}
    return ErrorReply(400, {"error": error})


# --- Chat Completions ------------------------------------------------------------------------------------------


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-emu",
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def _chat_usage(scenario: Scenario) -> dict[str, Any]:
    u = scenario.usage
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def chat_stream(scenario: Scenario, model: str, *, include_usage: bool) -> Rendered:
    """SSE chunks: role, reasoning (``reasoning_content``, as DeepSeek and vLLM send it), text, tool calls (each
    call's first chunk carries id and name), the finish chunk, the usage chunk if asked, and ``[DONE]``."""
    frames = [sse(_chunk(model, {"role": "assistant", "content": ""}))]
    frames += [sse(_chunk(model, {"reasoning_content": piece})) for piece in scenario.reasoning_chunks]
    cut = 0
    for piece in scenario.text_chunks:
        frames.append(sse(_chunk(model, {"content": piece})))
        cut = cut or len(frames)
    started: set[int] = set()

    def start(i: int, call: ScriptedToolCall) -> bytes:
        started.add(i)
        function = {"name": call.name, "arguments": ""}
        return sse(
            _chunk(model, {"tool_calls": [{"index": i, "id": call.id, "type": "function", "function": function}]})
        )

    if scenario.interleave_tool_calls:
        frames += [start(i, call) for i, call in enumerate(scenario.tool_calls)]
    for i, piece in _argument_schedule(scenario):
        if i not in started:
            frames.append(start(i, scenario.tool_calls[i]))
        frames.append(sse(_chunk(model, {"tool_calls": [{"index": i, "function": {"arguments": piece}}]})))
    frames.append(sse(_chunk(model, {}, _CHAT_FINISH[scenario.finish_reason])))
    if include_usage:
        usage_chunk = _chunk(model, {}) | {"choices": [], "usage": _chat_usage(scenario)}
        frames.append(sse(usage_chunk))
    frames.append(sse("[DONE]"))
    return Rendered(frames, cut or len(frames) - 1)


def chat_error_event() -> bytes:
    """A mid-stream error as OpenAI sends it: a data line whose object has an ``error`` key."""
    return sse({"error": {"message": "The server had an error while processing your request.", "type": "server_error"}})


def chat_completion(scenario: Scenario, model: str) -> dict[str, Any]:
    """The non-streaming Chat Completions body."""
    message: dict[str, Any] = {"role": "assistant", "content": scenario.text or None}
    if scenario.reasoning:
        message["reasoning_content"] = scenario.reasoning
    if scenario.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in scenario.tool_calls
        ]
    return {
        "id": "chatcmpl-emu",
        "object": "chat.completion",
        "created": _CREATED,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": _CHAT_FINISH[scenario.finish_reason], "logprobs": None}
        ],
        "usage": _chat_usage(scenario),
    }


# --- Responses -------------------------------------------------------------------------------------------------


def _output_items(scenario: Scenario) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if scenario.reasoning_chunks:
        summary = [{"type": "summary_text", "text": scenario.reasoning}]
        items.append({"id": "rs_emu", "type": "reasoning", "summary": summary, "status": "completed"})
    if scenario.text_chunks:
        content = [{"type": "output_text", "text": scenario.text, "annotations": [], "logprobs": []}]
        items.append(
            {"id": "msg_emu", "type": "message", "role": "assistant", "status": "completed", "content": content}
        )
    items += [
        {
            "id": f"fc_{c.id}",
            "type": "function_call",
            "call_id": c.id,
            "name": c.name,
            "arguments": c.arguments,
            "status": "completed",
        }
        for c in scenario.tool_calls
    ]
    return items


def response_object(scenario: Scenario, model: str, *, final: bool = True) -> dict[str, Any]:
    """The Responses API ``response`` object (``final=False``: the in-progress shell sent first)."""
    u = scenario.usage
    status, incomplete = "completed", None
    if scenario.finish in ("length", "content_filter"):
        status = "incomplete"
        incomplete = {"reason": "max_output_tokens" if scenario.finish == "length" else "content_filter"}
    return {
        "id": "resp_emu",
        "object": "response",
        "created_at": _CREATED,
        "status": status if final else "in_progress",
        "incomplete_details": incomplete if final else None,
        "error": None,
        "model": model,
        "output": _output_items(scenario) if final else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "total_tokens": u.input_tokens + u.output_tokens,
            "input_tokens_details": {"cached_tokens": u.cached_tokens},
            "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        }
        if final
        else None,
    }


def responses_stream(scenario: Scenario, model: str) -> Rendered:
    """The typed event sequence: created, then per output item added / deltas / done, then completed (or
    incomplete). Function-call argument deltas of parallel calls are interleaved when the scenario asks."""
    frames: list[bytes] = []

    def emit(type_: str, **data: Any) -> None:
        frames.append(sse({"type": type_, "sequence_number": len(frames), **data}, event=type_))

    emit("response.created", response=response_object(scenario, model, final=False))
    items = _output_items(scenario)
    index = 0
    cut = 0
    if scenario.reasoning_chunks:
        item = items[index]
        emit("response.output_item.added", output_index=index, item=item | {"summary": [], "status": "in_progress"})
        summary_part: dict[str, Any] = {"type": "summary_text", "text": ""}
        emit(
            "response.reasoning_summary_part.added",
            item_id=item["id"],
            output_index=index,
            summary_index=0,
            part=summary_part,
        )
        for piece in scenario.reasoning_chunks:
            emit(
                "response.reasoning_summary_text.delta",
                item_id=item["id"],
                output_index=index,
                summary_index=0,
                delta=piece,
            )
        emit("response.output_item.done", output_index=index, item=item)
        index += 1
    if scenario.text_chunks:
        item = items[index]
        emit("response.output_item.added", output_index=index, item=item | {"content": [], "status": "in_progress"})
        part: dict[str, Any] = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        emit("response.content_part.added", item_id=item["id"], output_index=index, content_index=0, part=part)
        for piece in scenario.text_chunks:
            emit(
                "response.output_text.delta",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
            cut = cut or len(frames)
        emit("response.output_text.done", item_id=item["id"], output_index=index, content_index=0, text=scenario.text)
        emit("response.content_part.done", item_id=item["id"], output_index=index, content_index=0, part=part)
        emit("response.output_item.done", output_index=index, item=item)
        index += 1
    calls = items[index:]

    def add(i: int) -> None:
        shell = calls[i] | {"arguments": "", "status": "in_progress"}
        emit("response.output_item.added", output_index=index + i, item=shell)

    if scenario.interleave_tool_calls:
        for i in range(len(calls)):
            add(i)
        for i, piece in _argument_schedule(scenario):
            emit("response.function_call_arguments.delta", item_id=calls[i]["id"], output_index=index + i, delta=piece)
        for i, call in enumerate(calls):
            _close_call(emit, call, index + i)
    else:
        for i, scripted in enumerate(scenario.tool_calls):
            add(i)
            for piece in scripted.argument_chunks:
                emit(
                    "response.function_call_arguments.delta",
                    item_id=calls[i]["id"],
                    output_index=index + i,
                    delta=piece,
                )
            _close_call(emit, calls[i], index + i)
    final = response_object(scenario, model)
    emit("response.completed" if final["status"] == "completed" else "response.incomplete", response=final)
    return Rendered(frames, cut or len(frames) - 1)


def _close_call(emit: Any, call: dict[str, Any], output_index: int) -> None:
    emit(
        "response.function_call_arguments.done",
        item_id=call["id"],
        output_index=output_index,
        name=call["name"],
        arguments=call["arguments"],
    )
    emit("response.output_item.done", output_index=output_index, item=call)


def responses_error_event(sequence_number: int) -> bytes:
    """A mid-stream ``error`` event of the Responses API."""
    data = {
        "type": "error",
        "code": "server_error",
        "message": "The server had an error while processing your request.",
        "param": None,
        "sequence_number": sequence_number,
    }
    return sse(data, event="error")
