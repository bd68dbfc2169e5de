"""Test helper: real audio made in the test. A tone (or a few, like syllables) as 16-bit mono WAV written with the
standard library's ``wave``, and the same clip re-encoded by PyAV into the containers uploads arrive in."""

from __future__ import annotations

import io
import math
import struct
import wave
from typing import Final

import av

__all__ = ["CONTAINERS", "encoded", "tone_wav"]

#: name -> (FFmpeg muxer, encoder, file extension, MIME type)
CONTAINERS: Final[dict[str, tuple[str, str, str, str]]] = {
    "mp3": ("mp3", "libmp3lame", ".mp3", "audio/mpeg"),
    "ogg": ("ogg", "libopus", ".ogg", "audio/ogg"),
    "flac": ("flac", "flac", ".flac", "audio/flac"),
    "webm": ("webm", "libopus", ".webm", "audio/webm"),
    "m4a": ("ipod", "aac", ".m4a", "audio/mp4"),
}


def tone_wav(seconds: float = 1.5, *, rate: int = 16_000, frequency: float = 440.0) -> bytes:
    """A WAV of ``seconds`` of a sine tone that rises and falls in loudness four times a second (like speech)."""
    frames = int(seconds * rate)
    samples = (
        int(12_000 * abs(math.sin(math.pi * 4 * i / rate)) * math.sin(2 * math.pi * frequency * i / rate))
        for i in range(frames)
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"".join(struct.pack("<h", sample) for sample in samples))
    return buffer.getvalue()


def encoded(wav: bytes, container: str) -> bytes:
    """``wav`` re-encoded into ``container`` (a key of ``CONTAINERS``)."""
    muxer, codec, _extension, _mime = CONTAINERS[container]
    out = io.BytesIO()
    with av.open(io.BytesIO(wav), mode="r") as source, av.open(out, mode="w", format=muxer) as target:
        rate = 48_000 if codec == "libopus" else 16_000
        stream = target.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, av.audio.stream.AudioStream)
        for frame in source.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    return out.getvalue()
