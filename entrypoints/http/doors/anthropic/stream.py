"""HTTP boundary, Anthropic door: a Switchyard chat stream told as Anthropic's named SSE events.

``message_start`` and a ``ping``, then for each content block ``content_block_start``, its ``content_block_delta``s
(``text_delta`` or ``input_json_delta``) and ``content_block_stop``, then ``message_delta`` (stop reason, usage) and
``message_stop``; ``ping`` whenever the stream is idle; a failure is ``event: error`` with Anthropic's error body.
The ``event:`` line is what Anthropic's SDKs dispatch on (without it they skip the event and report empty text).

Anthropic's blocks come one at a time, each closed before the next opens; a Switchyard stream may interleave the
argument deltas of parallel tool calls. ``BlockSequencer`` keeps the wire sequential: the block on the wire streams
live, blocks that begin meanwhile wait (buffered) and are sent whole, in order, once it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final, Literal, cast, get_args

import structlog
from attrs import define, field

from domain.chat import FinishReason, Usage
from domain.errors import ServiceError
from domain.streaming import StreamEvent
from domain.types import JsonValue, StreamId
from entrypoints.http.doors.anthropic.errors import stream_failure
from entrypoints.http.doors.anthropic.translate import stop_reason, wire_usage
from entrypoints.http.doors.anthropic.wire import AnthropicMessage, AnthropicUsage, dump
from entrypoints.http.errors import error_payload
from entrypoints.http.shutdown import Drain
from entrypoints.http.streaming import DeliveryOptions

__all__ = ["BlockSequencer", "Frame", "MessageEvents", "sse_body"]

Frame = tuple[str, dict[str, Any]]
"""One Anthropic SSE event: its name and its data."""

_PING: Final[Frame] = ("ping", {"type": "ping"})
_log = structlog.get_logger("switchyard.streaming")


@define
class _Block:
    kind: Literal["text", "tool_use"]
    key: int | None  # the Switchyard tool call index (None for text)
    opening: dict[str, Any]
    deltas: list[dict[str, Any]] = field(factory=list)
    ended: bool = False
    index: int | None = None  # Anthropic's block index, once on the wire


class BlockSequencer:
    """Text and tool-call events in, Anthropic content-block events out, one block open at a time."""

    def __init__(self) -> None:
        self._queue: list[_Block] = []  # the head is on the wire; the rest wait their turn
        self._next_index = 0

    def text(self, text: str) -> list[Frame]:
        last = self._queue[-1] if self._queue else None
        if last is not None and last.kind == "text" and not last.ended:
            return self._delta(last, {"type": "text_delta", "text": text})
        block = _Block("text", None, {"type": "text", "text": ""}, [{"type": "text_delta", "text": text}])
        return self._append(block)

    def tool_start(self, key: int, call_id: str, name: str) -> list[Frame]:
        opening = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        return self._append(_Block("tool_use", key, opening))

    def tool_delta(self, key: int, call_id: str, arguments: str) -> list[Frame]:
        delta = {"type": "input_json_delta", "partial_json": arguments}
        block = self._tool(key)
        if block is None:  # arguments without a start: open the call here rather than lose them
            return self.tool_start(key, call_id, "") + self.tool_delta(key, call_id, arguments)
        return self._delta(block, delta)

    def tool_end(self, key: int) -> list[Frame]:
        block = self._tool(key)
        if block is None:
            return []
        block.ended = True
        return self._advance()

    def close(self) -> list[Frame]:
        """End every block (the message is over): waiting blocks go out whole."""
        for block in self._queue:
            block.ended = True
        return self._advance()

    def _tool(self, key: int) -> _Block | None:
        return next((b for b in reversed(self._queue) if b.kind == "tool_use" and b.key == key and not b.ended), None)

    def _append(self, block: _Block) -> list[Frame]:
        if self._queue and self._queue[-1].kind == "text":
            self._queue[-1].ended = True  # text followed by anything else is a finished block
        self._queue.append(block)
        frames = self._start(block) if len(self._queue) == 1 else []
        return frames + self._advance()

    def _delta(self, block: _Block, delta: dict[str, Any]) -> list[Frame]:
        if block.index is None:
            block.deltas.append(delta)
            return []
        return [("content_block_delta", {"type": "content_block_delta", "index": block.index, "delta": delta})]

    def _start(self, block: _Block) -> list[Frame]:
        block.index, self._next_index = self._next_index, self._next_index + 1
        start = {"type": "content_block_start", "index": block.index, "content_block": block.opening}
        frames: list[Frame] = [("content_block_start", start)]
        for delta in block.deltas:
            frames.append(
                ("content_block_delta", {"type": "content_block_delta", "index": block.index, "delta": delta})
            )
        block.deltas.clear()
        return frames

    def _advance(self) -> list[Frame]:
        frames: list[Frame] = []
        while self._queue and self._queue[0].ended:
            done = self._queue.pop(0)
            frames.append(("content_block_stop", {"type": "content_block_stop", "index": done.index}))
            if self._queue:
                frames.extend(self._start(self._queue[0]))
        return frames


class MessageEvents:
    """Translates one chat stream's events, in order, into Anthropic's events for the message ``message_id``.

    ``message_start`` names the serving model (from the stream's ``start``), or ``model`` when the stream must be
    opened before the vendor said anything; errors name ``request_id`` (the body is sent after the request's
    context is gone)."""

    def __init__(self, message_id: str, model: str, request_id: str | None = None) -> None:
        self._id = message_id
        self._model = model
        self.request_id = request_id
        self._blocks = BlockSequencer()
        self._started = False

    def frames(self, event: StreamEvent | None) -> list[Frame]:
        """The frames for ``event``; ``None`` (the stream is idle) is a ``ping``."""
        if event is None:
            return self._start({}) or [_PING]
        payload = event.payload
        kind = event.type
        if kind == "start":
            return self._start(payload)
        if kind == "text":
            return self._blocks.text(str(payload.get("text", "")))
        if kind == "tool_call":
            return self._tool_call(payload)
        if kind == "done":
            return self._done(payload)
        if kind in ("error", "cancelled", "gap"):
            return [("error", stream_failure(kind, payload, self.request_id)[1])]
        return []  # reasoning (no thinking was asked for), usage (the total comes with done), other modalities

    def _start(self, payload: Mapping[str, JsonValue]) -> list[Frame]:
        if self._started:
            return []
        self._started = True
        model = str(payload.get("model") or self._model)
        message = AnthropicMessage(id=self._id, model=model, content=[], stop_reason=None, usage=AnthropicUsage(0, 0))
        return [("message_start", {"type": "message_start", "message": dump(message)}), _PING]

    def _tool_call(self, payload: Mapping[str, JsonValue]) -> list[Frame]:
        index = _int(payload.get("index"))
        call_id = str(payload.get("id") or "")
        phase = payload.get("phase")
        if phase == "start":
            return self._blocks.tool_start(index, call_id, str(payload.get("name") or ""))
        if phase == "delta":
            return self._blocks.tool_delta(index, call_id, str(payload.get("arguments") or ""))
        if phase == "end":
            return self._blocks.tool_end(index)
        return []

    def _done(self, payload: Mapping[str, JsonValue]) -> list[Frame]:
        frames = self._start(payload) + self._blocks.close()
        raw = payload.get("finish_reason")
        finish = cast(FinishReason, raw) if raw in get_args(FinishReason) else "stop"
        usage = payload.get("usage")
        counts = usage if isinstance(usage, dict) else {}
        wire = wire_usage(_usage(counts))
        delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": stop_reason(finish, tool_calls=_int(payload.get("tool_calls")) > 0),
                "stop_sequence": None,
            },
            "usage": dump(wire),
        }
        return [*frames, ("message_delta", delta), ("message_stop", {"type": "message_stop"})]


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage(counts: Mapping[str, JsonValue]) -> Usage:
    return Usage(
        _int(counts.get("input_tokens")),
        _int(counts.get("output_tokens")),
        _int(counts.get("cached_tokens")),
        _int(counts.get("reasoning_tokens")),
    )


def _encode(frames: list[Frame]) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode() for name, data in frames
    )


def _cut_off(task: asyncio.Task[Any] | None, stream_id: StreamId) -> None:
    _log.warning("stream_send_timeout", stream_id=stream_id, door="anthropic")
    if task is not None:
        task.cancel()


async def sse_body(
    events: AsyncIterator[StreamEvent | None],
    first: StreamEvent | None,
    translator: MessageEvents,
    stream_id: StreamId,
    options: DeliveryOptions,
    drain: Drain | None,
) -> AsyncIterator[bytes]:
    """The response body: ``first`` (already read by the route, which answers a failure before any output as an
    HTTP error; ``None`` when the vendor is slow to begin), then the rest of ``events`` until the terminal one. Like
    the native SSE delivery, every write has the send timeout, idle spells send a ping, and the app's drain counts
    the delivery; ``events`` is closed however the body ends."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    with drain.delivering() if drain is not None else contextlib.nullcontext():
        try:
            pending = first
            iterator = aiter(events)
            while True:
                chunk = _encode(translator.frames(pending))
                if chunk:
                    deadline = loop.call_later(options.send_timeout_s, _cut_off, task, stream_id)
                    try:
                        yield chunk
                    finally:
                        deadline.cancel()
                if pending is not None and pending.terminal:
                    return
                try:
                    pending = await anext(iterator)
                except StopAsyncIteration:
                    return
        except ServiceError as exc:  # dropped for lagging, or the log became unavailable: say so, then end
            _log.info("stream_consumer_disconnected", stream_id=stream_id, error=exc.code, door="anthropic")
            yield _encode([("error", stream_failure("error", error_payload(exc), translator.request_id)[1])])
        finally:
            closing = getattr(events, "aclose", None)
            if closing is not None:
                await closing()
