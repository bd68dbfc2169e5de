"""Test helper: raw ``pcm16`` audio for live transcription, made in the test. The samples of ``audio_clips.tone_wav``
(a tone whose loudness rises and falls like speech) read back from the WAV, silence, and the frames a client sends."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator

from tests.support.audio_clips import tone_wav

__all__ = ["frames", "silence", "tone_pcm", "two_utterances"]


def tone_pcm(seconds: float = 1.5, *, rate: int = 16_000) -> bytes:
    """``seconds`` of the speech-like tone as 16-bit little-endian mono samples (decoded back from its WAV)."""
    with wave.open(io.BytesIO(tone_wav(seconds, rate=rate)), "rb") as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, rate)
        return reader.readframes(reader.getnframes())


def silence(seconds: float, *, rate: int = 16_000) -> bytes:
    """``seconds`` of digital silence."""
    return b"\x00\x00" * int(seconds * rate)


def two_utterances(*, rate: int = 16_000) -> bytes:
    """Tone, a second of silence (a pause every vendor's VAD hears), tone, a short silence."""
    return tone_pcm(1.0, rate=rate) + silence(1.0, rate=rate) + tone_pcm(1.0, rate=rate) + silence(0.3, rate=rate)


def frames(pcm: bytes, *, ms: int = 100, rate: int = 16_000) -> Iterator[bytes]:
    """``pcm`` cut into the ``ms``-long binary frames a client streams."""
    step = rate * 2 * ms // 1000
    for offset in range(0, len(pcm), step):
        yield pcm[offset : offset + step]
