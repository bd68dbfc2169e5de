"""Blueprint: the Anthropic Messages API, ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

A thin door onto the same ``ChatService`` as ``/api/v1/chat``: the body is translated to a ``ChatRequest``, the
answer back into a Message or Anthropic's SSE events. A streamed answer is still a Switchyard stream (id in
``X-Stream-ID``, resumable and cancellable through ``/api/v1/streams``). The key is a Switchyard token, sent as
``Authorization: Bearer`` (what Anthropic's SDK sends for ``api_key`` and ``auth_token`` alike) or as ``x-api-key``
(what Anthropic's API documents, and curl users and older clients send). ``anthropic-version`` is required, as
Anthropic's API requires it; any value is accepted (the shape served is the one current SDKs speak).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from typing import Any, Final

from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Quart, Response, current_app, request
from quart.blueprints import BlueprintSetupState

from domain.chat import ChatRequest
from domain.errors import ValidationError
from entrypoints.http.auth import accept_key_header, authenticate_request, current_auth
from entrypoints.http.doors.anthropic.errors import (
    REQUEST_ID_HEADER,
    current_request_id,
    install_error_handlers,
    stream_failure,
)
from entrypoints.http.doors.anthropic.stream import MessageEvents, sse_body
from entrypoints.http.doors.anthropic.translate import chat_request, message_response
from entrypoints.http.doors.anthropic.wire import (
    AnthropicCountTokensRequest,
    AnthropicError,
    AnthropicMessage,
    AnthropicMessagesRequest,
    AnthropicTokenCount,
    dump,
    read,
)
from entrypoints.http.openapi import WireFormat, documented
from entrypoints.http.routes.chat import STREAM_ID_HEADER, caller
from entrypoints.http.serialization import json_response, read_body
from entrypoints.http.shutdown import current_drain
from entrypoints.http.streaming import delivery_options
from ports.tokens import TokenCounter
from services.chat import ChatCaller, ChatService
from services.chat_billing import count_request

__all__ = ["API_KEY_HEADER", "MESSAGES_PATH", "VERSION_HEADER", "blueprint"]

MESSAGES_PATH: Final = "/v1/messages"
API_KEY_HEADER: Final = "x-api-key"
VERSION_HEADER: Final = "anthropic-version"
_ERRORS: Final = (400, 401, 403, 404, 413, 429, 500, 502, 504, 529)

blueprint = Blueprint("anthropic", __name__)
install_error_handlers(blueprint)


@blueprint.record_once
def _accept_api_key(state: BlueprintSetupState) -> None:
    app = state.app
    assert isinstance(app, Quart)
    accept_key_header(app, MESSAGES_PATH, API_KEY_HEADER)


@blueprint.before_request
async def _check_headers() -> None:
    await authenticate_request()  # done already where the app guards /v1/; a no-op then
    if not request.headers.get(VERSION_HEADER, "").strip():
        raise ValidationError(VERSION_HEADER, "header is required")


def _max_body() -> int:
    limit: Any = current_app.config.get("MAX_CONTENT_LENGTH")
    return int(limit or 1024 * 1024)


def _headers(**extra: str) -> dict[str, str]:
    request_id = current_request_id()
    return {REQUEST_ID_HEADER: request_id, **extra} if request_id else dict(extra)


@blueprint.post(MESSAGES_PATH)
@inject
@documented(
    "Anthropic Messages API: a Message, or Anthropic's SSE events with stream=true (any model Switchyard serves)",
    request=AnthropicMessagesRequest,
    response=AnthropicMessage,
    tags=["anthropic"],
    errors=_ERRORS,
    streaming=True,
    headers=(VERSION_HEADER, API_KEY_HEADER),
    wire=WireFormat(AnthropicError),
    description=(
        "Anthropic's `POST /v1/messages`, for Anthropic's SDKs (`base_url` = this server, no `/v1`). `model` is a "
        "Switchyard name. Unknown fields are ignored; a field of the wrong type is a 400 naming it. Errors are "
        "Anthropic's `{type: error, error: {type, message}}`. With `stream: true`: `message_start`, "
        "`content_block_start`/`_delta`/`_stop`, `message_delta`, `message_stop`, `ping`, and `error` on failure; "
        "the stream id is in `X-Stream-ID`."
    ),
)
async def messages(service: ChatService = Provide["chat_service"]) -> Response:
    body = read(await read_body(Any, max_bytes=_max_body()), AnthropicMessagesRequest)
    chat = chat_request(body)
    who = caller(current_auth().customer_id)
    if body.stream:
        return await _stream(service, chat, who)
    result = await service.complete(chat, who)
    message = message_response(result.response, f"msg_{uuid.uuid4().hex}")
    return json_response(dump(message), headers=_headers())


async def _stream(service: ChatService, chat: ChatRequest, who: ChatCaller) -> Response:
    stream_id = await service.start_stream(chat, who)
    options = delivery_options()
    events = service.streams.watch(stream_id, owner=who.customer_id, idle_s=options.keepalive_s)
    try:
        # The first event (or, when the vendor is slow to begin, a first idle tick after keepalive_s).
        first = await anext(aiter(events))
    except BaseException:
        await _close(events)
        raise
    headers = _headers(**{STREAM_ID_HEADER: stream_id})
    if first is not None and first.terminal and first.type != "done":
        # Nothing was said yet: answer as Anthropic's API does before a stream begins, with an HTTP error (the SDK
        # raises its class, and retries what may be retried).
        await _close(events)
        status, failure = stream_failure(first.type, first.payload)
        retry_after = first.payload.get("retry_after")
        if isinstance(retry_after, int | float):
            headers["retry-after"] = str(max(0, math.ceil(retry_after)))
        return json_response(failure, status=status, headers=headers)
    translator = MessageEvents(f"msg_{stream_id}", chat.model, current_request_id())
    body = sse_body(events, first, translator, stream_id, options, current_drain())
    response = Response(
        body,
        status=200,
        content_type="text/event-stream; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers},
    )
    response.timeout = None  # a stream has no overall deadline; each write has one
    return response


async def _close(events: AsyncIterator[object]) -> None:
    closing = getattr(events, "aclose", None)  # watch() is an async generator: release its reader now
    if closing is not None:
        await closing()


@blueprint.post(f"{MESSAGES_PATH}/count_tokens")
@inject
@documented(
    "Anthropic Messages API: estimate a message's input tokens",
    request=AnthropicCountTokensRequest,
    response=AnthropicTokenCount,
    tags=["anthropic"],
    errors=(400, 401, 404, 413, 500),
    headers=(VERSION_HEADER, API_KEY_HEADER),
    wire=WireFormat(AnthropicError),
    description=(
        "The model must exist and serve what the request uses (tools, images ...). The count is the gateway's "
        "tiktoken estimate, which for most vendors approximates their own tokenizer."
    ),
)
async def count_tokens(
    service: ChatService = Provide["chat_service"], counter: TokenCounter = Provide["token_counter"]
) -> Response:
    chat = chat_request(read(await read_body(Any, max_bytes=_max_body()), AnthropicCountTokensRequest))
    service.plan(chat)  # 404 for an unknown model, 400 for what it cannot serve: as a message would be refused
    # A body may be 1 MB of text (~0.1 s to count): off the event loop.
    tokens = await asyncio.to_thread(count_request, counter, chat)
    return json_response(dump(AnthropicTokenCount(tokens)), headers=_headers())
