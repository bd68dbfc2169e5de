"""Domain: realtime voice. A client holds one conversation with a speech-to-speech model: audio (and text) goes in,
the model answers with audio and transcripts, calls tools, and is interrupted when the user talks over it.

Audio both ways is raw 16-bit little-endian mono PCM (``pcm16``): in, at the rate the client declares
(``RealtimeConfig.input_sample_rate``); out, always at ``REALTIME_OUTPUT_RATE`` (both vendors answer at 24 kHz; an
adapter whose vendor differs resamples). A session's *turns* are the model's responses: each ends with one
``RealtimeTurnDone`` saying whether it completed, was cancelled by the client, or was interrupted by the user's
speech. The audio bytes are never part of a ``repr`` (so never logged).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from attrs import field, frozen

from domain.metering import Units
from domain.types import JsonValue

__all__ = [
    "REALTIME_INPUT_RATES",
    "REALTIME_OUTPUT_RATE",
    "TURN_DETECTIONS",
    "RealtimeAudio",
    "RealtimeConfig",
    "RealtimeEvent",
    "RealtimeSpeechStarted",
    "RealtimeSpeechStopped",
    "RealtimeSummary",
    "RealtimeTool",
    "RealtimeToolCall",
    "RealtimeTranscript",
    "RealtimeTurnDone",
    "Speaker",
    "TurnDetection",
    "TurnStatus",
]

REALTIME_OUTPUT_RATE: Final = 24_000
"""Sample rate of the audio a session sends back (pcm16 mono)."""
REALTIME_INPUT_RATES: Final = (16_000, 24_000)
"""The rates a client may declare for its audio: Gemini Live listens at 16 kHz, OpenAI Realtime at 24 kHz; an adapter
resamples the other."""

TurnDetection = Literal["server_vad", "none"]
"""``server_vad``: the vendor hears where the user's turn ends and answers; ``none``: the client commits each turn."""
TURN_DETECTIONS: Final[tuple[str, ...]] = get_args(TurnDetection)

Speaker = Literal["user", "assistant"]
TurnStatus = Literal["completed", "cancelled", "interrupted", "failed"]


@frozen
class RealtimeTool:
    """A function the model may call: ``parameters`` is its JSON schema."""

    name: str
    description: str = ""
    parameters: dict[str, JsonValue] = field(factory=dict)


@frozen
class RealtimeConfig:
    """What the client's ``session.update`` asks for. ``voice`` ``None``: the vendor's default; ``metadata`` reaches
    the provider (the fake reads its scripted faults from it)."""

    voice: str | None = None
    instructions: str | None = None
    input_sample_rate: int = 24_000
    turn_detection: TurnDetection = "server_vad"
    input_transcription: bool = True
    tools: tuple[RealtimeTool, ...] = ()
    temperature: float | None = None
    metadata: dict[str, str] = field(factory=dict)


@frozen
class RealtimeAudio:
    """A piece of the model's spoken answer (pcm16 at ``REALTIME_OUTPUT_RATE``) in response ``response_id``."""

    data: bytes = field(repr=lambda data: f"<{len(data)} bytes>")
    response_id: str = ""


@frozen
class RealtimeTranscript:
    """Text of what was said: by the ``user`` (the vendor's transcription of the input audio) or the ``assistant``
    (the words of its audio answer). ``final=False`` pieces are deltas to append; the ``final=True`` one carries the
    item's whole text. ``item_id`` ties the pieces of one utterance together."""

    speaker: Speaker
    text: str
    final: bool
    item_id: str = ""


@frozen
class RealtimeSpeechStarted:
    """The vendor heard the user start speaking: a client playing the answer stops (the vendor interrupts it)."""


@frozen
class RealtimeSpeechStopped:
    """The vendor heard the user stop speaking (server VAD): the user's turn is over and the answer comes next. The
    clock to that answer's first audio starts here, as it does at a client's commit, text or tool result."""


@frozen
class RealtimeToolCall:
    """The model calls ``name`` with ``arguments`` (a JSON text); the client answers with ``tool.result`` and the
    same ``call_id``."""

    call_id: str
    name: str
    arguments: str


@frozen
class RealtimeTurnDone:
    """One model response ended (``status``); ``usage`` is what the vendor reported for it, when it does."""

    response_id: str
    status: TurnStatus
    usage: Units | None = None


RealtimeEvent = (
    RealtimeAudio
    | RealtimeTranscript
    | RealtimeSpeechStarted
    | RealtimeSpeechStopped
    | RealtimeToolCall
    | RealtimeTurnDone
)


@frozen
class RealtimeSummary:
    """A session's totals (its ``done`` event, its usage record and its one log line): seconds of audio in (sent to
    the vendor) and out (received), the turns, the tokens the vendor reported, and the cost (``None``: unpriced)."""

    input_audio_seconds: float
    output_audio_seconds: float
    turns: int
    units: Units
    cost_usd: float | None
    duration_s: float
