"""HTTP boundary (OpenAI door): audio requests to the domain ``SpeechRequest`` / ``TranscriptionRequest``, and the
transcript back as OpenAI formats it (``json``, ``text`` or ``verbose_json``).

The transcription body is OpenAI's multipart form (``file``, ``model``, ``language``, ``prompt``,
``response_format``, ``timestamp_granularities[]``, ``temperature``...), read leniently as OpenAI's server does: a
field Switchyard does not serve is ignored, a value it cannot serve (``srt``, ``stream=true``) is a 400 naming the
field. The file itself is judged by ``TranscriptionService`` exactly as on the native route.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Literal, cast

import msgspec

from domain.errors import ServiceError, ValidationError
from domain.speech import AUDIO_FORMATS, AudioFormat, SpeechRequest
from domain.transcription import Timestamps, Transcription, TranscriptionRequest
from entrypoints.http.doors.openai.body import invalid
from entrypoints.http.doors.openai.wire_audio import (
    OpenAISpeechRequest,
    OpenAITranscription,
    OpenAITranscriptionSegment,
    OpenAITranscriptionUsage,
    OpenAITranscriptionVerbose,
    OpenAITranscriptionWord,
)

__all__ = [
    "TRANSCRIPT_FORMATS",
    "TranscriptFormat",
    "renamed_refusal",
    "speech_request",
    "transcript_answer",
    "transcription_request",
]

TranscriptFormat = Literal["json", "text", "verbose_json"]
TRANSCRIPT_FORMATS: Final[tuple[str, ...]] = ("json", "text", "verbose_json")
_GRANULARITIES: Final = ("segment", "word")


def speech_request(body: OpenAISpeechRequest) -> SpeechRequest:
    """The domain request for OpenAI's speech body (``response_format`` is the domain's ``format``)."""
    audio_format = body.response_format or "mp3"
    if audio_format not in AUDIO_FORMATS:
        raise invalid("response_format", f"expected one of {', '.join(AUDIO_FORMATS)}, got {audio_format!r}")
    if body.stream_format not in (None, "audio"):
        raise invalid("stream_format", "only 'audio' is served: the answer is the audio bytes, streamed")
    return SpeechRequest(
        model=body.model,
        input=body.input,
        voice=body.voice,
        format=cast(AudioFormat, audio_format),
        speed=body.speed,
        instructions=body.instructions,
    )


def _first(fields: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = [value for value in fields.get(name, ()) if value != ""]
    return values[0] if values else None


def _timestamps(fields: Mapping[str, Sequence[str]], response_format: str) -> Timestamps:
    # The SDK sends a list as repeated ``timestamp_granularities[]``; curl users often drop the brackets.
    asked = [*fields.get("timestamp_granularities[]", ()), *fields.get("timestamp_granularities", ())]
    for value in asked:
        if value not in _GRANULARITIES:
            raise invalid("timestamp_granularities", f"expected 'segment' or 'word', got {value!r}")
    if response_format != "verbose_json":
        if asked:
            raise invalid("timestamp_granularities", "requires response_format=verbose_json")
        return "none"
    return "word" if "word" in asked else "segment"


def transcription_request(
    fields: Mapping[str, Sequence[str]], *, audio: bytes, filename: str, content_type: str
) -> tuple[TranscriptionRequest, TranscriptFormat]:
    """The domain request for OpenAI's transcription form, and the format to answer in."""
    model = _first(fields, "model")
    if model is None:
        raise invalid("model", "this required parameter is missing")
    response_format = _first(fields, "response_format") or "json"
    if response_format not in TRANSCRIPT_FORMATS:
        raise invalid("response_format", f"expected one of {', '.join(TRANSCRIPT_FORMATS)}, got {response_format!r}")
    if (_first(fields, "stream") or "false").lower() not in ("false", "0"):
        raise invalid("stream", "streamed transcription is not served: send stream=false or leave it out")
    request = TranscriptionRequest(
        model=model,
        audio=audio,
        filename=filename or "audio",
        content_type=content_type,
        language=_first(fields, "language"),
        prompt=_first(fields, "prompt"),
        timestamps=_timestamps(fields, response_format),
    )
    return request, cast(TranscriptFormat, response_format)


def renamed_refusal(error: ValidationError) -> ServiceError:
    """The service names OpenAI's ``response_format=verbose_json`` as ``timestamps``: name it as the client sent
    it."""
    if error.field != "timestamps":
        return error
    return invalid("response_format", f"verbose_json needs timings, and {error.reason}: ask for json or text")


def transcript_answer(transcription: Transcription, response_format: TranscriptFormat) -> tuple[bytes, str]:
    """The body and its Content-Type, as OpenAI answers ``response_format`` (``text`` ends with a newline)."""
    if response_format == "text":
        return (transcription.text + "\n").encode(), "text/plain; charset=utf-8"
    usage = OpenAITranscriptionUsage(seconds=transcription.usage.audio_seconds)
    if response_format == "json":
        return msgspec.json.encode(OpenAITranscription(text=transcription.text, usage=usage)), "application/json"
    segments = [
        OpenAITranscriptionSegment(id=index, start=segment.start_s, end=segment.end_s, text=segment.text)
        for index, segment in enumerate(transcription.segments or ())
    ]
    words = None
    if transcription.words is not None:
        words = [OpenAITranscriptionWord(word=w.text, start=w.start_s, end=w.end_s) for w in transcription.words]
    verbose = OpenAITranscriptionVerbose(
        text=transcription.text,
        language=transcription.language or "",
        duration=transcription.duration_s,
        usage=usage,
        segments=segments,
        words=words,
    )
    return msgspec.json.encode(verbose), "application/json"
