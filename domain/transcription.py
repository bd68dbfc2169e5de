"""Domain: speech-to-text for whole files. The request (audio bytes and options), what a vendor returns, what the
decoder found in the file, and what the API answers.

Audio travels as bytes inside the core and is never part of a ``repr`` (so never logged). Whether an upload may be
audio at all is decided from its declared content type, or from its file name when the client declared nothing
useful (``application/octet-stream``, which is what ``curl -F file=@clip.wav`` sends); whether it *is* audio is the
decoder's answer (``AudioInfo``), which also gives the duration every vendor is billed by.
"""

from __future__ import annotations

import mimetypes
from typing import Final, Literal, get_args

from attrs import field, frozen

__all__ = [
    "CONTAINER_TYPES",
    "GENERIC_TYPES",
    "MIN_DURATION_S",
    "TIMESTAMPS",
    "AudioInfo",
    "Segment",
    "Timestamps",
    "Transcript",
    "Transcription",
    "TranscriptionRequest",
    "TranscriptionUsage",
    "Word",
    "audio_media_type",
    "renamed",
]

Timestamps = Literal["none", "segment", "word"]
TIMESTAMPS: Final[tuple[str, ...]] = get_args(Timestamps)
MIN_DURATION_S: Final = 0.1
"""Shorter audio holds no speech (OpenAI refuses anything under 0.1 s): refused before any vendor is called."""

#: Non-``audio/*`` types that are audio containers as often as video ones (vendors take them as audio files).
CONTAINER_TYPES: Final = frozenset(
    ("video/mp4", "video/webm", "video/ogg", "video/mpeg", "video/quicktime", "video/x-matroska", "application/ogg")
)
#: Types that say nothing about the bytes: the file name's extension decides instead.
GENERIC_TYPES: Final = frozenset(("", "application/octet-stream", "binary/octet-stream"))
#: Extensions ``mimetypes`` may not know on every system (its table comes partly from the OS).
_EXTENSIONS: Final = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".mpga": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".mp4": "video/mp4",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".webm": "audio/webm",
    ".aac": "audio/aac",
    ".aiff": "audio/aiff",
    ".aif": "audio/aiff",
}


def _is_audio_type(media_type: str) -> bool:
    return media_type.startswith("audio/") or media_type in CONTAINER_TYPES


def audio_media_type(content_type: str | None, filename: str | None) -> str | None:
    """The upload's media type when it may be audio: its declared ``audio/*`` (or container) type, else for a
    generic declaration the type its file name's extension implies; ``None`` when it cannot be audio."""
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    if declared not in GENERIC_TYPES:
        return declared if _is_audio_type(declared) else None
    name = (filename or "").lower()
    dot = name.rfind(".")
    guessed = _EXTENSIONS.get(name[dot:]) if dot >= 0 else None
    if guessed is None:
        guessed = mimetypes.guess_type(name, strict=False)[0]
    return guessed if guessed is not None and _is_audio_type(guessed) else None


def renamed(filename: str, extension: str) -> str:
    """``filename`` with ``extension`` (``".wav"``): vendors tell formats apart by the name's extension."""
    stem = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    dot = stem.rfind(".")
    stem = stem[:dot] if dot > 0 else stem
    return f"{stem or 'audio'}{extension}"


@frozen
class AudioInfo:
    """What decoding the file found: its length, and the container as a MIME type and file extension."""

    duration_s: float
    mime_type: str
    extension: str
    """With the dot (``".wav"``)."""
    codec: str
    sample_rate: int
    channels: int


@frozen
class TranscriptionRequest:
    """``POST /api/v1/audio/transcriptions``: the audio and how to transcribe it.

    ``language`` is an ISO-639-1 hint (``None``: the model detects it); ``prompt`` guides spelling and style where
    the model takes one; ``timestamps`` asks for timings: ``segment`` for segments, ``word`` for words and
    segments. ``fallbacks`` are models to try, in order, when this one fails. ``metadata`` reaches the provider (the
    fake reads its scripted faults from it)."""

    model: str
    audio: bytes = field(repr=lambda data: f"<{len(data)} bytes>")
    filename: str = "audio"
    content_type: str = "application/octet-stream"
    language: str | None = None
    prompt: str | None = None
    timestamps: Timestamps = "none"
    fallbacks: tuple[str, ...] = ()
    metadata: dict[str, str] = field(factory=dict)


@frozen
class Segment:
    """A stretch of the transcript with its timing (seconds from the start of the audio)."""

    start_s: float
    end_s: float
    text: str


@frozen
class Word:
    """One word with its timing (seconds from the start of the audio)."""

    start_s: float
    end_s: float
    text: str


@frozen
class Transcript:
    """One provider call's answer. ``duration_s`` is the vendor's own measure when it reports one; ``segments`` and
    ``words`` are filled when asked for and the model gives them."""

    text: str
    language: str | None = None
    duration_s: float | None = None
    segments: tuple[Segment, ...] = ()
    words: tuple[Word, ...] = ()


# --- what the API answers ---------------------------------------------------------------------------------------


@frozen
class TranscriptionUsage:
    """What the transcription consumed: seconds of audio (as decoded here) and their cost (``None``: unpriced)."""

    audio_seconds: float
    cost_usd: float | None


@frozen
class Transcription:
    """``data`` of ``POST /api/v1/audio/transcriptions``. ``segments`` and ``words`` are ``null`` unless asked for
    with ``timestamps``."""

    model: str
    """The model that served, ``provider/id``."""
    text: str
    language: str | None
    duration_s: float
    usage: TranscriptionUsage
    segments: list[Segment] | None = None
    words: list[Word] | None = None
