"""Test double (vendor emulator): the live transcription WebSockets of OpenAI and ElevenLabs, as their SDKs speak them.

- OpenAI ``WS /v1/realtime?intent=transcription`` (``Authorization: Bearer``; no ``model`` in the URL, which would
  open a conversation session). It sends ``session.created``, takes ``session.update`` (type ``transcription``,
  24 kHz ``audio/pcm``, a known transcription model, ``server_vad`` or no turn detection), ``input_audio_buffer.
  append``/``commit``/``clear``, and answers each committed item with ``…transcription.delta`` events (the
  scenario's text chunks; one delta for Whisper) and one ``…transcription.completed``. Server VAD sends
  ``speech_started``/``speech_stopped`` and commits at pauses; a client commit of under 100 ms of audio is the
  ``input_audio_buffer_commit_empty`` error.
- ElevenLabs ``WS /v1/speech-to-text/realtime`` (``xi-api-key``, options in the query). It sends
  ``session_started``, takes ``input_audio_chunk`` messages at the format's sample rate, answers a
  ``partial_transcript`` per 250 ms of a segment's audio (the scenario's words so far), and a
  ``committed_transcript`` per commit (``commit: true``, or the VAD's pause with ``commit_strategy=vad``).

Audio with no speech in it transcribes to ``""``. The scenario comes from the ``x-emulator-scenario`` header (OpenAI:
the SDK sends the client's default headers) or, for ElevenLabs (its SDK sends only the key), from the ``model_id``
(tests script it with ``EmulatorState.script``); otherwise ``text``. Status faults refuse the handshake with the
vendor's HTTP error (401, 429 with Retry-After, 500); ``mid_stream_error`` sends the vendor's error event after the
first transcript, ``truncated`` closes the connection there (code 1011: an ASGI app cannot drop TCP without a close
frame), ``stall`` goes silent there. Every connection and client message is recorded (audio as its size only).
The OpenAI session is here, the ElevenLabs one in ``live_elevenlabs``, what both share in ``render_live``.
"""

from __future__ import annotations

import asyncio
import json
import re
from itertools import count
from typing import TYPE_CHECKING, Any, Final

from quart import Quart, Response, websocket

from tests.emulator.live_elevenlabs import elevenlabs_realtime
from tests.emulator.realtime_openai import openai_conversation
from tests.emulator.render_live import (
    OPENAI_LIVE_MODELS,
    Refused,
    Vad,
    after_first,
    decoded,
    has_speech,
    openai_error_event,
    openai_session,
    openai_usage,
    recorded_headers,
    reply,
)
from tests.emulator.render_openai import openai_error
from tests.emulator.scenario import SCENARIOS, Fault, Scenario
from tests.emulator.wire import ErrorReply

if TYPE_CHECKING:
    from tests.emulator.app import EmulatorState

__all__ = ["register_live_transcription_routes"]

_OPENAI_RATE: Final = 24_000
_MIN_COMMIT_MS: Final = 100
_INPUT_KEYS: Final = frozenset(("format", "transcription", "turn_detection", "noise_reduction"))
_TRANSCRIPTION_KEYS: Final = frozenset(("model", "language", "prompt", "delay", "keywords", "languages"))
_ids = count(1)


# --- OpenAI Realtime transcription sessions ------------------------------------------------------------------------


class _OpenAISession:
    """One ``intent=transcription`` connection."""

    def __init__(self, state: EmulatorState, scenario: Scenario) -> None:
        self.state = state
        self.scenario = scenario
        self.id = f"sess_emu_{next(_ids)}"
        self.audio_input: dict[str, Any] = {
            "format": {"type": "audio/pcm", "rate": _OPENAI_RATE},
            "transcription": None,
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 500,
            },
            "noise_reduction": None,
        }
        self.vad = Vad(_OPENAI_RATE, 500)
        self.buffer = bytearray()
        self.buffer_start_ms = 0
        self.item: str | None = None
        self.previous: str | None = None
        self.stopped = False

    async def send(self, event: dict[str, Any]) -> None:
        await websocket.send(json.dumps({"event_id": f"event_emu_{next(_ids)}", **event}))

    async def run(self) -> None:
        await self.send({"type": "session.created", "session": openai_session(self.id, self.audio_input)})
        while not self.stopped:
            raw = await websocket.receive()
            try:
                event = json.loads(raw)
                if not isinstance(event, dict):
                    raise ValueError("not an object")
            except ValueError:
                await self.send(openai_error_event("We could not parse the JSON body of your request."))
                continue
            self._record(event)
            try:
                await self._handle(event)
            except Refused as refused:
                await self.send(
                    openai_error_event(
                        refused.message, code=refused.code, param=refused.param, event_id=event.get("event_id")
                    )
                )

    def _record(self, event: dict[str, Any]) -> None:
        from tests.emulator.app import RecordedRequest

        body = dict(event)
        if isinstance(body.get("audio"), str):
            body["audio"] = f"<{len(body['audio'])} base64 characters>"
        model = str(((self.audio_input.get("transcription") or {}).get("model")) or "")
        self.state.requests.append(RecordedRequest("openai_realtime_event", model, body, {}))

    async def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.update":
            self._update(event.get("session"))
            await self.send({"type": "session.updated", "session": openai_session(self.id, self.audio_input)})
        elif kind == "input_audio_buffer.append":
            await self._append(decoded(event.get("audio"), "audio"))
        elif kind == "input_audio_buffer.commit":
            await self._commit(event.get("event_id"))
        elif kind == "input_audio_buffer.clear":
            self.buffer.clear()
            self.vad.reset()
            await self.send({"type": "input_audio_buffer.cleared"})
        else:
            raise Refused(f"Invalid value: '{kind}'. Supported values are: 'session.update', ...", param="type")

    def _update(self, session: object) -> None:
        if not isinstance(session, dict) or session.get("type") != "transcription":
            raise Refused(
                "This is a transcription session (intent=transcription): session.type must be 'transcription'.",
                param="session.type",
            )
        for key in session:
            if key not in ("type", "audio", "include"):
                raise Refused(f"Unknown parameter: 'session.{key}'.", code="unknown_parameter", param=f"session.{key}")
        audio_input = (session.get("audio") or {}).get("input") or {}
        for key in audio_input:
            if key not in _INPUT_KEYS:
                param = f"session.audio.input.{key}"
                raise Refused(f"Unknown parameter: '{param}'.", code="unknown_parameter", param=param)
        audio_format = audio_input.get("format")
        if audio_format is not None:
            if audio_format.get("type") == "audio/pcm" and audio_format.get("rate", _OPENAI_RATE) != _OPENAI_RATE:
                raise Refused(
                    "Invalid 'session.audio.input.format.rate': only 24000 is supported.",
                    param="session.audio.input.format.rate",
                )
            if audio_format.get("type") != "audio/pcm":
                raise Refused("The emulator takes audio/pcm only.", param="session.audio.input.format.type")
        transcription = audio_input.get("transcription")
        if transcription is not None:
            unknown = sorted(set(transcription) - _TRANSCRIPTION_KEYS)
            if unknown:
                param = f"session.audio.input.transcription.{unknown[0]}"
                raise Refused(f"Unknown parameter: '{param}'.", code="unknown_parameter", param=param)
            if transcription.get("model") not in OPENAI_LIVE_MODELS:
                raise Refused(
                    f"Invalid value: '{transcription.get('model')}'. Supported values are: "
                    + ", ".join(f"'{m}'" for m in sorted(OPENAI_LIVE_MODELS)),
                    param="session.audio.input.transcription.model",
                )
            language = transcription.get("language")
            if language is not None and not re.fullmatch(r"[a-z]{2}", str(language)):
                raise Refused(
                    f"Invalid language '{language}': use ISO-639-1.", param="session.audio.input.transcription.language"
                )
        if "turn_detection" in audio_input:
            detection = audio_input["turn_detection"]
            if detection is not None and detection.get("type") not in ("server_vad", "semantic_vad"):
                raise Refused("Invalid turn_detection type.", param="session.audio.input.turn_detection.type")
            if detection is not None:
                detection = {**self.audio_input["turn_detection"], **detection}
                self.vad = Vad(_OPENAI_RATE, int(detection.get("silence_duration_ms", 500)))
            audio_input = {**audio_input, "turn_detection": detection}
        self.audio_input = {**self.audio_input, **audio_input}

    async def _append(self, pcm: bytes) -> None:
        if len(pcm) % 2:
            raise Refused("Invalid 'audio': 16-bit PCM needs an even number of bytes.", param="audio")
        self.buffer += pcm
        if self.audio_input.get("turn_detection") is None:
            self.vad.heard_ms += len(pcm) * 1000 // (2 * _OPENAI_RATE)
            return
        for kind, at_ms in self.vad.feed(pcm):
            if kind == "start":
                self.item = f"item_emu_{next(_ids)}"
                start = max(0, at_ms - 300)
                started = {"audio_start_ms": start, "item_id": self.item}
                await self.send({"type": "input_audio_buffer.speech_started", **started})
            else:
                assert self.item is not None
                stopped = {"audio_end_ms": at_ms, "item_id": self.item}
                await self.send({"type": "input_audio_buffer.speech_stopped", **stopped})
                await self._committed(self.item)
                if self.stopped:
                    return

    async def _commit(self, event_id: object) -> None:
        ms = len(self.buffer) * 1000 // (2 * _OPENAI_RATE)
        if ms < _MIN_COMMIT_MS:
            raise Refused(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but "
                f"buffer only has {ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        item = self.item if self.vad.speaking and self.item is not None else f"item_emu_{next(_ids)}"
        self.vad.reset()
        await self._committed(item)

    async def _committed(self, item: str) -> None:
        audio = bytes(self.buffer)
        self.buffer.clear()
        self.item = None
        await self.send({"type": "input_audio_buffer.committed", "item_id": item, "previous_item_id": self.previous})
        self.previous = item
        transcription = self.audio_input.get("transcription")
        if transcription is None:
            return
        model = str(transcription["model"])
        text = self.scenario.text if has_speech(audio, _OPENAI_RATE) else ""
        pieces = [text] if model.startswith("whisper") else list(self.scenario.text_chunks)
        first = True
        for piece in pieces if text else []:
            if self.scenario.chunk_delay_s:
                await asyncio.sleep(self.scenario.chunk_delay_s)
            delta = {"item_id": item, "content_index": 0, "delta": piece}
            await self.send({"type": "conversation.item.input_audio_transcription.delta", **delta})
            if first and await after_first(self.scenario, self._server_error):
                self.stopped = True
                return
            first = False
        seconds = len(audio) / (2 * _OPENAI_RATE)
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item,
                "content_index": 0,
                "transcript": text,
                "usage": openai_usage(model, seconds, text),
            }
        )

    async def _server_error(self) -> None:
        await self.send(
            openai_error_event(
                "The server had an error while processing your request.", type_="server_error", code="server_error"
            )
        )


async def _openai_realtime(state: EmulatorState) -> Response | None:
    from tests.emulator.app import RecordedRequest

    args = {key: websocket.args.get(key, "") for key in websocket.args}
    state.requests.append(RecordedRequest("openai_realtime", "", {"query": args}, recorded_headers()))
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return reply(openai_error(Fault("unauthorized")))
    if args.get("intent") != "transcription" or "model" in args:
        message = "The emulator speaks transcription sessions only: connect with ?intent=transcription, no model."
        body = {"error": {"message": message, "type": "invalid_request_error", "param": "intent", "code": None}}
        return reply(ErrorReply(400, body))
    unknown = sorted(set(args) - {"intent"})
    if unknown:
        body = {"error": {"message": f"Unknown parameter: '{unknown[0]}'.", "type": "invalid_request_error"}}
        return reply(ErrorReply(400, body))
    named = websocket.headers.get("x-emulator-scenario")
    scenario = state.resolve(named) if named else SCENARIOS["text"]
    if scenario is None:
        body = {"error": {"message": f"no scenario {named!r}", "type": "invalid_request_error", "code": None}}
        return reply(ErrorReply(404, body))
    if scenario.fault is not None and scenario.fault.is_status:
        return reply(openai_error(scenario.fault))
    await websocket.accept()
    await _OpenAISession(state, scenario).run()
    return None


def register_live_transcription_routes(app: Quart, state: EmulatorState) -> None:
    """Add the OpenAI Realtime and ElevenLabs realtime speech-to-text WebSockets to the emulator ``app``."""

    @app.websocket("/v1/realtime")
    async def openai_realtime() -> Response | None:
        if "model" in websocket.args and "intent" not in websocket.args:  # a conversation: realtime_openai
            return await openai_conversation(state)
        return await _openai_realtime(state)

    @app.websocket("/v1/speech-to-text/realtime")
    async def elevenlabs_speech_to_text_realtime() -> Response | None:
        return await elevenlabs_realtime(state)
