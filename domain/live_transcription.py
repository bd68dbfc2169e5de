"""Domain: live speech-to-text. How a client's audio is framed, what a vendor's session says while it listens, and
how a session ends.

A live session carries raw 16-bit little-endian mono PCM (``pcm16``) at the sample rate the client declared in its
``start`` message. Vendors answer in *segments* (an utterance, a sentence: the vendor decides): each segment's
``partial`` hypotheses replace one another while audio still arrives, then one ``final`` fixes its text. Timings are
seconds from the first byte of the session's audio, when the vendor gives them.

A session ends exactly once: ``done`` (the client sent ``end`` and every final came), ``error`` (the vendor failed,
the client went silent or sent too much) or ``cancelled`` (the client left). The audio bytes are never part of a
``repr`` (so never logged).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from attrs import field, frozen

from domain.transcription import Word

__all__ = [
    "LIVE_ENCODINGS",
    "LIVE_SAMPLE_RATES",
    "SAMPLE_BYTES",
    "LiveConfig",
    "LiveEncoding",
    "LiveSummary",
    "LiveTranscript",
    "TranscriptKind",
    "pcm_seconds",
]

LiveEncoding = Literal["pcm16"]
LIVE_ENCODINGS: Final[tuple[str, ...]] = get_args(LiveEncoding)
#: The rates a client may declare: the PCM rates the live vendors take (ElevenLabs' ``pcm_*`` formats; OpenAI's
#: 24 kHz is reached by resampling in its adapter).
LIVE_SAMPLE_RATES: Final = (8_000, 16_000, 22_050, 24_000, 44_100, 48_000)
SAMPLE_BYTES: Final = 2
"""Bytes per ``pcm16`` mono sample."""

TranscriptKind = Literal["partial", "final"]


def pcm_seconds(byte_count: int, sample_rate: int) -> float:
    """Seconds of ``pcm16`` mono audio in ``byte_count`` bytes at ``sample_rate``."""
    return byte_count / (SAMPLE_BYTES * sample_rate)


@frozen
class LiveConfig:
    """How the client's audio is framed (from its ``start`` message) and what it asks of the session.

    ``language`` is an ISO-639-1 hint (``None``: the vendor detects it); ``metadata`` reaches the provider (the fake
    reads its scripted faults from it)."""

    sample_rate: int = 16_000
    encoding: LiveEncoding = "pcm16"
    language: str | None = None
    metadata: dict[str, str] = field(factory=dict)


@frozen
class LiveTranscript:
    """What a vendor's session said: a ``partial`` hypothesis of segment ``segment`` (0-based, in the order the
    segments began), replacing that segment's previous one, or its ``final`` text. ``start_s``/``end_s`` locate the
    segment in the session's audio when the vendor says; ``words`` carry word timings when it gives them."""

    kind: TranscriptKind
    text: str
    segment: int
    start_s: float | None = None
    end_s: float | None = None
    words: tuple[Word, ...] = ()


@frozen
class LiveSummary:
    """The totals a finished session reports in its ``done`` event (and bills): the finals joined, the audio the
    vendor received, the words and segments, and the cost (``None``: unpriced)."""

    text: str
    audio_seconds: float
    segments: int
    words: int
    cost_usd: float | None
