"""Blueprint: ``POST /api/v1/audio/speech``, the audio itself streamed as the vendor produces it, and
``GET /api/v1/voices?model=``, the voices a text-to-speech model offers.

The speech body is ``domain.speech.SpeechRequest``, structured strictly (a misspelt field is a 422 naming it). The
response is not an envelope but the audio: ``Content-Type`` of the asked format, chunked, its first chunk written as
soon as the vendor's first chunk arrived. Everything that can fail before that (validation, the model, the vendor
refusing, retries and fallbacks) answers the usual JSON error envelope, because the response is only built once
audio is in hand. A failure after the audio started ends the body where it is (the service logs and counts it); a
client that stops reading for ``streaming.send_timeout_s`` is cut off, which cancels the vendor call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Final

from attrs import frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response, current_app, g

from domain.speech import SpeechRequest, VoiceList
from entrypoints.http.auth import current_auth
from entrypoints.http.envelope import Pagination, api_ok
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import json_response, read_body, structure_query
from entrypoints.http.shutdown import current_drain
from services.attempts import Caller
from services.speech import SpeechService, SpeechStream

__all__ = ["VoicesQuery", "audio_body", "audio_headers", "blueprint"]

blueprint = Blueprint("speech", __name__)
_ERRORS: Final = (400, 401, 404, 413, 415, 422, 429, 502, 503, 504)
_DESCRIPTION: Final = (
    "The answer is the audio itself (not an envelope): `audio/mpeg`, `audio/ogg; codecs=opus`, `audio/aac`, "
    "`audio/flac`, `audio/wav` (streamed: its header leaves the length open) or raw 16-bit little-endian mono PCM "
    "(`audio/pcm; rate=...`, 24000 Hz unless `sample_rate` says otherwise), sent with chunked transfer as the vendor "
    "produces it. Errors before the first byte are the usual JSON envelope; a vendor failure after the audio "
    "started ends the body early. `voice` names one of the model's voices (`GET /api/v1/voices?model=`); models "
    "with a default voice take none. Headers say who served: `X-Switchyard-Model`, `X-Switchyard-Provider`, "
    "`X-Switchyard-Retries`, `X-Switchyard-Fallback-Used`, with the billed `X-Switchyard-Characters` and "
    "`X-Switchyard-Cost-USD`."
)


@frozen
class VoicesQuery:
    """``?model=``: the text-to-speech model whose voices to list (``provider/id``, a bare id or an alias)."""

    model: str


def _max_body() -> int:
    limit: Any = current_app.config.get("MAX_CONTENT_LENGTH")
    return int(limit or 1024 * 1024)


def audio_headers(stream: SpeechStream) -> dict[str, str]:
    meta = stream.meta()
    headers = {
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # proxies must pass each chunk on, not collect the clip
        "X-Switchyard-Model": str(meta["model"]),
        "X-Switchyard-Provider": str(meta["provider"]),
        "X-Switchyard-Retries": str(meta["retries"]),
        "X-Switchyard-Characters": str(stream.characters),
    }
    if meta["fallback_used"] is not None:
        headers["X-Switchyard-Fallback-Used"] = str(meta["fallback_used"])
    if stream.cost_usd is not None:
        headers["X-Switchyard-Cost-USD"] = f"{stream.cost_usd:.8f}"
    return headers


async def audio_body(stream: SpeechStream, send_timeout_s: float) -> AsyncIterator[bytes]:
    """The audio chunks, each write bounded by ``send_timeout_s``; the vendor call ends with the body."""
    # Quart iterates the body in the task that writes to the socket, so cancelling it aborts a stuck write.
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    drain = current_drain()
    chunks = stream.chunks()
    with drain.delivering() if drain is not None else contextlib.nullcontext():
        try:
            async for chunk in chunks:
                deadline = loop.call_later(send_timeout_s, task.cancel) if task is not None else None
                try:
                    yield chunk
                finally:
                    if deadline is not None:
                        deadline.cancel()
        finally:
            await chunks.aclose()


@blueprint.post("/api/v1/audio/speech")
@inject
@documented(
    "Speak text: the audio itself, streamed as the vendor produces it",
    request=SpeechRequest,
    tags=["audio"],
    errors=_ERRORS,
    description=_DESCRIPTION,
)
async def speech(
    service: SpeechService = Provide["speech_service"],
    send_timeout_s: float = Provide["settings.provided.streaming.send_timeout_s"],
) -> Response:
    body = await read_body(SpeechRequest, max_bytes=_max_body())
    caller = Caller(current_auth().customer_id, str(getattr(g, "request_id", "") or ""))
    stream = await service.start(body, caller)  # returns with the first chunk in hand, or raises (an envelope)
    response = Response(
        audio_body(stream, float(send_timeout_s)),
        status=200,
        content_type=stream.content_type,
        headers=audio_headers(stream),
    )
    response.timeout = None  # a clip has no overall deadline; each write has one
    return response


@blueprint.get("/api/v1/voices")
@inject
@documented(
    "The voices a text-to-speech model offers (catalog data, or the vendor's own list, cached)",
    response=VoiceList,
    query=VoicesQuery,
    tags=["audio"],
    errors=(401, 404, 422, 429, 502, 503, 504),
)
async def voices(service: SpeechService = Provide["speech_service"]) -> Response:
    query = structure_query(VoicesQuery)
    found = await service.voices(query.model)
    pagination = Pagination(total=len(found.voices), limit=len(found.voices))
    return json_response(api_ok(found, pagination=pagination))
