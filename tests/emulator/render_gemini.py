"""Test double (vendor emulator): a scenario in the Gemini API's generateContent wire format.

Gemini has no argument deltas: each function call arrives whole, in one part, with its ``id``. Thought parts carry
``thought: true``. ``candidatesTokenCount`` excludes thinking tokens (``thoughtsTokenCount``), and the finish reason
and usage ride on the last chunk; the stream has no terminator, it ends when the body closes.
"""

from __future__ import annotations

import json
from typing import Any, Final

from tests.emulator.scenario import CONTEXT_TOO_LONG_REASON, Fault, Scenario
from tests.emulator.wire import LEAKY_KEY, ErrorReply, Rendered, sse

__all__ = ["API_VERSION", "gemini_error", "gemini_error_event", "gemini_response", "gemini_stream", "wrong_version"]

#: The one API version the emulator serves in Gemini API mode: the adapter must call it (its /v1 lacks newer features,
#: and Gemini-compatible servers serve only /v1beta), so a client left on google-genai's default /v1 is refused.
API_VERSION: Final = "v1beta"

_FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}


def _error_body(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def gemini_error(fault: Fault) -> ErrorReply:
    """The error answer the Gemini API gives; a 429 says when to retry in a ``RetryInfo`` detail, not a header."""
    match fault.kind:
        case "context_too_long":
            return ErrorReply(400, _error_body(400, "INVALID_ARGUMENT", CONTEXT_TOO_LONG_REASON))
        case "unauthorized":
            message = f"API key not valid. Please pass a valid API key. ({LEAKY_KEY})"
            return ErrorReply(401, _error_body(401, "UNAUTHENTICATED", message))
        case "rate_limited":
            retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{fault.retry_after_s:g}s"}
            return ErrorReply(429, _error_body(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted", [retry]))
        case "overloaded":
            return ErrorReply(503, _error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later."))
        case _:
            return ErrorReply(500, _error_body(500, "INTERNAL", "Internal error encountered."))


def wrong_version(version: str) -> ErrorReply | None:
    """The 404 Google answers for a path under an API version it does not serve here (``None``: the right one)."""
    if version == API_VERSION:
        return None
    message = f"API version {version!r} is not served here: call /{API_VERSION}/models/..."
    return ErrorReply(404, _error_body(404, "NOT_FOUND", message))


def gemini_error_event() -> bytes:
    """A mid-stream error chunk (the SDK raises a ``ServerError`` for a chunk that is ``{"error": ...}``)."""
    return sse(_error_body(500, "INTERNAL", "Internal error encountered."))


def _usage(scenario: Scenario) -> dict[str, Any]:
    u = scenario.usage
    return {
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": u.output_tokens - u.reasoning_tokens,
        "thoughtsTokenCount": u.reasoning_tokens,
        "cachedContentTokenCount": u.cached_tokens,
        "totalTokenCount": u.input_tokens + u.output_tokens,
    }


def _chunk(model: str, parts: list[dict[str, Any]], scenario: Scenario | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    body: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": "resp-emu"}
    if scenario is not None:  # the last chunk
        candidate["finishReason"] = _FINISH[scenario.finish_reason]
        body["usageMetadata"] = _usage(scenario)
    return body


def _call_part(call: Any) -> dict[str, Any]:
    return {"functionCall": {"id": call.id, "name": call.name, "args": json.loads(call.arguments)}}


def gemini_stream(scenario: Scenario, model: str) -> Rendered:
    """One chunk per thought piece and text piece, one chunk holding every function call, the last chunk carrying
    the finish reason and usage."""
    chunks: list[list[dict[str, Any]]] = [[{"text": piece, "thought": True}] for piece in scenario.reasoning_chunks]
    first_text = len(chunks)
    chunks += [[{"text": piece}] for piece in scenario.text_chunks]
    if scenario.tool_calls:
        chunks.append([_call_part(call) for call in scenario.tool_calls])
    frames = [sse(_chunk(model, parts, scenario if i == len(chunks) - 1 else None)) for i, parts in enumerate(chunks)]
    return Rendered(frames, first_text + 1 if scenario.text_chunks else len(frames) - 1)


def gemini_response(scenario: Scenario, model: str) -> dict[str, Any]:
    """The non-streaming generateContent body."""
    parts: list[dict[str, Any]] = []
    if scenario.reasoning:
        parts.append({"text": scenario.reasoning, "thought": True})
    if scenario.text:
        parts.append({"text": scenario.text})
    parts += [_call_part(call) for call in scenario.tool_calls]
    return _chunk(model, parts, scenario)
