"""Test double (vendor emulator): ElevenLabs realtime speech-to-text (``WS /v1/speech-to-text/realtime``), as its SDK
speaks it. See ``live_transcription`` for the protocol, the scenarios and the faults."""

from __future__ import annotations

import json
import re
from itertools import count
from typing import TYPE_CHECKING, Any, Final

from quart import Response, websocket

from tests.emulator.render_live import (
    ELEVENLABS_FORMATS,
    ELEVENLABS_MODELS,
    Refused,
    Vad,
    after_first,
    decoded,
    elevenlabs_session_started,
    has_speech,
    recorded_headers,
    reply,
)
from tests.emulator.render_transcription import elevenlabs_error
from tests.emulator.scenario import SCENARIOS, Fault, Scenario

if TYPE_CHECKING:
    from tests.emulator.app import EmulatorState

__all__ = ["elevenlabs_realtime"]

_PARTIAL_MS: Final = 250
_ELEVENLABS_QUERY: Final = frozenset(
    (
        "model_id", "audio_format", "commit_strategy", "vad_silence_threshold_secs", "vad_threshold",
        "min_speech_duration_ms", "min_silence_duration_ms", "language_code", "secondary_languages",
        "include_timestamps", "include_language_detection", "keyterms", "no_verbatim", "entity_detection",
        "entity_redaction", "entity_redaction_mode", "transcript_edit", "filter_background_audio", "enable_logging",
        "token",
    )
)  # fmt: skip
_ids = count(1)


# --- sessions --------------------------------------------------------------------------------


class _ElevenLabsSession:
    """One realtime speech-to-text connection."""

    def __init__(self, state: EmulatorState, scenario: Scenario, query: dict[str, str]) -> None:
        self.state = state
        self.scenario = scenario
        self.query = query
        self.model = query["model_id"]
        self.rate = ELEVENLABS_FORMATS[query.get("audio_format", "pcm_16000")]
        self.vad_commits = query.get("commit_strategy", "manual") == "vad"
        silence_ms = int(float(query.get("vad_silence_threshold_secs", "1.5")) * 1000)
        self.vad = Vad(self.rate, silence_ms)
        self.segment = bytearray()
        self.said = 0
        self.chunks = 0
        self.partials = 0
        self.stopped = False

    async def send(self, message: dict[str, Any]) -> None:
        await websocket.send(json.dumps(message))

    async def run(self) -> None:
        await self.send(elevenlabs_session_started(f"emu_{next(_ids)}", self.query))
        while not self.stopped:
            raw = await websocket.receive()
            try:
                await self._handle(raw)
            except Refused as refused:
                await self.send({"message_type": "input_error", "error": refused.message})

    async def _handle(self, raw: str | bytes) -> None:
        from tests.emulator.app import RecordedRequest

        try:
            message = json.loads(raw)
        except ValueError:
            raise Refused("Invalid message: not JSON.") from None
        if not isinstance(message, dict) or message.get("message_type") != "input_audio_chunk":
            raise Refused("Invalid message_type: expected 'input_audio_chunk'.")
        unknown = sorted(set(message) - {"message_type", "audio_base_64", "commit", "sample_rate", "previous_text"})
        if unknown:
            raise Refused(f"Unknown field: '{unknown[0]}'.")
        audio = decoded(message.get("audio_base_64", ""), "audio_base_64")
        body = {**message, "audio_base_64": f"<{len(audio)} bytes>"}
        self.state.requests.append(RecordedRequest("elevenlabs_realtime_message", self.model, body, {}))
        if message.get("sample_rate") != self.rate:
            raise Refused(f"sample_rate {message.get('sample_rate')!r} does not match audio_format ({self.rate}).")
        if not isinstance(message.get("commit", False), bool):
            raise Refused("commit must be a boolean.")
        if message.get("previous_text") is not None and self.chunks:
            raise Refused("previous_text can only be sent with the first audio chunk.")
        self.chunks += 1
        await self._hear(audio)
        if message.get("commit") and not self.stopped:
            await self._commit()

    async def _hear(self, pcm: bytes) -> None:
        self.segment += pcm
        words = self.scenario.text.split()
        heard_ms = len(self.segment) * 1000 // (2 * self.rate)
        wanted = min(len(words), -(-heard_ms // _PARTIAL_MS)) if has_speech(bytes(self.segment), self.rate) else 0
        if wanted > self.said:
            self.said = wanted
            await self.send({"message_type": "partial_transcript", "text": " ".join(words[:wanted])})
            self.partials += 1
            if self.partials == 1 and await after_first(self.scenario, self._transcriber_error):
                self.stopped = True
                return
        if self.vad_commits and any(kind == "stop" for kind, _ms in self.vad.feed(pcm)):
            await self._commit()

    async def _commit(self) -> None:
        text = self.scenario.text if has_speech(bytes(self.segment), self.rate) else ""
        self.segment.clear()
        self.said = 0
        self.vad.reset()
        await self.send({"message_type": "committed_transcript", "text": text})
        if self.query.get("include_timestamps") == "true":
            words = [
                {"text": word, "type": "word", "start": i * 0.3, "end": i * 0.3 + 0.25}
                for i, word in enumerate(text.split())
            ]
            timed = {"text": text, "language_code": "en", "words": words}
            await self.send({"message_type": "committed_transcript_with_timestamps", **timed})

    async def _transcriber_error(self) -> None:
        await self.send({"message_type": "transcriber_error", "error": "The transcriber failed."})
        await websocket.close(1011, "transcriber error")


def _elevenlabs_query_problem(query: dict[str, str]) -> str | None:
    unknown = sorted(set(query) - _ELEVENLABS_QUERY)
    if unknown:
        return f"Unknown query parameter '{unknown[0]}'."
    if query.get("model_id") not in ELEVENLABS_MODELS:
        return f"Invalid model_id {query.get('model_id')!r}: realtime speech to text takes scribe_v2_realtime."
    if query.get("audio_format", "pcm_16000") not in ELEVENLABS_FORMATS:
        return f"Invalid audio_format {query.get('audio_format')!r}."
    if query.get("commit_strategy", "manual") not in ("manual", "vad"):
        return f"Invalid commit_strategy {query.get('commit_strategy')!r}."
    for flag in ("include_timestamps", "include_language_detection", "no_verbatim", "enable_logging"):
        if query.get(flag, "false") not in ("true", "false"):
            return f"Invalid {flag}: expected true or false."
    language = query.get("language_code")
    if language is not None and not re.fullmatch(r"[a-z]{2,3}", language):
        return f"Invalid language_code {language!r}."
    return None


async def elevenlabs_realtime(state: EmulatorState) -> Response | None:
    from tests.emulator.app import RecordedRequest

    query = {key: websocket.args.get(key, "") for key in websocket.args}
    model = query.get("model_id", "")
    state.requests.append(RecordedRequest("elevenlabs_realtime", model, {"query": query}, recorded_headers()))
    if not websocket.headers.get("xi-api-key") and not query.get("token"):
        return reply(elevenlabs_error(Fault("unauthorized")))
    scenario = state.resolve(model) or SCENARIOS["text"]
    if scenario.fault is not None and scenario.fault.is_status:
        return reply(elevenlabs_error(scenario.fault))
    await websocket.accept()
    problem = _elevenlabs_query_problem(query)
    if problem is not None:
        await websocket.send(json.dumps({"message_type": "invalid_request", "error": problem}))
        await websocket.close(1008, "invalid request")
        return None
    await _ElevenLabsSession(state, scenario, query).run()
    return None
