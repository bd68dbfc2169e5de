"""Test double (vendor emulator): a scenario in Anthropic's Messages wire format (with the mandatory ``event:`` lines).

Usage follows Anthropic's split: ``input_tokens`` excludes cache reads (sent as ``cache_read_input_tokens``), so an
adapter that normalizes correctly reports the scenario's input total.
"""

from __future__ import annotations

import json
from typing import Any

from tests.emulator.scenario import CONTEXT_TOO_LONG_REASON, Fault, Scenario
from tests.emulator.wire import LEAKY_KEY, ErrorReply, Rendered, retry_after_headers, sse

__all__ = ["MALFORMED_FRAME", "anthropic_error", "anthropic_error_event", "message_object", "messages_stream"]

#: A malformed chunk for Anthropic must carry an ``event:`` line, or the SDK skips it without parsing.
MALFORMED_FRAME = b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"ty\n\n'

_STOP = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal", "tool_calls": "tool_use"}


def _error_body(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}, "request_id": "req_emu"}


def anthropic_error(fault: Fault) -> ErrorReply:
    """The error answer Anthropic gives for a status fault (529 for overload)."""
    match fault.kind:
        case "context_too_long":
            return ErrorReply(400, _error_body("invalid_request_error", CONTEXT_TOO_LONG_REASON))
        case "unauthorized":
            return ErrorReply(401, _error_body("authentication_error", f"invalid x-api-key: {LEAKY_KEY}"))
        case "rate_limited":
            headers = retry_after_headers(fault.retry_after_s, with_ms=False)
            return ErrorReply(
                429, _error_body("rate_limit_error", "Number of requests has exceeded your rate limit"), headers
            )
        case "overloaded":
            return ErrorReply(529, _error_body("overloaded_error", "Overloaded"))
        case _:
            return ErrorReply(500, _error_body("api_error", "Internal server error"))


def anthropic_error_event() -> bytes:
    """A mid-stream ``event: error`` (the SDK raises it as an API error)."""
    return sse(_error_body("api_error", "Internal server error"), event="error")


def _usage(scenario: Scenario, *, output: int) -> dict[str, Any]:
    u = scenario.usage
    return {
        "input_tokens": u.input_tokens - u.cached_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "cache_creation_input_tokens": 0,
        "output_tokens": output,
    }


def _blocks(scenario: Scenario) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if scenario.reasoning_chunks:
        blocks.append({"type": "thinking", "thinking": scenario.reasoning, "signature": "sig-emu"})
    if scenario.text_chunks:
        blocks.append({"type": "text", "text": scenario.text})
    blocks += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.arguments)} for c in scenario.tool_calls
    ]
    return blocks


def message_object(scenario: Scenario, model: str) -> dict[str, Any]:
    """The non-streaming Messages body."""
    return {
        "id": "msg_emu",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _blocks(scenario),
        "stop_reason": _STOP[scenario.finish_reason],
        "stop_sequence": None,
        "usage": _usage(scenario, output=scenario.usage.output_tokens),
    }


def messages_stream(scenario: Scenario, model: str) -> Rendered:
    """message_start, ping, one content block per thinking / text / tool_use (start, deltas, stop), message_delta
    with the stop reason and cumulative output tokens, message_stop. Blocks never interleave, as on the real API."""
    frames: list[bytes] = []

    def emit(type_: str, **data: Any) -> None:
        frames.append(sse({"type": type_, **data}, event=type_))

    shell = message_object(scenario, model) | {"content": [], "stop_reason": None, "usage": _usage(scenario, output=1)}
    emit("message_start", message=shell)
    emit("ping")
    index = 0
    cut = 0
    if scenario.reasoning_chunks:
        emit("content_block_start", index=index, content_block={"type": "thinking", "thinking": "", "signature": ""})
        for piece in scenario.reasoning_chunks:
            emit("content_block_delta", index=index, delta={"type": "thinking_delta", "thinking": piece})
        emit("content_block_delta", index=index, delta={"type": "signature_delta", "signature": "sig-emu"})
        emit("content_block_stop", index=index)
        index += 1
    if scenario.text_chunks:
        emit("content_block_start", index=index, content_block={"type": "text", "text": ""})
        for piece in scenario.text_chunks:
            emit("content_block_delta", index=index, delta={"type": "text_delta", "text": piece})
            cut = cut or len(frames)
        emit("content_block_stop", index=index)
        index += 1
    for call in scenario.tool_calls:
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        emit("content_block_start", index=index, content_block=block)
        for piece in call.argument_chunks:
            emit("content_block_delta", index=index, delta={"type": "input_json_delta", "partial_json": piece})
        emit("content_block_stop", index=index)
        index += 1
    delta = {"stop_reason": _STOP[scenario.finish_reason], "stop_sequence": None}
    emit("message_delta", delta=delta, usage={"output_tokens": scenario.usage.output_tokens})
    emit("message_stop")
    return Rendered(frames, cut or len(frames) - 1)
