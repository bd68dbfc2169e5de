"""HTTP boundary (OpenAI door): the bodies of OpenAI's audio API (speech, transcriptions), as attrs classes.

As in ``wire``: fields Switchyard does not serve are left out (accepted and ignored), a known field of the wrong type
is a 400 naming it. ``response_format`` is a plain string here, checked by ``audio``, so a value OpenAI has and
Switchyard does not serve (``srt``, ``sse`` streaming) is refused naming the parameter rather than as a type error.
"""

from __future__ import annotations

from typing import Literal

from attrs import frozen

__all__ = [
    "OpenAISpeechRequest",
    "OpenAITranscription",
    "OpenAITranscriptionSegment",
    "OpenAITranscriptionUsage",
    "OpenAITranscriptionVerbose",
    "OpenAITranscriptionWord",
]


@frozen
class OpenAISpeechRequest:
    """``POST /v1/audio/speech``: speak ``input`` with ``model`` in ``voice`` (optional where the model has a
    default voice), as ``response_format`` (``mp3`` by default; ``pcm`` is 24 kHz 16-bit little-endian mono, as
    OpenAI's)."""

    model: str
    input: str
    voice: str | None = None
    response_format: str | None = None
    speed: float | None = None
    instructions: str | None = None
    stream_format: str | None = None


@frozen
class OpenAITranscriptionUsage:
    """The seconds of audio billed (Switchyard's decoded length, not rounded up)."""

    seconds: float
    type: Literal["duration"] = "duration"


@frozen
class OpenAITranscription:
    """``response_format: json`` (the default): the text."""

    text: str
    usage: OpenAITranscriptionUsage


@frozen
class OpenAITranscriptionSegment:
    """A timed stretch of the transcript. Switchyard has no token-level statistics: ``tokens`` is empty and the
    scores are neutral (0.0), present because the SDK's type requires them."""

    id: int
    start: float
    end: float
    text: str
    seek: int = 0
    tokens: tuple[int, ...] = ()
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0


@frozen
class OpenAITranscriptionWord:
    """A timed word (with ``timestamp_granularities[]=word``)."""

    word: str
    start: float
    end: float


@frozen
class OpenAITranscriptionVerbose:
    """``response_format: verbose_json``: the text, language (the ISO-639-1 code), duration and segments, and with
    ``timestamp_granularities[]=word`` the words."""

    text: str
    language: str
    duration: float
    usage: OpenAITranscriptionUsage
    segments: list[OpenAITranscriptionSegment]
    words: list[OpenAITranscriptionWord] | None = None
    task: str = "transcribe"
