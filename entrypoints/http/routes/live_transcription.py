"""Blueprint: ``WS /api/v1/ws/transcribe?model=``, live speech-to-text over one WebSocket.

The client authenticates like on every WebSocket (``entrypoints.http.auth``), then sends ``{"type": "start",
"sample_rate": 16000, "encoding": "pcm16"}`` (optionally ``language`` and ``metadata``), then binary frames of audio
(whole 16-bit little-endian mono samples), then ``{"type": "end"}``. The server answers JSON messages: ``started``
(who serves), ``partial`` and ``final`` (``text``, ``segment``, ``start_s``, ``end_s``; finals may carry ``words``),
then exactly one terminal message: ``done`` (the transcript, audio seconds, words, segments and the usage with its
cost), ``error`` (the error table's payload: ``code``, ``message``, ``retryable``, ``status``) or ``cancelled``; then
it closes the socket with 1000, or with the error's close code from the table (4422 for a bad field, a silent client
or a session past its length, 4404 an unknown model, 4502 a vendor failure ...).

Audio is read only as fast as the vendor takes it: while a couple of seconds of it wait, the socket is not read, so a
client sending faster than that is held back by TCP itself. Audio frames are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final, Literal

import structlog
from attrs import field, frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, g, websocket

from domain.errors import PayloadTooLargeError, ServiceError, ValidationError
from domain.live_transcription import LiveConfig, LiveTranscript
from entrypoints.http.auth import QUERY_TOKEN_PARAM, websocket_auth
from entrypoints.http.errors import error_payload, ws_close_code_for
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import read_message, structure
from entrypoints.http.socket_session import relay
from entrypoints.http.streaming import send_json
from services.attempts import Caller
from services.live_transcription import (
    LiveCancelled,
    LiveDone,
    LiveFailed,
    LiveRun,
    LiveStarted,
    LiveTranscriptionService,
    LiveUpdate,
)

__all__ = ["PATH", "StartMessage", "TranscribeQuery", "blueprint"]

PATH: Final = "/api/v1/ws/transcribe"
_NORMAL: Final = 1000
_SEND_TIMEOUT_S: Final = 10.0
_log = structlog.get_logger("switchyard.live_transcription")

blueprint = Blueprint("live_transcription", __name__)


@frozen
class TranscribeQuery:
    """``?model=``: a model with the ``stt`` capability whose vendor has a live API."""

    model: str


@frozen
class StartMessage:
    """The client's first message: how its audio is framed, and optionally a language hint and metadata."""

    type: Literal["start"]
    sample_rate: int
    encoding: Literal["pcm16"] = "pcm16"
    language: str | None = None
    metadata: dict[str, str] = field(factory=dict)


def _transcript(update: LiveTranscript) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": update.kind,
        "text": update.text,
        "segment": update.segment,
        "start_s": update.start_s,
        "end_s": update.end_s,
    }
    if update.words:
        message["words"] = [{"start_s": w.start_s, "end_s": w.end_s, "text": w.text} for w in update.words]
    return message


def _terminal(update: LiveUpdate) -> tuple[dict[str, Any], int]:
    """The terminal message and the close code that follows it."""
    if isinstance(update, LiveDone):
        summary = update.summary
        usage = {"audio_seconds": summary.audio_seconds, "cost_usd": summary.cost_usd}
        done = {
            "type": "done",
            "text": summary.text,
            "audio_seconds": summary.audio_seconds,
            "segments": summary.segments,
            "words": summary.words,
            "usage": usage,
            **update.meta,
        }
        return done, _NORMAL
    if isinstance(update, LiveFailed):
        return {"type": "error", **error_payload(update.error)}, ws_close_code_for(update.error)
    assert isinstance(update, LiveCancelled)
    return {"type": "cancelled", "reason": update.reason}, _NORMAL


class _LiveSocket:
    """One session over the current WebSocket: a task receives the client's audio while this one sends updates."""

    def __init__(self, service: LiveTranscriptionService, caller: Caller, max_bytes: int, max_depth: int) -> None:
        self._service = service
        self._caller = caller
        self._max_bytes = max_bytes
        self._max_depth = max_depth
        self._gone = False

    async def serve(self) -> None:
        try:
            run = await self._start()
        except ServiceError as exc:
            await self._finish(LiveFailed(exc))
            return

        def gone() -> None:  # the client left, or its token expired: the session ends as cancelled
            self._gone = True
            run.abort()

        await relay(self._receive(run), self._deliver(run), abort=gone, name="live-stt")

    async def _start(self) -> LiveRun:
        args = {key: value for key, value in websocket.args.items() if key != QUERY_TOKEN_PARAM}
        query = structure(args, TranscribeQuery)
        try:
            async with asyncio.timeout(self._service.idle_timeout_s or None):
                raw = await websocket.receive()
        except TimeoutError:
            wait = self._service.idle_timeout_s
            raise ValidationError("type", f"no start message within {wait:g} s") from None
        if isinstance(raw, bytes):
            raise ValidationError("type", 'the first message must be {"type": "start", "sample_rate": ...}')
        start = structure(read_message(raw, max_bytes=self._max_bytes, max_depth=self._max_depth), StartMessage)
        config = LiveConfig(start.sample_rate, start.encoding, start.language, dict(start.metadata))
        return await self._service.start(query.model, config, self._caller)

    async def _receive(self, run: LiveRun) -> None:
        """Client frames into the run until ``end``: audio waits for room in the run's buffer (back-pressure)."""
        try:
            while True:
                message = await websocket.receive()
                if isinstance(message, bytes):
                    if len(message) > self._max_bytes:
                        raise PayloadTooLargeError(self._max_bytes)
                    if not await run.feed(message):
                        return
                    continue
                kind = read_message(message, max_bytes=self._max_bytes, max_depth=self._max_depth).get("type")
                if kind != "end":
                    raise ValidationError("type", 'after start, send binary audio frames, then {"type": "end"}')
                await run.end()
                return
        except ServiceError as exc:
            run.abort(exc)

    async def _deliver(self, run: LiveRun) -> None:
        """Every update of the run to the client, the terminal one last (then the socket closes)."""
        async for update in run.updates():
            if isinstance(update, LiveDone | LiveFailed | LiveCancelled):
                await self._finish(update, run)
                return
            if isinstance(update, LiveStarted):
                config = run.config
                framing = {"sample_rate": config.sample_rate, "encoding": config.encoding}
                await self._send({"type": "started", **update.meta, **framing})
            else:
                await self._send(_transcript(update))

    async def _send(self, message: dict[str, Any]) -> bool:
        if self._gone:
            return False
        try:
            await send_json(message, _SEND_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - a client that is gone or stopped reading: the run goes on to its end
            self._gone = True
            return False
        return True

    async def _finish(self, update: LiveUpdate, run: LiveRun | None = None) -> None:
        message, code = _terminal(update)
        _log.info(
            "live_transcription_ended",
            outcome=message["type"],
            code=message.get("code"),
            audio_seconds=message.get("audio_seconds"),
            model=message.get("model"),
        )
        if run is not None and self._gone:
            return
        if await self._send(message):
            with contextlib.suppress(Exception):  # the peer may have closed first
                await websocket.close(code)


@blueprint.websocket(PATH)
@inject
@documented(
    "Transcribe live audio: send PCM frames, receive partial and final transcripts as they come",
    query=TranscribeQuery,
    tags=["audio"],
    description=(
        'First message `{"type": "start", "sample_rate": 16000, "encoding": "pcm16"}` (rates 8000, 16000, 22050, '
        "24000, 44100, 48000; optional `language`, `metadata`), then binary frames of 16-bit little-endian mono "
        'PCM, then `{"type": "end"}`. Server messages: `started` (model, provider, fallback_used, retries), '
        "`partial` and `final` (`text`, `segment`, `start_s`, `end_s`), then exactly one of `done` (`text`, "
        "`audio_seconds`, `words`, `segments`, `usage`), `error` (`code`, `message`, `retryable`, `status`) or "
        "`cancelled`, and the socket closes (1000, or the error's close code). A client silent for "
        "`audio.live_idle_timeout_s` or past `audio.live_max_seconds` of audio gets a 4422 `validation_error`."
    ),
)
async def transcribe_socket(
    service: LiveTranscriptionService = Provide["live_transcription_service"],
    max_bytes: int = Provide["settings.provided.limits.max_ws_message_bytes"],
    max_depth: int = Provide["settings.provided.limits.max_json_depth"],
) -> None:
    auth = await websocket_auth()
    caller = Caller(auth.customer_id, str(getattr(g, "request_id", "") or ""))
    await _LiveSocket(service, caller, int(max_bytes), int(max_depth)).serve()
