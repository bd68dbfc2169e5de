"""Blueprint: ``POST /api/v1/chat`` (an envelope, or an SSE stream with ``stream: true``) and ``WS /api/v1/ws/chat``.

The body is ``domain.chat.ChatRequest``, structured strictly (a misspelt field is a 422 naming it); the service
checks the rules types cannot express. Streams run in the StreamingManager, so they survive the client and can be
resumed; the stream id is in ``X-Stream-ID`` and in the ``start`` event.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response, current_app, g, websocket

from domain.chat import ChatRequest, ProviderResponse
from domain.errors import ServiceError, ValidationError
from domain.types import CustomerId, JsonValue, StreamId
from entrypoints.http.auth import current_auth, websocket_auth
from entrypoints.http.envelope import api_ok
from entrypoints.http.errors import error_payload
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import json_response, read_body, read_message, structure
from entrypoints.http.streaming import send_json, sse_response, websocket_stream
from services.chat import ChatCaller, ChatService

__all__ = ["STREAM_ID_HEADER", "blueprint", "caller", "chat_socket"]

blueprint = Blueprint("chat", __name__)
STREAM_ID_HEADER: Final = "X-Stream-ID"
_CHAT_ERRORS: Final = (400, 401, 404, 413, 415, 422, 429, 502, 503, 504)


def caller(customer_id: CustomerId) -> ChatCaller:
    """The chat caller for the current request or WebSocket."""
    return ChatCaller(customer_id, str(getattr(g, "request_id", "") or ""))


def _max_body() -> int:
    limit: Any = current_app.config.get("MAX_CONTENT_LENGTH")
    return int(limit or 1024 * 1024)


@blueprint.post("/api/v1/chat")
@inject
@documented(
    "Chat with a model: the whole answer, or an SSE stream of events with stream=true",
    request=ChatRequest,
    response=ProviderResponse,
    tags=["chat"],
    errors=_CHAT_ERRORS,
    streaming=True,
    description=(
        "With `stream: true` the answer is `text/event-stream`: `start` (stream id, serving model), then `text`, "
        "`reasoning`, `tool_call` (phase start/delta/end), `usage`, and exactly one of `done`, `error`, "
        "`cancelled`. The stream id is also in the `X-Stream-ID` header. `meta.extra` of the envelope says which "
        "model and provider served, retries and the fallback used."
    ),
)
async def chat(service: ChatService = Provide["chat_service"]) -> Response:
    body = await read_body(ChatRequest, max_bytes=_max_body())
    who = caller(current_auth().customer_id)
    if body.stream:
        return await _stream(service, body, who)
    result = await service.complete(body, who)
    return json_response(api_ok(result.response, extra=result.meta))


async def _stream(service: ChatService, body: ChatRequest, who: ChatCaller) -> Response:
    stream_id = await service.start_stream(body, who)
    return await sse_response(service.streams, stream_id, who.customer_id, 0, headers={STREAM_ID_HEADER: stream_id})


# --- WS /api/v1/ws/chat: several chat streams over one socket -------------------------------------------------------


class _ChatSocket:
    """One WebSocket: each chat message starts its own stream, delivered by its own task.

    In: a ``ChatRequest`` object, ``{"type": "chat", "id": <ref>, "request": {...}}``, or
    ``{"type": "cancel", "stream_id": ...}``. Out: ``{"type": "accepted", "ref", "stream_id"}`` first, then that
    stream's events exactly as SSE carries them (``{"type", "seq", "stream_id", ...payload}``, pings, ``disconnect``).
    A message that cannot be served gets a reply ``{"type": "error", "ref", "stream_id": null, "payload": {"code",
    "message", "retryable", "status"}}`` (nested, unlike a stream's own flat ``error`` event, which has a ``seq``)
    and the socket stays open. Closing the socket stops delivery only: the streams run on in the manager and can be
    resumed.
    """

    def __init__(self, service: ChatService, owner: CustomerId, max_bytes: int, max_depth: int) -> None:
        self._service = service
        self._owner = owner
        self._max_bytes = max_bytes
        self._max_depth = max_depth
        self._deliveries: set[asyncio.Task[int]] = set()

    async def serve(self) -> None:
        try:
            while True:
                await self._handle(await websocket.receive())
        finally:
            for task in self._deliveries:
                task.cancel()
            await asyncio.gather(*self._deliveries, return_exceptions=True)

    async def _handle(self, raw: str | bytes) -> None:
        ref: JsonValue = None
        try:
            message = read_message(raw, max_bytes=self._max_bytes, max_depth=self._max_depth)
            ref = message.get("id") if isinstance(message.get("id"), str | int) else None
            kind = message.get("type")
            if kind == "cancel":
                stream_id = message.get("stream_id")
                if not isinstance(stream_id, str):
                    raise ValidationError("stream_id", "a cancel message names the stream_id to cancel")
                await self._service.streams.cancel(StreamId(stream_id), owner=self._owner)
                return
            if kind not in (None, "chat"):
                raise ValidationError("type", "expected 'chat' or 'cancel' (or a bare chat request)")
            body = message.get("request", {}) if kind == "chat" else message
            stream_id = await self._service.start_stream(structure(body, ChatRequest), caller(self._owner))
            await send_json({"type": "accepted", "ref": ref, "stream_id": stream_id})
            task = asyncio.create_task(
                websocket_stream(self._service.streams, stream_id, self._owner, 0), name=f"ws-chat:{stream_id}"
            )
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        except ServiceError as exc:
            rejected = {"type": "error", "ref": ref, "stream_id": None, "payload": error_payload(exc)}
            await send_json(rejected)


@blueprint.websocket("/api/v1/ws/chat")
@inject
@documented(
    "Chat over a WebSocket: send chat requests, receive each one's stream events (several streams per socket)",
    tags=["chat"],
)
async def chat_socket(
    service: ChatService = Provide["chat_service"],
    max_bytes: int = Provide["settings.provided.limits.max_ws_message_bytes"],
    max_depth: int = Provide["settings.provided.limits.max_json_depth"],
) -> None:
    auth = await websocket_auth()
    await _ChatSocket(service, auth.customer_id, int(max_bytes), int(max_depth)).serve()
