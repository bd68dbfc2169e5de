"""Test double (vendor emulator): speech-to-text answers in OpenAI's, ElevenLabs' and Gemini's wire formats, and the
decoding of the audio they are about (PyAV), for ``tests.emulator.transcription``'s routes.

The transcript is the scenario's text spread evenly over the decoded duration; OpenAI's ``verbose_json`` names the
language in English words (``english``), ElevenLabs in ISO-639-3 (``eng``), as the vendors do.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import av

from tests.emulator.scenario import Fault, Scenario
from tests.emulator.wire import ErrorReply, retry_after_headers

__all__ = [
    "audio_duration",
    "elevenlabs_answer",
    "elevenlabs_error",
    "gemini_answer",
    "openai_answer",
    "timed_words",
]

_JSON: Final = "application/json"
_LANGUAGE_NAMES: Final = {"en": "english", "fr": "french", "de": "german", "es": "spanish", "nl": "dutch"}
_ISO3: Final = {"en": "eng", "fr": "fra", "de": "deu", "es": "spa", "nl": "nld"}
_PUNCTUATION: Final = re.compile(r"[^\w'-]+")


def audio_duration(data: bytes) -> float | None:
    """Seconds of audio in ``data`` when FFmpeg decodes an audio stream in it, else ``None``."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            if next(iter(container.decode(stream)), None) is None:
                return None
            if container.duration:
                return container.duration / av.time_base
    except (av.FFmpegError, ValueError, IndexError, OSError):
        return None
    with av.open(io.BytesIO(data), mode="r") as container:  # no stated length: the last packet's end
        packets = container.demux(container.streams.audio[0])
        return max((float((p.pts + (p.duration or 0)) * p.time_base) for p in packets if p.pts is not None), default=0)


def timed_words(text: str, duration: float) -> list[tuple[str, float, float]]:
    """``text``'s words spread evenly over ``duration``: (word with its punctuation, start, end)."""
    words = text.split()
    slot = duration / max(1, len(words))
    return [(word, round(i * slot, 3), round((i + 1) * slot, 3)) for i, word in enumerate(words)]


# --- OpenAI ------------------------------------------------------------------------------------------------------


def _clock(seconds: float, separator: str) -> str:
    whole = int(seconds)
    millis = round((seconds - whole) * 1000)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}{separator}{millis:03d}"


def openai_answer(
    model: str, response_format: str, fields: Mapping[str, list[str]], text: str, duration: float
) -> tuple[str | dict[str, Any], str]:
    """The answer's payload (text, or a JSON object) and MIME type for ``response_format``."""
    if response_format == "text":
        return text + "\n", "text/plain"
    if response_format in ("srt", "vtt"):
        separator = "," if response_format == "srt" else "."
        cue = f"{_clock(0.0, separator)} --> {_clock(duration, separator)}\n{text}\n"
        subtitles = f"1\n{cue}\n" if response_format == "srt" else f"WEBVTT\n\n{cue}\n"
        return subtitles, "text/plain"
    seconds = {"type": "duration", "seconds": math.ceil(duration)}
    if response_format == "json":
        if model.startswith("whisper"):
            return {"text": text, "usage": seconds}, _JSON
        audio_tokens = max(1, round(duration * 10))
        tokens = {
            "type": "tokens",
            "input_tokens": audio_tokens + 6,
            "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 6},
            "output_tokens": len(text.split()),
            "total_tokens": audio_tokens + 6 + len(text.split()),
        }
        return {"text": text, "usage": tokens}, _JSON
    language = (fields.get("language") or ["en"])[0]
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": _LANGUAGE_NAMES.get(language, language),  # verbose_json names the language in English words
        "duration": round(duration, 3),
        "text": text,
        "segments": [
            {
                "id": 0,
                "seek": 0,
                "start": 0.0,
                "end": round(duration, 3),
                "text": f" {text}",
                "tokens": [50364, 2425, 11, 1002, 0, 50414],
                "temperature": 0.0,
                "avg_logprob": -0.25,
                "compression_ratio": 0.8,
                "no_speech_prob": 0.01,
            }
        ],
        "usage": seconds,
    }
    if "word" in fields.get("timestamp_granularities[]", []):
        body["words"] = [
            {"word": _PUNCTUATION.sub("", word), "start": start, "end": end}
            for word, start, end in timed_words(text, duration)
        ]
    return body, _JSON


# --- ElevenLabs ----------------------------------------------------------------------------------------------------


def elevenlabs_error(fault: Fault) -> ErrorReply:
    """The error answer ElevenLabs gives for a status fault (``{"detail": {"status", "message"}}``)."""

    def body(status: str, message: str) -> dict[str, Any]:
        return {"detail": {"status": status, "message": message}}

    match fault.kind:
        case "unauthorized":
            return ErrorReply(401, body("invalid_api_key", "Invalid API key"))
        case "rate_limited":
            headers = retry_after_headers(fault.retry_after_s, with_ms=False)
            return ErrorReply(429, body("too_many_concurrent_requests", "Too many concurrent requests."), headers)
        case "overloaded":
            return ErrorReply(503, body("system_busy", "The system is experiencing heavy traffic."))
        case "context_too_long":
            return ErrorReply(400, body("invalid_parameters", "The audio is too long."))
        case _:
            return ErrorReply(500, body("internal_error", "An internal error occurred."))


def elevenlabs_answer(fields: Mapping[str, list[str]], granularity: str, text: str, duration: float) -> dict[str, Any]:
    """Scribe's answer: the text, the language (ISO-639-3), the duration, and timed words and spaces."""
    items: list[dict[str, Any]] = []
    if granularity != "none":
        for index, (word, start, end) in enumerate(timed_words(text, duration)):
            if index:
                items.append({"text": " ", "start": start, "end": start, "type": "spacing", "logprob": 0.0})
            items.append({"text": word, "start": start, "end": end, "type": "word", "logprob": -0.05})
    language = (fields.get("language_code") or ["en"])[0]
    return {
        "language_code": _ISO3.get(language, language),
        "language_probability": 0.98,
        "text": text,
        "words": items,
        "transcription_id": "stt-emu-0001",
        "audio_duration_secs": round(duration, 3),
    }


# --- Gemini --------------------------------------------------------------------------------------------------------


def gemini_answer(scenario: Scenario, model: str, durations: Sequence[float]) -> dict[str, Any]:
    """generateContent's answer to inline audio: the transcript as text, audio counted at 32 tokens a second."""
    audio_tokens = round(sum(durations) * 32)  # Gemini counts 32 tokens per second of audio
    usage = {
        "promptTokenCount": audio_tokens + 40,
        "candidatesTokenCount": len(scenario.text.split()) + 1,
        "totalTokenCount": audio_tokens + 40 + len(scenario.text.split()) + 1,
        "promptTokensDetails": [
            {"modality": "AUDIO", "tokenCount": audio_tokens},
            {"modality": "TEXT", "tokenCount": 40},
        ],
    }
    if scenario.finish == "content_filter":
        candidate: dict[str, Any] = {"finishReason": "SAFETY", "index": 0}
    else:
        parts = [{"text": scenario.text}]
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": "stt-emu"}
