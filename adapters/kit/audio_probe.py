"""Driven-adapter kit: ``PyAVAudioProbe``, the ``AudioProbe`` port on PyAV (FFmpeg's demuxers and decoders), and
``probe_audio``, the same answer for adapters that must read an upload themselves (the fake vendor).

An upload counts as audio when FFmpeg recognises its container, finds an audio stream in it and decodes that
stream's first frame. The duration is the container's own (header or index) when it states one, else the end of
the last packet, found by demuxing without decoding (a WebM recorded by a browser states none). The container is
reported as the MIME type and file extension vendors expect, since several of them tell formats apart by name.

Decoding runs in a worker thread: demuxing a 25 MB file takes tens of milliseconds the event loop must not lose.
"""

from __future__ import annotations

import asyncio
import io
from typing import Final

import attrs
import av
import av.container

from domain.transcription import AudioInfo

__all__ = ["PyAVAudioProbe", "container_type", "probe_audio"]

#: FFmpeg demuxer name -> (MIME type, extension) as the vendors' upload rules name them.
_CONTAINERS: Final[dict[str, tuple[str, str]]] = {
    "wav": ("audio/wav", ".wav"),
    "mp3": ("audio/mpeg", ".mp3"),
    "ogg": ("audio/ogg", ".ogg"),
    "flac": ("audio/flac", ".flac"),
    "matroska,webm": ("audio/webm", ".webm"),
    "mov,mp4,m4a,3gp,3g2,mj2": ("audio/mp4", ".m4a"),
    "aac": ("audio/aac", ".aac"),
    "aiff": ("audio/aiff", ".aiff"),
}
_DECODE_ERRORS: Final = (av.FFmpegError, ValueError, IndexError, OSError)


def container_type(format_name: str) -> tuple[str, str]:
    """(MIME type, extension) of an FFmpeg container; an unlisted one keeps FFmpeg's first name for it."""
    found = _CONTAINERS.get(format_name)
    if found is not None:
        return found
    first = format_name.split(",", 1)[0]
    return f"audio/{first}", f".{first}"


def _stated_duration(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if stream.duration is not None and stream.duration > 0 and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def _demuxed_duration(data: bytes) -> float:
    """The end of the last audio packet (a fresh pass: the first one already decoded past the start)."""
    end = 0.0
    with av.open(io.BytesIO(data), mode="r") as container:
        for packet in container.demux(container.streams.audio[0]):
            if packet.pts is not None and packet.time_base is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    return end


def probe_audio(data: bytes) -> AudioInfo | None:
    """What ``data`` holds as audio, or ``None`` when FFmpeg cannot find and decode an audio stream in it."""
    if not data:
        return None
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            decoded = next(iter(container.decode(stream)), None)
            if decoded is None:
                return None
            stated = _stated_duration(container, stream)
            mime_type, extension = container_type(container.format.name)
            info = AudioInfo(
                duration_s=0.0 if stated is None else round(stated, 3),
                mime_type=mime_type,
                extension=extension,
                codec=stream.codec_context.name,
                sample_rate=int(stream.sample_rate or decoded.sample_rate or 0),
                channels=int(stream.channels or 0),
            )
        if stated is None:
            info = attrs.evolve(info, duration_s=round(_demuxed_duration(data), 3))
        return info
    except _DECODE_ERRORS:
        return None


class PyAVAudioProbe:
    """``AudioProbe`` on PyAV, off the event loop."""

    async def probe(self, data: bytes) -> AudioInfo | None:
        """What ``data`` holds (``None``: not decodable audio)."""
        return await asyncio.to_thread(probe_audio, data)
