"""Domain: text-to-speech requests, the audio they stream, and the voices a model offers.

Audio travels as the encoded bytes of the asked format, in pieces as the vendor produced them (an ``AudioChunk``);
nothing in the core buffers a whole clip. ``pcm`` is raw 16-bit little-endian mono at ``sample_rate`` (24 kHz when
the request names none); every other format is a self-describing stream (MP3 frames, Ogg Opus pages, ADTS AAC,
FLAC, and WAV whose header leaves the length open, as streamed WAV must).
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias, get_args

from attrs import frozen

__all__ = [
    "AUDIO_FORMATS",
    "DEFAULT_PCM_RATE",
    "MAX_SPEED",
    "MIN_SPEED",
    "PCM_SAMPLE_RATES",
    "AudioChunk",
    "AudioFormat",
    "SpeechOptions",
    "SpeechRequest",
    "Voice",
    "VoiceList",
    "content_type",
    "output_rate",
]

AudioFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
AUDIO_FORMATS: Final[tuple[str, ...]] = get_args(AudioFormat)
PCM_SAMPLE_RATES: Final = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
"""The rates raw PCM may be asked at (the ones every vendor and resampler here agree on)."""
DEFAULT_PCM_RATE: Final = 24000
MIN_SPEED: Final = 0.25
MAX_SPEED: Final = 4.0

AudioChunk: TypeAlias = bytes
"""One piece of the encoded audio stream, in order (concatenated, the pieces are the whole file)."""

_MIME_TYPES: Final[dict[str, str]] = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
}


@frozen
class SpeechRequest:
    """``POST /api/v1/audio/speech``: speak ``input`` with ``model`` in ``voice``, encoded as ``format``.

    ``sample_rate`` applies to ``pcm`` only; ``speed`` is a multiplier (1.0 normal); ``instructions`` steer the
    delivery (tone, accent, pace) on models that take them."""

    model: str
    input: str
    voice: str | None = None
    format: AudioFormat = "mp3"
    sample_rate: int | None = None
    speed: float | None = None
    instructions: str | None = None


@frozen
class SpeechOptions:
    """A chat request's ``speech``: voice the answer as it streams (the fields of ``SpeechRequest`` but the text).

    Each segment of the answer is spoken as its own clip in ``format``; mp3, aac, opus (chained Ogg) and pcm segments
    concatenate into one playable stream."""

    model: str
    voice: str | None = None
    format: AudioFormat = "mp3"
    sample_rate: int | None = None
    speed: float | None = None
    instructions: str | None = None

    def request(self, text: str) -> SpeechRequest:
        """The speech request that speaks ``text`` with these options."""
        return SpeechRequest(self.model, text, self.voice, self.format, self.sample_rate, self.speed, self.instructions)


@frozen
class Voice:
    """One voice a model offers: ``id`` is what a request's ``voice`` names."""

    id: str
    name: str
    language: str | None = None
    gender: str | None = None
    description: str | None = None


@frozen
class VoiceList:
    """``GET /api/v1/voices?model=``: the voices of one model, in the vendor's order."""

    model: str
    voices: list[Voice]


def output_rate(request: SpeechRequest) -> int | None:
    """The sample rate of raw PCM output (``None`` for the self-describing formats)."""
    if request.format != "pcm":
        return None
    return request.sample_rate or DEFAULT_PCM_RATE


def content_type(request: SpeechRequest) -> str:
    """The MIME type of the audio a request asks for (raw PCM says its rate and sample layout)."""
    rate = output_rate(request)
    if rate is not None:
        return f"audio/pcm; rate={rate}; channels=1; encoding=s16le"
    return _MIME_TYPES[request.format]
