"""HTTP boundary (OpenAI door): a Switchyard chat stream's events as the Responses API's typed SSE events.

Each event is ``event: <type>`` plus ``data: {"type", "sequence_number", ...}``, in the order the SDK's
``responses.stream()`` accumulator requires: ``response.created`` first; every output item ``added`` before its
deltas and ``done`` after them (reasoning: ``reasoning_summary_text.delta``; message: ``content_part.added`` then
``output_text.delta``; function call: ``function_call_arguments.delta``, interleaved by item when calls run in
parallel); then ``response.completed`` (or ``response.incomplete``) with the whole response. A failed (or
cancelled) stream ends with an ``error`` event and ``response.failed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec
from attrs import define, field

from domain.streaming import StreamEvent
from entrypoints.http.doors.openai.errors import stream_error
from entrypoints.http.doors.openai.responses import compact, incomplete_details
from entrypoints.http.doors.openai.wire_responses import OpenAIResponse, OpenAIResponseUsage

__all__ = ["ResponseEventWriter"]

_Status = Literal["in_progress", "completed", "incomplete", "failed"]


@define
class _Item:
    """An output item being streamed: where it sits, and what it has accumulated."""

    output_index: int
    data: dict[str, Any]
    pieces: list[str] = field(factory=list)

    @property
    def id(self) -> str:
        return str(self.data["id"])


class ResponseEventWriter:
    """The SSE bytes of one response's events, stream event by stream event."""

    def __init__(self, response_id: str, created: int, model: str) -> None:
        self._id = response_id
        self._created = created
        self._model = model
        self._sequence = 0
        self._done: dict[int, dict[str, Any]] = {}  # finished output items by output index
        self._next_index = 0
        self._text: _Item | None = None
        self._reasoning: _Item | None = None
        self._calls: dict[int, _Item] = {}  # by the stream's tool-call index

    def _emit(self, kind: str, **data: Any) -> bytes:
        payload = msgspec.json.encode({"type": kind, "sequence_number": self._sequence, **data})
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"

    def _response(self, status: _Status, **fields: Any) -> dict[str, Any]:
        output = [self._done[index] for index in sorted(self._done)]
        shell = OpenAIResponse(id=self._id, created_at=self._created, model=self._model, output=[], status=status)
        return {**compact(shell), "output": output, **fields}

    def _open(self, data: dict[str, Any]) -> tuple[_Item, bytes]:
        item = _Item(self._next_index, data)
        self._next_index += 1
        return item, self._emit("response.output_item.added", output_index=item.output_index, item=data)

    def _finish(self, item: _Item, data: dict[str, Any]) -> bytes:
        self._done[item.output_index] = data
        return self._emit("response.output_item.done", output_index=item.output_index, item=data)

    def frames(self, event: StreamEvent) -> bytes:
        """The bytes to send for ``event``."""
        payload = event.payload
        kind = event.type
        if kind == "text":
            return self._text_delta(str(payload.get("text", "")))
        if kind == "tool_call":
            return self._tool_call(payload)
        if kind == "reasoning":
            return self._reasoning_delta(str(payload.get("text", "")))
        if kind == "start":
            self._model = str(payload.get("model") or self._model)  # the model that serves, after any fallback
            return self._emit("response.created", response=self._response("in_progress"))
        if kind == "done":
            return self._complete(payload)
        if kind == "error":
            return self.error(payload)
        if kind == "cancelled":
            reason = payload.get("reason", "client")
            return self.error({"code": "cancelled", "message": f"the stream was cancelled (reason: {reason})"})
        return b""

    # --- output items ------------------------------------------------------------------------------------------

    def _reasoning_delta(self, text: str) -> bytes:
        out = self._close_text()
        if self._reasoning is None:
            item_id = f"rs_{self._id}_{self._next_index}"
            self._reasoning, added = self._open({"id": item_id, "type": "reasoning", "summary": []})
            part = {"type": "summary_text", "text": ""}
            out += added + self._emit(
                "response.reasoning_summary_part.added",
                item_id=item_id,
                output_index=self._reasoning.output_index,
                summary_index=0,
                part=part,
            )
        item = self._reasoning
        item.pieces.append(text)
        where = {"item_id": item.id, "output_index": item.output_index, "summary_index": 0}
        return out + self._emit("response.reasoning_summary_text.delta", delta=text, **where)

    def _close_reasoning(self) -> bytes:
        item, self._reasoning = self._reasoning, None
        if item is None:
            return b""
        text = "".join(item.pieces)
        where = {"item_id": item.id, "output_index": item.output_index, "summary_index": 0}
        part = {"type": "summary_text", "text": text}
        return (
            self._emit("response.reasoning_summary_text.done", text=text, **where)
            + self._emit("response.reasoning_summary_part.done", part=part, **where)
            + self._finish(item, {"id": item.id, "type": "reasoning", "summary": [part]})
        )

    def _text_delta(self, text: str) -> bytes:
        out = self._close_reasoning()
        if self._text is None:
            item_id = f"msg_{self._id}_{self._next_index}"
            shell = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
            self._text, added = self._open(shell)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            where = {"item_id": item_id, "output_index": self._text.output_index, "content_index": 0}
            out += added + self._emit("response.content_part.added", part=part, **where)
        item = self._text
        item.pieces.append(text)
        where = {"item_id": item.id, "output_index": item.output_index, "content_index": 0}
        return out + self._emit("response.output_text.delta", delta=text, logprobs=[], **where)

    def _close_text(self) -> bytes:
        item, self._text = self._text, None
        if item is None:
            return b""
        text = "".join(item.pieces)
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        where = {"item_id": item.id, "output_index": item.output_index, "content_index": 0}
        message = {"id": item.id, "type": "message", "role": "assistant", "status": "completed", "content": [part]}
        return (
            self._emit("response.output_text.done", text=text, logprobs=[], **where)
            + self._emit("response.content_part.done", part=part, **where)
            + self._finish(item, message)
        )

    def _tool_call(self, payload: Mapping[str, Any]) -> bytes:
        index = int(payload.get("index", 0))
        phase = payload.get("phase")
        if phase == "start":
            out = self._close_reasoning() + self._close_text()
            call_id = str(payload.get("id"))
            shell = {
                "id": f"fc_{call_id}",
                "type": "function_call",
                "call_id": call_id,
                "name": payload.get("name"),
                "arguments": "",
                "status": "in_progress",
            }
            self._calls[index], added = self._open(shell)
            return out + added
        call = self._calls.get(index)
        if call is None:
            return b""
        if phase == "delta":
            piece = str(payload.get("arguments", ""))
            call.pieces.append(piece)
            where = {"item_id": call.id, "output_index": call.output_index}
            return self._emit("response.function_call_arguments.delta", delta=piece, **where)
        return self._close_call(index)

    def _close_call(self, index: int) -> bytes:
        call = self._calls.pop(index)
        arguments = "".join(call.pieces) or "{}"
        done = {**call.data, "arguments": arguments, "status": "completed"}
        where = {"item_id": call.id, "output_index": call.output_index}
        return self._emit(
            "response.function_call_arguments.done", name=call.data["name"], arguments=arguments, **where
        ) + self._finish(call, done)

    # --- ends --------------------------------------------------------------------------------------------------

    def _complete(self, payload: Mapping[str, Any]) -> bytes:
        out = self._close_reasoning() + self._close_text()
        for index in sorted(self._calls):
            out += self._close_call(index)
        incomplete = incomplete_details(str(payload.get("finish_reason") or "stop"))
        usage: Any = payload.get("usage") if isinstance(payload.get("usage"), Mapping) else {}
        prompt, completion = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
        counts = OpenAIResponseUsage(
            input_tokens=prompt,
            output_tokens=completion,
            total_tokens=prompt + completion,
            input_tokens_details={"cached_tokens": int(usage.get("cached_tokens") or 0)},
            output_tokens_details={"reasoning_tokens": int(usage.get("reasoning_tokens") or 0)},
        )
        status: _Status = "completed" if incomplete is None else "incomplete"
        response = self._response(status, incomplete_details=incomplete, usage=msgspec.to_builtins(counts))
        return out + self._emit(f"response.{status}", response=response)

    def error(self, payload: Mapping[str, Any]) -> bytes:
        """The ``error`` event and ``response.failed`` that end a failed stream."""
        problem = stream_error(payload)
        failure = {"code": problem.code or "internal_error", "message": problem.message}
        return self._emit("error", code=problem.code, message=problem.message, param=None) + self._emit(
            "response.failed", response=self._response("failed", error=failure)
        )
