"""Blueprint: streams. SSE events with resume, status, cancel, and the multiplexed WebSocket.

Every route is owner-scoped: another customer's stream answers 404, exactly like an unknown one.
WebSocket protocol (``/api/v1/ws/streams``; ``?stream_id=...&after=N`` subscribes at once):
client -> ``{"type": "resume", "stream_id", "after"}`` (or ``subscribe``), ``{"type": "cancel", "stream_id"}``,
``{"type": "ping"}``; server -> events ``{"type", "seq", "stream_id", ...}``, ``{"type": "pong"}``,
``{"type": "ping"}`` when idle, ``{"type": "disconnect", ...}`` when a subscription ends without its terminal event,
``{"type": "rejected", "request", ...}`` when a command fails. A malformed message closes the socket (4400).
An event with a binary attachment carries ``"data_bytes"`` and ``"data_b64"`` (base64); with ``?binary=1`` it carries
only ``"data_bytes"`` and the next frame on the socket is a binary frame with the raw bytes (any other value than
``0``/``1`` closes the socket with 4422).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final, cast

from attrs import frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Quart, Response, request, websocket
from quart.blueprints import BlueprintSetupState

from domain.errors import MalformedRequestError, ServiceError, ValidationError
from domain.streaming import StreamInfo
from domain.types import CustomerId, StreamId
from entrypoints.http.auth import accept_ticket, current_auth, websocket_auth
from entrypoints.http.envelope import api_ok
from entrypoints.http.errors import error_payload, ws_close_code_for
from entrypoints.http.openapi import documented
from entrypoints.http.routes.tickets import stream_reader
from entrypoints.http.serialization import json_response, read_message
from entrypoints.http.streaming import binary_frames_requested, send_json, sse_response, websocket_stream
from services.streaming.manager import StreamingManager

__all__ = ["StreamView", "blueprint", "parse_cursor"]

blueprint = Blueprint("streams", __name__)
_MAX_CONTROL_BYTES: Final = 64 * 1024


@frozen
class StreamView:
    """A stream's state (never its events: read those from ``/events``)."""

    stream_id: str
    kind: str
    status: str
    last_seq: int
    created_at: float

    @classmethod
    def of(cls, info: StreamInfo) -> StreamView:
        return cls(info.stream_id, info.kind, info.status, info.last_seq, info.created_at)


@frozen
class EventsQuery:
    """Resume point: events after this seq (``Last-Event-ID`` wins when both are given); ``ticket`` from
    ``POST /api/v1/streams/{id}/ticket`` replaces the bearer token (for ``EventSource``)."""

    after: int | None = None
    ticket: str | None = None


def parse_cursor(last_event_id: str | None, after: str | None) -> int:
    """The resume cursor from ``Last-Event-ID`` or ``?after=N`` (0 when neither); 422 when not a seq."""
    for name, raw in (("Last-Event-ID", last_event_id), ("after", after)):
        if raw is None or raw.strip() == "":
            continue
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValidationError(name, "must be a non-negative integer seq") from None
        if value < 0:
            raise ValidationError(name, "must be a non-negative integer seq")
        return value
    return 0


@blueprint.get("/api/v1/streams/<stream_id>/events")
@inject
@documented(
    "Stream events as Server-Sent Events; resume with Last-Event-ID or ?after=N",
    query=EventsQuery,
    streaming=True,
    tags=["streams"],
    errors=(401, 404, 422),
    headers=("Last-Event-ID",),
)
async def stream_events(stream_id: str, manager: StreamingManager = Provide["streaming_manager"]) -> Response:
    after = parse_cursor(request.headers.get("Last-Event-ID"), request.args.get("after"))
    return await sse_response(manager, StreamId(stream_id), stream_reader(StreamId(stream_id)), after)


@blueprint.record_once
def _accept_tickets(state: BlueprintSetupState) -> None:
    accept_ticket(cast(Quart, state.app), "streams.stream_events")  # ?ticket= for EventSource (routes/tickets.py)


@blueprint.get("/api/v1/streams/<stream_id>")
@inject
@documented("A stream's status", response=StreamView, tags=["streams"], errors=(401, 404))
async def stream_status(stream_id: str, manager: StreamingManager = Provide["streaming_manager"]) -> Response:
    info = await manager.describe(StreamId(stream_id), owner=current_auth().customer_id)
    return json_response(api_ok(StreamView.of(info)))


@blueprint.post("/api/v1/streams/<stream_id>/cancel")
@inject
@documented(
    "Cancel a stream: stops the upstream work, ends it with `cancelled` (a no-op once ended)",
    response=StreamView,
    tags=["streams"],
    errors=(401, 404),
)
async def cancel_stream(stream_id: str, manager: StreamingManager = Provide["streaming_manager"]) -> Response:
    owner = current_auth().customer_id
    await manager.cancel(StreamId(stream_id), owner=owner, reason="client")
    info = await manager.describe(StreamId(stream_id), owner=owner)
    return json_response(api_ok(StreamView.of(info)))


async def _close(error: ServiceError) -> None:
    with contextlib.suppress(Exception):
        await websocket.accept()
        await websocket.close(ws_close_code_for(error), error.message[:120])


def _command(raw: str | bytes) -> dict[str, Any]:
    message = read_message(raw, max_bytes=_MAX_CONTROL_BYTES)  # size, JSON, nesting depth: as every body
    if not isinstance(message.get("type"), str):
        raise MalformedRequestError("WebSocket messages must be JSON objects with a string `type`")
    return message


def _stream_id(message: dict[str, Any]) -> StreamId:
    value = message.get("stream_id")
    if not isinstance(value, str) or not value:
        raise MalformedRequestError("`stream_id` must be a non-empty string")
    return StreamId(value)


def _after(message: dict[str, Any]) -> int:
    value = message.get("after", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedRequestError("`after` must be a non-negative integer")
    return value


class _Session:
    """One socket: a delivery task per subscribed stream."""

    def __init__(self, manager: StreamingManager, owner: CustomerId, *, binary: bool = False) -> None:
        self.manager = manager
        self.owner = owner
        self.binary = binary
        self.deliveries: dict[StreamId, asyncio.Task[int]] = {}

    def subscribe(self, stream_id: StreamId, after: int) -> None:
        previous = self.deliveries.pop(stream_id, None)
        if previous is not None:
            previous.cancel()
        delivery = websocket_stream(self.manager, stream_id, self.owner, after, binary=self.binary)
        task = asyncio.ensure_future(delivery)
        self.deliveries[stream_id] = task
        task.add_done_callback(lambda done: self._finished(stream_id, done))

    def _finished(self, stream_id: StreamId, task: asyncio.Task[int]) -> None:
        if self.deliveries.get(stream_id) is task:
            del self.deliveries[stream_id]

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "ping":
            await send_json({"type": "pong"})
        elif kind == "pong":
            return
        elif kind in ("resume", "subscribe"):
            self.subscribe(_stream_id(message), _after(message))
        elif kind == "cancel":
            stream_id = _stream_id(message)
            try:
                await self.manager.cancel(stream_id, owner=self.owner, reason="client")
            except ServiceError as exc:
                reply = {**error_payload(exc), "type": "rejected", "request": kind, "stream_id": stream_id}
                await send_json(reply)
        else:
            raise MalformedRequestError(f"unknown message type {kind!r}")

    async def close(self) -> None:
        tasks = list(self.deliveries.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@blueprint.websocket("/api/v1/ws/streams")
@inject
@documented("Streams over one WebSocket: resume, cancel, ping/pong", tags=["streams"], errors=(401, 404))
async def streams_socket(manager: StreamingManager = Provide["streaming_manager"]) -> None:
    try:
        caller = await websocket_auth()
        binary = binary_frames_requested()
    except ServiceError as exc:
        await _close(exc)
        return
    await websocket.accept()
    session = _Session(manager, caller.customer_id, binary=binary)
    try:
        first = websocket.args.get("stream_id")
        if first:
            session.subscribe(StreamId(first), parse_cursor(None, websocket.args.get("after")))
        while True:
            await session.handle(_command(await websocket.receive()))
    except ServiceError as exc:
        await _close(exc)
    finally:
        await session.close()
