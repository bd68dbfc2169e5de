"""Blueprint: ``WS /api/v1/ws/realtime?model=``, a realtime voice session (speech to speech) over one WebSocket.

The client authenticates like on every WebSocket (``entrypoints.http.auth``), then sends ``{"type": "session.update",
"session": {...}}`` (voice, instructions, ``input_audio.sample_rate``, ``turn_detection``, ``input_transcription``,
``tools``, ``temperature``, ``metadata``), then binary frames of audio (whole 16-bit little-endian mono samples at the
declared rate) and JSON controls: ``input.commit``, ``input.text`` (``text``), ``response.cancel``, ``tool.result``
(``call_id``, ``output``) and ``session.end``. The server answers ``session.created`` (who serves, the audio formats),
then the session's events as JSON (``transcript.input``, ``transcript.output``, ``speech.started``,
``speech.stopped``, ``tool.call``, ``turn.done``) and the model's audio as binary frames (pcm16 mono at 24 kHz), then
exactly one terminal message: ``usage`` and ``done`` after ``session.end``, ``error`` (the error table's payload) or
``cancelled``; then it closes the socket with 1000, or with the error's close code from the table (4422 a bad field
or a session idle or too long, 4404 an unknown model, 4408 a client too slow to read, 4502 a vendor failure, 4504 a
vendor that stalled ...).

Both directions are bounded: the client's audio is read only as fast as the vendor takes it (a couple of seconds may
wait, then the socket is not read, so TCP holds the client back); the messages waiting for the client are bounded in
number and each write in time (``realtime.outbound_queue_events``, ``realtime.write_timeout_s``): a client that stops
reading is disconnected with ``client_too_slow`` (4408). Audio frames are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final, Literal

from attrs import field, frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, g, websocket

from domain.errors import ClientTooSlowError, PayloadTooLargeError, ServiceError, ValidationError
from domain.metering import Units
from domain.realtime import (
    REALTIME_OUTPUT_RATE,
    RealtimeAudio,
    RealtimeConfig,
    RealtimeSpeechStarted,
    RealtimeSpeechStopped,
    RealtimeTool,
    RealtimeToolCall,
    RealtimeTranscript,
    RealtimeTurnDone,
    TurnDetection,
)
from entrypoints.http.auth import QUERY_TOKEN_PARAM, websocket_auth
from entrypoints.http.errors import error_payload, ws_close_code_for
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import read_message, structure
from entrypoints.http.socket_session import relay
from entrypoints.http.streaming import send_json
from services.attempts import Caller
from services.realtime import (
    RealtimeCancelled,
    RealtimeDone,
    RealtimeFailed,
    RealtimeRun,
    RealtimeService,
    RealtimeStarted,
    RealtimeUpdate,
)

__all__ = ["PATH", "RealtimeQuery", "SessionUpdate", "blueprint"]

PATH: Final = "/api/v1/ws/realtime"
_NORMAL: Final = 1000
_CONTROLS: Final = ("input.commit", "input.text", "response.cancel", "tool.result", "session.end")

blueprint = Blueprint("realtime", __name__)


@frozen
class RealtimeQuery:
    """``?model=``: a model with the ``realtime`` capability whose vendor has a realtime API."""

    model: str


@frozen
class InputAudio:
    """The client's audio: pcm16 mono at ``sample_rate`` (16000 or 24000)."""

    sample_rate: int = 24_000
    format: Literal["pcm16"] = "pcm16"


@frozen
class ToolBody:
    """A function the model may call; ``parameters`` is its JSON schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(factory=dict)


@frozen
class SessionBody:
    """What the session is: every field optional."""

    voice: str | None = None
    instructions: str | None = None
    input_audio: InputAudio = field(factory=InputAudio)
    turn_detection: TurnDetection = "server_vad"
    input_transcription: bool = True
    tools: list[ToolBody] = field(factory=list)
    temperature: float | None = None
    metadata: dict[str, str] = field(factory=dict)


@frozen
class SessionUpdate:
    """The client's first message."""

    type: Literal["session.update"]
    session: SessionBody = field(factory=SessionBody)


@frozen
class _Bare:
    type: str


@frozen
class _Text:
    type: Literal["input.text"]
    text: str


@frozen
class _ToolResult:
    type: Literal["tool.result"]
    call_id: str
    output: str


def _config(update: SessionUpdate) -> RealtimeConfig:
    session = update.session
    return RealtimeConfig(
        voice=session.voice,
        instructions=session.instructions,
        input_sample_rate=session.input_audio.sample_rate,
        turn_detection=session.turn_detection,
        input_transcription=session.input_transcription,
        tools=tuple(RealtimeTool(t.name, t.description, dict(t.parameters)) for t in session.tools),
        temperature=session.temperature,
        metadata=dict(session.metadata),
    )


def _usage(units: Units | None) -> dict[str, Any] | None:
    if units is None:
        return None
    return {
        "input_tokens": units.input_tokens,
        "output_tokens": units.output_tokens,
        "cached_tokens": units.cached_tokens,
    }


def _message(update: RealtimeUpdate) -> dict[str, Any] | bytes:
    """The client's frame for one non-terminal update: JSON, or the audio's bytes."""
    match update:
        case RealtimeAudio():
            return update.data
        case RealtimeTranscript():
            kind = "transcript.input" if update.speaker == "user" else "transcript.output"
            return {"type": kind, "text": update.text, "final": update.final, "item_id": update.item_id}
        case RealtimeSpeechStarted():
            return {"type": "speech.started"}
        case RealtimeSpeechStopped():
            return {"type": "speech.stopped"}
        case RealtimeToolCall():
            return {"type": "tool.call", "call_id": update.call_id, "name": update.name, "arguments": update.arguments}
        case RealtimeTurnDone():
            return {
                "type": "turn.done",
                "response_id": update.response_id,
                "status": update.status,
                "usage": _usage(update.usage),
            }
    raise AssertionError(f"not a session event: {type(update).__name__}")  # pragma: no cover


def _terminal(update: RealtimeUpdate) -> tuple[list[dict[str, Any]], int]:
    """The last messages (``usage`` then ``done``, or ``error``, or ``cancelled``) and the close code after them."""
    if isinstance(update, RealtimeDone):
        summary = update.summary
        usage = {
            "type": "usage",
            "input_audio_seconds": summary.input_audio_seconds,
            "output_audio_seconds": summary.output_audio_seconds,
            "audio_seconds": summary.units.audio_seconds,
            "turns": summary.turns,
            **(_usage(summary.units) or {}),
            "cost_usd": summary.cost_usd,
            "duration_s": summary.duration_s,
        }
        return [usage, {"type": "done", **update.meta}], _NORMAL
    if isinstance(update, RealtimeFailed):
        return [{"type": "error", **error_payload(update.error)}], ws_close_code_for(update.error)
    assert isinstance(update, RealtimeCancelled)
    return [{"type": "cancelled", "reason": update.reason}], _NORMAL


class _RealtimeSocket:
    """One session over the current WebSocket: a task receives the client's side while another sends the updates."""

    def __init__(
        self,
        service: RealtimeService,
        caller: Caller,
        *,
        write_timeout_s: float,
        max_bytes: int,
        max_depth: int,
    ) -> None:
        self._service = service
        self._caller = caller
        self._write_timeout = write_timeout_s if write_timeout_s > 0 else None
        self._max_bytes = max_bytes
        self._max_depth = max_depth
        self._gone = False
        self._slow = False

    async def serve(self) -> None:
        try:
            run = await self._start()
        except ServiceError as exc:
            await self._finish(RealtimeFailed(exc))
            return

        def gone() -> None:  # the client left, or its token expired: the session ends as cancelled
            self._gone = True
            run.abort()

        await relay(self._receive(run), self._deliver(run), abort=gone, name="realtime")

    async def _start(self) -> RealtimeRun:
        args = {key: value for key, value in websocket.args.items() if key != QUERY_TOKEN_PARAM}
        query = structure(args, RealtimeQuery)
        wait = self._service.idle_timeout_s
        try:
            async with asyncio.timeout(wait or None):
                raw = await websocket.receive()
        except TimeoutError:
            raise ValidationError("type", f"no session.update message within {wait:g} s") from None
        if isinstance(raw, bytes):
            raise ValidationError("type", 'the first message must be {"type": "session.update", "session": {...}}')
        update = structure(read_message(raw, max_bytes=self._max_bytes, max_depth=self._max_depth), SessionUpdate)
        return await self._service.start(query.model, _config(update), self._caller)

    async def _receive(self, run: RealtimeRun) -> None:
        """The client's frames into the run, in order, until ``session.end``: audio waits for room (back-pressure)."""
        try:
            while True:
                message = await websocket.receive()
                if isinstance(message, bytes):
                    if len(message) > self._max_bytes:
                        raise PayloadTooLargeError(self._max_bytes)
                    if not await run.feed(message):
                        return
                    continue
                if not await self._control(run, message):
                    return
        except ServiceError as exc:
            run.abort(exc)

    async def _control(self, run: RealtimeRun, raw: str) -> bool:
        """Apply one JSON control; ``False`` once the session takes no more."""
        data = read_message(raw, max_bytes=self._max_bytes, max_depth=self._max_depth)
        kind = data.get("type")
        match kind:
            case "input.commit" | "response.cancel" | "session.end":
                structure(data, _Bare)
                if kind == "session.end":
                    await run.end()
                    return False
                return await (run.commit() if kind == "input.commit" else run.cancel())
            case "input.text":
                return await run.send_text(structure(data, _Text).text)
            case "tool.result":
                result = structure(data, _ToolResult)
                return await run.tool_result(result.call_id, result.output)
            case "session.update":
                raise ValidationError("type", "session.update is taken once, as the first message")
        raise ValidationError(
            "type", f"after session.update, send binary audio frames or one of {', '.join(_CONTROLS)}"
        )

    async def _deliver(self, run: RealtimeRun) -> None:
        """Every update of the run to the client, the terminal one last (then the socket closes)."""
        async for update in run.updates():
            if isinstance(update, RealtimeDone | RealtimeFailed | RealtimeCancelled):
                await self._finish(update)
                return
            if isinstance(update, RealtimeStarted):
                config = run.config
                formats = {
                    "input_audio": {"format": "pcm16", "sample_rate": config.input_sample_rate},
                    "output_audio": {"format": "pcm16", "sample_rate": REALTIME_OUTPUT_RATE},
                }
                await self._send(run, {"type": "session.created", **update.meta, **formats})
            else:
                await self._send(run, _message(update))

    async def _send(self, run: RealtimeRun | None, frame: dict[str, Any] | bytes) -> bool:
        """One frame to the client within the write timeout. A client that does not take it in time is too slow: the
        run ends with ``client_too_slow``; one that is gone ends it as cancelled."""
        if self._gone or self._slow:
            return False
        try:
            if isinstance(frame, bytes):
                async with asyncio.timeout(self._write_timeout):
                    await websocket.send(frame)
            else:
                await send_json(frame, self._write_timeout)
        except TimeoutError:
            self._slow = True
            if run is not None:
                waited = self._write_timeout or 0.0
                run.abort(ClientTooSlowError(f"the client did not read for {waited:g} s: disconnected"))
            return False
        except Exception:  # noqa: BLE001 - the client is gone: the run ends as cancelled
            self._gone = True
            if run is not None:
                run.abort()
            return False
        return True

    async def _finish(self, update: RealtimeUpdate) -> None:
        messages, code = _terminal(update)
        if self._gone:
            return
        # A client that stopped reading still gets its error and close frame queued (after what it did not read):
        # each is written before the send waits, so one short wait each is enough.
        self._slow = False
        for message in messages:
            if not await self._send(None, message):
                break
        with contextlib.suppress(Exception):  # the peer may have closed first
            async with asyncio.timeout(self._write_timeout):
                await websocket.close(code)


@blueprint.websocket(PATH)
@inject
@documented(
    "Realtime voice: talk to a speech-to-speech model, receive its audio, transcripts and tool calls",
    query=RealtimeQuery,
    tags=["audio"],
    description=(
        'First message `{"type": "session.update", "session": {"voice", "instructions", "input_audio": '
        '{"sample_rate": 24000}, "turn_detection": "server_vad" | "none", "input_transcription": true, "tools": '
        '[{"name", "description", "parameters"}], "temperature", "metadata"}}` (every field optional; rates 16000 '
        "or 24000). Then binary frames of 16-bit little-endian mono PCM at that rate, and JSON controls: "
        '`{"type": "input.commit"}` (end of the user\'s turn when turn_detection is none), `{"type": "input.text", '
        '"text"}`, `{"type": "response.cancel"}`, `{"type": "tool.result", "call_id", "output"}`, '
        '`{"type": "session.end"}`. Server messages: `session.created` (model, provider, fallback_used, retries, '
        "input_audio, output_audio), `transcript.input` / `transcript.output` (`text`, `final`, `item_id`), "
        "`speech.started` / `speech.stopped` (server VAD heard the user start / stop speaking), `tool.call` "
        "(`call_id`, `name`, `arguments`), `turn.done` (`response_id`, `status`: "
        "completed, cancelled, interrupted or failed, `usage`), the model's audio as binary frames (pcm16 mono, "
        "24000 Hz), then exactly one of `usage` + `done`, `error` (`code`, `message`, `retryable`, `status`) or "
        "`cancelled`, and the socket closes (1000, or the error's close code: 4422 a bad field or a session idle "
        "past `realtime.idle_timeout_s` or older than `realtime.max_seconds`, 4408 `client_too_slow`, 4502 a vendor "
        "failure, 4504 a vendor that stalled)."
    ),
)
async def realtime_socket(
    service: RealtimeService = Provide["realtime_service"],
    write_timeout_s: float = Provide["settings.provided.realtime.write_timeout_s"],
    max_bytes: int = Provide["settings.provided.limits.max_ws_message_bytes"],
    max_depth: int = Provide["settings.provided.limits.max_json_depth"],
) -> None:
    auth = await websocket_auth()
    caller = Caller(auth.customer_id, str(getattr(g, "request_id", "") or ""))
    socket = _RealtimeSocket(
        service, caller, write_timeout_s=float(write_timeout_s), max_bytes=int(max_bytes), max_depth=int(max_depth)
    )
    await socket.serve()
