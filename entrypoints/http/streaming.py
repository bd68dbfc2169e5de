"""HTTP boundary: stream delivery over Server-Sent Events and WebSockets.

Both channels send the same message for an event: ``{"type", "seq", "stream_id", ...payload}``. SSE frames it as
``id: <seq>`` / ``event: <type>`` / ``data: <json>``, puts a ``retry:`` hint in its first frame, sends a keepalive
comment after ``streaming.keepalive_s`` of silence, and ends the response right after the terminal event. Every write
has a send timeout (``streaming.send_timeout_s``): a client that stops reading is cut off instead of pinning the server.
A consumer dropped for lagging gets a final ``disconnect`` message (no ``id``, so ``Last-Event-ID`` still points at the
last event it received) and can resume. Every delivery is counted by the app's ``Drain``, so a shutting-down server
waits for the terminal events to go out before it closes connections.

An event's binary attachment (``StreamEvent.data``) travels as ``"data_bytes": <length>`` in the message plus, on SSE
and for WebSocket clients that did not opt in, ``"data_b64"``: the bytes in standard base64. A WebSocket client that
connects with ``?binary=1`` gets no ``data_b64``: the JSON frame is followed at once by ONE binary frame holding the
raw bytes. A per-socket lock keeps that pair together when several streams share the socket, so every other sender
on a socket that may carry binary frames goes through ``send_json``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import structlog
from attrs import frozen
from dependency_injector.wiring import Provide, inject
from quart import Response, websocket
from quart.globals import websocket_ctx

from domain.errors import ServiceError, ValidationError
from domain.streaming import ConsumerLaggedError, StreamEvent
from domain.types import CustomerId, StreamId
from entrypoints.http.errors import error_payload
from entrypoints.http.shutdown import Drain, current_drain
from services.streaming.manager import StreamingManager
from settings import Settings

__all__ = [
    "DeliveryOptions",
    "binary_frames_requested",
    "delivery_options",
    "event_message",
    "send_json",
    "sse_frame",
    "sse_response",
    "websocket_stream",
]

_log = structlog.get_logger("switchyard.streaming")
_KEEPALIVE: Final = b": keepalive\n\n"
_ATTACHMENT_KEYS: Final = ("data_bytes", "data_b64")
"""Message keys that describe the attachment: never taken from a payload (a client would wait for bytes)."""
_BINARY_QUERY: Final = {"": False, "0": False, "false": False, "1": True, "true": True}
_SEND_LOCKS: weakref.WeakKeyDictionary[object, asyncio.Lock] = weakref.WeakKeyDictionary()


@frozen
class DeliveryOptions:
    """Delivery knobs from ``settings.streaming``."""

    keepalive_s: float = 15.0
    retry_ms: int = 3000
    send_timeout_s: float = 10.0


@inject
def delivery_options(settings: Settings = Provide["settings"]) -> DeliveryOptions:
    """The options of the running app (defaults when the module is used outside a wired app, where ``settings`` is
    still the unresolved ``Provide`` marker)."""
    if not isinstance(settings, Settings):
        return DeliveryOptions()
    streaming = settings.streaming
    return DeliveryOptions(streaming.keepalive_s, streaming.retry_hint_ms, streaming.send_timeout_s)


def event_message(event: StreamEvent, *, binary: bool = False) -> dict[str, Any]:
    """The JSON message for one event (payload keys never override type, seq, stream_id or the attachment keys).

    An attachment adds ``data_bytes`` (its length) and, unless its bytes follow in a binary frame (``binary``),
    ``data_b64`` (standard base64 with padding).
    """
    message = {key: value for key, value in event.payload.items() if key not in _ATTACHMENT_KEYS}
    message.update(type=event.type, seq=event.seq, stream_id=event.stream_id)
    if event.data is not None:
        message["data_bytes"] = len(event.data)
        if not binary:
            message["data_b64"] = base64.b64encode(event.data).decode("ascii")
    return message


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
    # The hint rides in the first real frame: a frame of its own is an event without data to SSE client libraries
    # (httpx-sse yields it, and the usual `sse.json()` loop raises on it).
    retry = f"retry: {options.retry_ms}\n".encode()
    with _delivering(drain):
        try:
            async for event in manager.watch(stream_id, owner=owner, after=after, idle_s=options.keepalive_s):
                chunk = _KEEPALIVE if event is None else retry + sse_frame(event)
                if event is not None:
                    retry = b""
                deadline = loop.call_later(options.send_timeout_s, _cut_off, task, stream_id)
                try:
                    yield chunk
                finally:
                    deadline.cancel()
                if event is not None:
                    cursor = event.seq
        except ServiceError as exc:  # dropped for lagging, or the log became unavailable: say so, then end
            _log.info("stream_consumer_disconnected", stream_id=stream_id, error=exc.code, after=cursor)
            yield retry + f"event: disconnect\ndata: {_dumps(_disconnect(stream_id, cursor, exc))}\n\n".encode()


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


def binary_frames_requested() -> bool:
    """Whether the current WebSocket asked for attachments as binary frames (``?binary=1``; ``0``/absent: base64).

    Any other value is a ``ValidationError`` naming ``binary``.
    """
    raw = websocket.args.get("binary", "").strip().lower()
    if raw not in _BINARY_QUERY:
        raise ValidationError("binary", "must be 1 (attachments as binary frames) or 0 (base64 in the JSON)")
    return _BINARY_QUERY[raw]


def _socket_lock() -> asyncio.Lock:
    """The current socket's send lock (one per socket, gone with it)."""
    socket = websocket_ctx.websocket  # not the `websocket` proxy: it is one object for every socket
    lock = _SEND_LOCKS.get(socket)
    if lock is None:
        lock = _SEND_LOCKS[socket] = asyncio.Lock()
    return lock


async def send_json(message: Mapping[str, Any], timeout_s: float | None = None) -> None:
    """Send one JSON message on the current WebSocket, never between an event's JSON frame and its binary frame."""
    async with asyncio.timeout(timeout_s), _socket_lock():
        await websocket.send(_dumps(message))


async def _send_event(message: Mapping[str, Any], data: bytes | None, timeout_s: float) -> None:
    """The event's JSON frame and, when ``data`` is given, its binary frame right after it (one deadline for both)."""
    async with asyncio.timeout(timeout_s), _socket_lock():
        await websocket.send(_dumps(message))
        if data is not None:
            await websocket.send(data)


async def websocket_stream(
    manager: StreamingManager,
    stream_id: StreamId,
    owner: CustomerId,
    after: int,
    *,
    options: DeliveryOptions | None = None,
    binary: bool | None = None,
) -> int:
    """Send the events of one stream over the current WebSocket until its terminal event; returns the last seq sent.

    Idle periods send ``{"type": "ping"}``. If the stream cannot be (or stops being) delivered, a
    ``{"type": "disconnect", "code", "message", "retryable", "resume_after", ...}`` message says why and the function
    returns; the socket stays open for other streams. A send slower than the send timeout raises ``TimeoutError``.
    ``binary``: attachments as binary frames (``None``: as the socket's ``?binary=`` query says).
    """
    opts = options or delivery_options()
    cursor = after
    with _delivering(current_drain()):
        try:
            frames = binary_frames_requested() if binary is None else binary
            async for event in manager.watch(stream_id, owner=owner, after=after, idle_s=opts.keepalive_s):
                if event is None:
                    await send_json({"type": "ping"}, opts.send_timeout_s)
                    continue
                raw = event.data if frames else None
                await _send_event(event_message(event, binary=frames), raw, opts.send_timeout_s)
                cursor = event.seq
        except ServiceError as exc:
            await send_json(_disconnect(stream_id, cursor, exc), opts.send_timeout_s)
    return cursor
