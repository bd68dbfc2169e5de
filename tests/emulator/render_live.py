"""Test double (vendor emulator): what the live transcription protocols need besides their routes. A small energy
VAD that cuts segments at pauses as the vendors' server VAD does, the handshake and message helpers both protocols
share (a refused handshake, base64 audio, the mid-session faults), and the session objects and events in each
vendor's shape (OpenAI Realtime transcription sessions, ElevenLabs realtime Scribe).

The VAD reads 16-bit little-endian mono PCM in 20 ms frames: a frame is speech when its RMS passes ``THRESHOLD``; a
segment starts at the first speech frame and stops once the silence after it lasts the configured pause. It is
driven by the audio alone (never the wall clock), as a vendor's is, so a test's clip segments the same way however
fast it is sent.
"""

from __future__ import annotations

import array
import asyncio
import base64
import binascii
import json
import math
import sys
from typing import Any, Final

from attrs import define
from quart import Response, websocket

from tests.emulator.scenario import Scenario
from tests.emulator.wire import ErrorReply

__all__ = [
    "ELEVENLABS_FORMATS",
    "ELEVENLABS_MODELS",
    "OPENAI_LIVE_MODELS",
    "THRESHOLD",
    "Refused",
    "Vad",
    "after_first",
    "decoded",
    "elevenlabs_session_started",
    "has_speech",
    "openai_error_event",
    "openai_session",
    "openai_usage",
    "recorded_headers",
    "reply",
]

THRESHOLD: Final = 500.0
"""RMS (of 32767) above which a frame is speech: about -36 dBFS."""
_FRAME_MS: Final = 20
_SECRET_HEADERS: Final = frozenset(("authorization", "xi-api-key"))
#: The transcription models a Realtime transcription session takes (the SDK's own list).
OPENAI_LIVE_MODELS: Final = frozenset(
    (
        "whisper-1",
        "gpt-transcribe",
        "gpt-live-transcribe",
        "gpt-4o-mini-transcribe",
        "gpt-4o-mini-transcribe-2025-12-15",
        "gpt-4o-transcribe",
        "gpt-4o-transcribe-diarize",
        "gpt-realtime-whisper",
    )
)
ELEVENLABS_MODELS: Final = frozenset(("scribe_v2_realtime",))
#: ``audio_format`` -> sample rate.
ELEVENLABS_FORMATS: Final = {
    "pcm_8000": 8_000,
    "pcm_16000": 16_000,
    "pcm_22050": 22_050,
    "pcm_24000": 24_000,
    "pcm_44100": 44_100,
    "pcm_48000": 48_000,
    "ulaw_8000": 8_000,
}


def _rms(pcm: bytes) -> float:
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder != "little":  # pragma: no cover - PCM on the wire is little-endian
        samples.byteswap()
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def has_speech(pcm: bytes, rate: int) -> bool:
    """Whether any 20 ms frame of ``pcm`` is speech."""
    step = rate * 2 * _FRAME_MS // 1000
    return any(_rms(pcm[i : i + step]) > THRESHOLD for i in range(0, len(pcm), step))


@define
class Vad:
    """Audio in, ``("start", ms)`` / ``("stop", ms)`` out (milliseconds from the session's first sample)."""

    rate: int
    silence_ms: int
    heard_ms: int = 0
    speaking: bool = False
    quiet_ms: int = 0
    _carry: bytes = b""

    def feed(self, pcm: bytes) -> list[tuple[str, int]]:
        events: list[tuple[str, int]] = []
        data = self._carry + pcm
        step = self.rate * 2 * _FRAME_MS // 1000
        whole = len(data) - len(data) % step
        self._carry = data[whole:]
        for offset in range(0, whole, step):
            loud = _rms(data[offset : offset + step]) > THRESHOLD
            if loud and not self.speaking:
                self.speaking = True
                events.append(("start", self.heard_ms))
            if self.speaking:
                self.quiet_ms = 0 if loud else self.quiet_ms + _FRAME_MS
                if self.quiet_ms >= self.silence_ms:
                    self.speaking = False
                    self.quiet_ms = 0
                    events.append(("stop", self.heard_ms + _FRAME_MS))
            self.heard_ms += _FRAME_MS
        return events

    def reset(self) -> None:
        """A commit ends whatever speech was going on."""
        self.speaking = False
        self.quiet_ms = 0


# --- both protocols ------------------------------------------------------------------------------------------------


class Refused(Exception):
    """A client event the vendor answers with an error (the session stays open)."""

    def __init__(self, message: str, *, code: str | None = "invalid_value", param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param


def reply(error: ErrorReply) -> Response:
    """The vendor's HTTP answer refusing a handshake."""
    return Response(json.dumps(error.body), status=error.status, headers=error.headers, mimetype="application/json")


def recorded_headers() -> dict[str, str]:
    """The handshake's headers, credentials left out (the request log never holds them)."""
    return {k.lower(): v for k, v in websocket.headers.items() if k.lower() not in _SECRET_HEADERS}


def decoded(value: object, param: str) -> bytes:
    """Base64 audio from a message, or the vendor's refusal naming ``param``."""
    if not isinstance(value, str):
        raise Refused(f"Invalid type for '{param}': expected a base64 string.", code="invalid_type", param=param)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(f"Invalid '{param}': not valid base64.", param=param) from None


async def after_first(scenario: Scenario, send_error: Any) -> bool:
    """Play the scenario's mid-session fault after the first transcript; ``True`` when the session must stop."""
    fault = scenario.fault
    if fault is None or fault.is_status:
        return False
    if fault.kind == "stall":
        await asyncio.sleep(fault.stall_s)
        return True
    if fault.kind == "truncated":
        await websocket.close(1011, "internal error")
        return True
    if fault.kind == "mid_stream_error":
        await send_error()
        return True
    return False


# --- OpenAI Realtime ----------------------------------------------------------------------------------------------


def openai_session(session_id: str, audio_input: dict[str, Any]) -> dict[str, Any]:
    """A transcription session object as ``session.created``/``session.updated`` carry it."""
    return {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": session_id,
        "expires_at": 1_900_000_000,
        "audio": {"input": audio_input},
        "include": None,
    }


def openai_error_event(
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    event_id: object = None,
) -> dict[str, Any]:
    """An ``error`` server event (``event_id``: the client event it answers)."""
    error = {"type": type_, "code": code, "message": message, "param": param, "event_id": event_id}
    return {"type": "error", "event_id": "event_emu_error", "error": error}


def openai_usage(model: str, seconds: float, text: str) -> dict[str, Any]:
    """The ``usage`` of a completed transcription: seconds for Whisper, tokens for the GPT-4o family."""
    if model.startswith("whisper"):
        return {"type": "duration", "seconds": round(seconds, 3)}
    audio_tokens = max(1, round(seconds * 10))
    output = max(1, len(text.split()))
    return {
        "type": "tokens",
        "input_tokens": audio_tokens,
        "output_tokens": output,
        "total_tokens": audio_tokens + output,
        "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0},
    }


# --- ElevenLabs realtime -------------------------------------------------------------------------------------------


def elevenlabs_session_started(session_id: str, query: dict[str, str]) -> dict[str, Any]:
    """The ``session_started`` message with the session's effective configuration."""
    audio_format = query.get("audio_format", "pcm_16000")
    return {
        "message_type": "session_started",
        "session_id": session_id,
        "config": {
            "sample_rate": ELEVENLABS_FORMATS[audio_format],
            "audio_format": audio_format,
            "language_code": query.get("language_code"),
            "commit_strategy": query.get("commit_strategy", "manual"),
            "vad_silence_threshold_secs": float(query.get("vad_silence_threshold_secs", "1.5")),
            "vad_threshold": float(query.get("vad_threshold", "0.4")),
            "min_speech_duration_ms": int(query.get("min_speech_duration_ms", "100")),
            "min_silence_duration_ms": int(query.get("min_silence_duration_ms", "100")),
            "model_id": query.get("model_id"),
            "enable_logging": query.get("enable_logging", "true") == "true",
            "include_timestamps": query.get("include_timestamps", "false") == "true",
        },
    }
