"""HTTP boundary (OpenAI door): delivering a Switchyard stream as SSE written by a door's frame writer.

The door's streams are Switchyard streams: this reads one through ``StreamingManager.watch`` and hands each event to
a writer (``chunks.ChunkWriter`` for Chat Completions, ``responses_stream.ResponseEventWriter`` for Responses) that
turns it into the vendor's SSE lines. Delivery keeps the native SSE's guarantees (``entrypoints/http/streaming``):
a keepalive comment after ``streaming.keepalive_s`` of silence, a send timeout on every write, and the app's
``Drain`` counts the delivery so a stopping server sends the end first. A reader the manager drops (lagging, log
unavailable) gets the writer's error line, then the end of the response.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final, Protocol

import structlog
from quart import Response

from domain.errors import ServiceError
from domain.streaming import StreamEvent
from domain.types import CustomerId, StreamId
from entrypoints.http.shutdown import current_drain
from entrypoints.http.streaming import DeliveryOptions, delivery_options
from services.streaming.manager import StreamingManager

__all__ = ["FrameWriter", "door_stream_response"]

_log = structlog.get_logger("switchyard.streaming")
_KEEPALIVE: Final = b": keepalive\n\n"
_STREAM_ID_HEADER: Final = "X-Stream-ID"


class FrameWriter(Protocol):
    """Turns a stream's events into a vendor's SSE bytes."""

    def frames(self, event: StreamEvent) -> bytes:
        """The bytes for ``event`` (``b""``: nothing to send)."""
        ...

    def error(self, payload: Mapping[str, Any]) -> bytes:
        """The bytes that end a stream failing with ``payload`` (``{code, message}``)."""
        ...


def _cut_off(task: asyncio.Task[Any] | None, stream_id: StreamId) -> None:
    _log.warning("stream_send_timeout", stream_id=stream_id)
    if task is not None:
        task.cancel()


async def _body(
    manager: StreamingManager, stream_id: StreamId, owner: CustomerId, writer: FrameWriter, options: DeliveryOptions
) -> AsyncIterator[bytes]:
    # Quart iterates the body in the task that writes to the socket, so cancelling it aborts a stuck write.
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    drain = current_drain()
    with drain.delivering() if drain is not None else contextlib.nullcontext():
        try:
            async for event in manager.watch(stream_id, owner=owner, idle_s=options.keepalive_s):
                chunk = _KEEPALIVE if event is None else writer.frames(event)
                if not chunk:
                    continue
                deadline = loop.call_later(options.send_timeout_s, _cut_off, task, stream_id)
                try:
                    yield chunk
                finally:
                    deadline.cancel()
        except ServiceError as exc:  # dropped for lagging, or the log became unavailable: say so, then end
            _log.info("stream_consumer_disconnected", stream_id=stream_id, error=exc.code)
            yield writer.error({"code": exc.code, "message": exc.message})


def door_stream_response(
    manager: StreamingManager, stream_id: StreamId, owner: CustomerId, writer: FrameWriter
) -> Response:
    """A ``text/event-stream`` response delivering stream ``stream_id`` through ``writer``, live until its end."""
    response = Response(
        _body(manager, stream_id, owner, writer, delivery_options()),
        status=200,
        content_type="text/event-stream; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", _STREAM_ID_HEADER: stream_id},
    )
    response.timeout = None  # a stream has no overall deadline; each write has one
    return response
