"""HTTP boundary (OpenAI door): a Switchyard chat stream's events as OpenAI ``chat.completion.chunk`` SSE lines.

The answer is still a Switchyard stream (its id in ``X-Stream-ID``, resumable and cancellable through the native
routes; ``delivery`` reads it). ``ChunkWriter`` writes each event the way OpenAI streams: ``start`` becomes the
first chunk (``role: assistant``), ``text`` a ``content`` delta, ``tool_call`` a ``tool_calls`` delta (the name on
the first, argument pieces after, by ``index``), ``reasoning`` a ``reasoning_content`` delta (the field
OpenAI-compatible servers use), and ``done`` exactly one chunk carrying ``finish_reason``, then, with
``stream_options.include_usage``, exactly one chunk with empty ``choices`` and the usage, then ``data: [DONE]``. An
``error`` (or ``cancelled``) end is one ``data: {"error": {...}}`` line and the end of the response, as OpenAI does;
the SDK raises it as ``APIError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from domain.streaming import StreamEvent
from entrypoints.http.doors.openai.chat import finish_reason
from entrypoints.http.doors.openai.errors import error_body, stream_error

__all__ = ["ChunkWriter"]

_DONE: Final = b"data: [DONE]\n\n"


def _frame(data: Mapping[str, Any]) -> bytes:
    return b"data: " + msgspec.json.encode(data) + b"\n\n"


def _usage(payload: Any) -> dict[str, Any]:
    usage = payload if isinstance(payload, Mapping) else {}
    prompt, completion = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": int(usage.get("cached_tokens") or 0)},
        "completion_tokens_details": {"reasoning_tokens": int(usage.get("reasoning_tokens") or 0)},
    }


class ChunkWriter:
    """The SSE bytes of one completion's chunks, event by event (``b""`` for events OpenAI has no chunk for)."""

    def __init__(self, completion_id: str, created: int, model: str, *, include_usage: bool) -> None:
        self._id = completion_id
        self._created = created
        self._model = model
        self._include_usage = include_usage

    def _chunk(self, delta: Mapping[str, Any], finish: str | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self._include_usage:
            chunk["usage"] = None  # as OpenAI: every chunk has the key; only the usage chunk fills it
        return _frame(chunk)

    def frames(self, event: StreamEvent) -> bytes:
        """The bytes to send for ``event``."""
        payload = event.payload
        kind = event.type
        if kind == "text":
            return self._chunk({"content": payload.get("text", "")})
        if kind == "tool_call":
            return self._tool_call(payload)
        if kind == "reasoning":
            return self._chunk({"reasoning_content": payload.get("text", "")})
        if kind == "start":
            self._model = str(payload.get("model") or self._model)  # the model that serves, after any fallback
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "done":
            return self._end(payload)
        if kind == "error":
            return self.error(payload)
        if kind == "cancelled":
            reason = payload.get("reason", "client")
            return self.error({"code": "cancelled", "message": f"the stream was cancelled (reason: {reason})"})
        return b""  # usage increments (the total comes with done), gap markers

    def _tool_call(self, payload: Mapping[str, Any]) -> bytes:
        phase = payload.get("phase")
        call: dict[str, Any] = {"index": payload.get("index", 0)}
        if phase == "start":
            call.update(id=payload.get("id"), type="function", function={"name": payload.get("name"), "arguments": ""})
        elif phase == "delta":
            call["function"] = {"arguments": payload.get("arguments", "")}
        else:
            return b""  # a call's end has no chunk of its own: the finish reason closes them all
        return self._chunk({"tool_calls": [call]})

    def _end(self, payload: Mapping[str, Any]) -> bytes:
        frames = self._chunk({}, finish_reason(str(payload.get("finish_reason") or "stop")))
        if self._include_usage:
            usage_chunk = {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "system_fingerprint": None,
                "choices": [],
                "usage": _usage(payload.get("usage")),
            }
            frames += _frame(usage_chunk)
        return frames + _DONE

    def error(self, payload: Mapping[str, Any]) -> bytes:
        """The line that ends a failed stream."""
        return b"data: " + error_body(stream_error(payload)) + b"\n\n"
