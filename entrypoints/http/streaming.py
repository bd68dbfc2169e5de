"""HTTP boundary: stream delivery over Server-Sent Events and WebSockets.

Both channels send the same message for an event: ``{"type", "seq", "stream_id", ...payload}``. SSE frames it as
``id: <seq>`` / ``event: <type>`` / ``data: <json>``, starts with a ``retry:`` hint, sends a keepalive comment after
``streaming.keepalive_s`` of silence, and ends the response right after the terminal event. Every write has a send
timeout (``streaming.send_timeout_s``): a client that stops reading is cut off instead of pinning the server. A
consumer dropped for lagging gets a final ``disconnect`` message (no ``id``, so ``Last-Event-ID`` still points at the
last event it received) and can resume. Every delivery is counted by the app's ``Drain``, so a shutting-down server
waits for the terminal events to go out before it closes connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import structlog
from attrs import frozen
from dependency_injector.wiring import Provide, inject
from quart import Response, websocket

from domain.errors import ServiceError
from domain.streaming import ConsumerLaggedError, StreamEvent
from domain.types import CustomerId, StreamId
from entrypoints.http.errors import error_payload
from entrypoints.http.shutdown import Drain, current_drain
from services.streaming.manager import StreamingManager

__all__ = [
    "DeliveryOptions",
    "delivery_options",
    "event_message",
    "sse_frame",
    "sse_response",
    "websocket_stream",
]

_log = structlog.get_logger("switchyard.streaming")
_KEEPALIVE: Final = b": keepalive\n\n"


@frozen
class DeliveryOptions:
    """Delivery knobs from ``settings.streaming``."""

    keepalive_s: float = 15.0
    retry_ms: int = 3000
    send_timeout_s: float = 10.0


@inject
def delivery_options(settings: Any = Provide["settings"]) -> DeliveryOptions:
    """The options of the running app (defaults when the module is used outside a wired app)."""
    streaming = getattr(settings, "streaming", None)
    if streaming is None:
        return DeliveryOptions()
    return DeliveryOptions(streaming.keepalive_s, streaming.retry_hint_ms, streaming.send_timeout_s)


def event_message(event: StreamEvent) -> dict[str, Any]:
    """The JSON message for one event (payload keys never override type, seq or stream_id)."""
    return {**event.payload, "type": event.type, "seq": event.seq, "stream_id": event.stream_id}


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), default=str)


def sse_frame(event: StreamEvent) -> bytes:
    """One SSE frame (``data`` is a single line: JSON never contains a raw newline)."""
    return f"id: {event.seq}\nevent: {event.type}\ndata: {_dumps(event_message(event))}\n\n".encode()


def _disconnect(stream_id: StreamId, after: int, error: BaseException) -> dict[str, Any]:
    payload = error_payload(error)
    if isinstance(error, ConsumerLaggedError):
        after = error.after
    return {**payload, "type": "disconnect", "stream_id": stream_id, "resume_after": after}


def _cut_off(task: asyncio.Task[Any] | None, stream_id: StreamId) -> None:
    _log.warning("stream_send_timeout", stream_id=stream_id)
    if task is not None:
        task.cancel()


def _delivering(drain: Drain | None) -> contextlib.AbstractContextManager[None]:
    return drain.delivering() if drain is not None else contextlib.nullcontext()


async def _sse_body(
    manager: StreamingManager,
    stream_id: StreamId,
    owner: CustomerId,
    after: int,
    options: DeliveryOptions,
    drain: Drain | None = None,
) -> AsyncIterator[bytes]:
    # Quart iterates the body in the task that writes to the socket, so cancelling it aborts a stuck write.
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    cursor = after
    with _delivering(drain):
        yield f"retry: {options.retry_ms}\n\n".encode()
        try:
            async for event in manager.watch(stream_id, owner=owner, after=after, idle_s=options.keepalive_s):
                chunk = _KEEPALIVE if event is None else sse_frame(event)
                deadline = loop.call_later(options.send_timeout_s, _cut_off, task, stream_id)
                try:
                    yield chunk
                finally:
                    deadline.cancel()
                if event is not None:
                    cursor = event.seq
        except ServiceError as exc:  # dropped for lagging, or the log became unavailable: say so, then end
            _log.info("stream_consumer_disconnected", stream_id=stream_id, error=exc.code, after=cursor)
            yield f"event: disconnect\ndata: {_dumps(_disconnect(stream_id, cursor, exc))}\n\n".encode()


async def sse_response(
    manager: StreamingManager,
    stream_id: StreamId,
    owner: CustomerId,
    after: int,
    *,
    headers: Mapping[str, str] | None = None,
    options: DeliveryOptions | None = None,
) -> Response:
    """A ``text/event-stream`` response with the stream's events after ``after``, live until the terminal event.

    Raises ``NotFoundError`` (a 404 envelope) before any byte is sent when the stream is unknown, expired or owned
    by someone else.
    """
    await manager.describe(stream_id, owner=owner)
    body = _sse_body(manager, stream_id, owner, after, options or delivery_options(), current_drain())
    response = Response(
        body,
        status=200,
        content_type="text/event-stream; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Stream-ID": stream_id, **(headers or {})},
    )
    response.timeout = None  # a stream has no overall deadline; each write has one
    return response


async def _send(data: Mapping[str, Any], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        await websocket.send(_dumps(data))


async def websocket_stream(
    manager: StreamingManager,
    stream_id: StreamId,
    owner: CustomerId,
    after: int,
    *,
    options: DeliveryOptions | None = None,
) -> int:
    """Send the events of one stream over the current WebSocket until its terminal event; returns the last seq sent.

    Idle periods send ``{"type": "ping"}``. If the stream cannot be (or stops being) delivered, a
    ``{"type": "disconnect", "code", "message", "retryable", "resume_after", ...}`` message says why and the function
    returns; the socket stays open for other streams. A send slower than the send timeout raises ``TimeoutError``.
    """
    opts = options or delivery_options()
    cursor = after
    with _delivering(current_drain()):
        try:
            async for event in manager.watch(stream_id, owner=owner, after=after, idle_s=opts.keepalive_s):
                if event is None:
                    await _send({"type": "ping"}, opts.send_timeout_s)
                    continue
                await _send(event_message(event), opts.send_timeout_s)
                cursor = event.seq
        except ServiceError as exc:
            await _send(_disconnect(stream_id, cursor, exc), opts.send_timeout_s)
    return cursor
