"""Driven-adapter kit: encode a stream of raw PCM into the audio format a speech request asks for, as it arrives.

Vendors that answer raw PCM (Gemini TTS, ElevenLabs' ``pcm_*``, the fake's generated tone) hand their samples here;
PyAV (FFmpeg's libraries, bundled in its wheels) does the encoding, so no codec is written by hand. Each PCM piece
fed in yields the encoded bytes ready so far, so the first audio goes out long before the clip ends: MP3 frames, Ogg
Opus pages (flushed every 100 ms of audio rather than FFmpeg's default second), ADTS AAC, FLAC, and WAV whose header
leaves the length open (the streamed-WAV convention, since the size is unknown when the header is sent). Raw ``pcm``
output is the input resampled to the asked rate, or passed through untouched when the rates agree.

Encoding runs in a worker thread: one vendor chunk can hold seconds of audio, and encoding it (~5 ms per second of
MP3) must not stall the event loop that relays every other stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Final

import av
from av.audio.resampler import AudioResampler

from domain.errors import ProviderError

__all__ = ["PCM_CONTAINERS", "AudioEncoder", "encode_pcm_stream"]

#: format -> (FFmpeg muxer, encoder, bit rate or None for lossless/raw).
PCM_CONTAINERS: Final[dict[str, tuple[str, str, int | None]]] = {
    "mp3": ("mp3", "libmp3lame", 64_000),
    "opus": ("ogg", "libopus", 32_000),
    "aac": ("adts", "aac", 64_000),
    "flac": ("flac", "flac", None),
    "wav": ("wav", "pcm_s16le", None),
}
_OPUS_RATE: Final = 48_000  # libopus encodes at 8/12/16/24/48 kHz only; 48 kHz takes any input after resampling
_OGG_PAGE_US: Final = "100000"  # one Ogg page per 100 ms of audio, so Opus streams out instead of per second
_SAMPLE_BYTES: Final = 2  # 16-bit mono


class _Sink:
    """A write-only, non-seekable file for the muxer: collects what it writes until taken."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


class AudioEncoder:
    """Encodes 16-bit little-endian mono PCM at ``in_rate`` into ``audio_format`` (``pcm``: at ``out_rate``).

    ``encode`` each piece as it comes (any length: a sample split across two pieces is joined), then ``finish`` once
    for the encoder's tail (the last frames, the container's trailer)."""

    def __init__(self, audio_format: str, *, in_rate: int, out_rate: int | None = None, provider: str) -> None:
        self._provider = provider
        self._in_rate = in_rate
        self._pts = 0
        self._carry = b""
        self._sink = _Sink()
        self._container: av.container.OutputContainer | None = None
        self._stream: av.audio.stream.AudioStream | None = None
        self._resampler: AudioResampler | None = None
        if audio_format == "pcm":
            if out_rate is not None and out_rate != in_rate:
                self._resampler = AudioResampler(format="s16", layout="mono", rate=out_rate)
            return
        if audio_format not in PCM_CONTAINERS:
            raise ValueError(f"no encoder for audio format {audio_format!r}")
        muxer, codec, bit_rate = PCM_CONTAINERS[audio_format]
        options = {"page_duration": _OGG_PAGE_US} if muxer == "ogg" else {}
        self._container = av.open(self._sink, mode="w", format=muxer, options=options)
        rate = _OPUS_RATE if codec == "libopus" else in_rate
        stream = self._container.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, av.audio.stream.AudioStream)
        self._stream = stream
        if bit_rate is not None:
            self._stream.bit_rate = bit_rate

    @property
    def passthrough(self) -> bool:
        """Raw PCM out at the input rate: the bytes go out as they came."""
        return self._container is None and self._resampler is None

    def encode(self, pcm: bytes) -> bytes:
        """The encoded bytes ready after ``pcm`` (often empty while an encoder fills its first frame)."""
        if self.passthrough:
            return pcm
        data = self._carry + pcm
        whole = len(data) - len(data) % _SAMPLE_BYTES
        self._carry = data[whole:]
        if not whole:
            return b""
        frame = av.AudioFrame(format="s16", layout="mono", samples=whole // _SAMPLE_BYTES)
        frame.planes[0].update(data[:whole])
        frame.sample_rate = self._in_rate
        frame.pts = self._pts
        self._pts += frame.samples
        return self._run(frame)

    def finish(self) -> bytes:
        """The encoder's tail: buffered frames, then the container's trailer."""
        if self.passthrough:
            return b""
        tail = self._run(None)
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except av.FFmpegError as exc:
                raise self._failure(exc) from exc
            tail += self._sink.take()
        return tail

    def close(self) -> None:
        """Release the encoder without its tail (the stream was cut)."""
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(av.FFmpegError):  # already failed: nothing more to release
                container.close()

    def _run(self, frame: av.AudioFrame | None) -> bytes:
        try:
            if self._resampler is not None:
                return b"".join(_pcm_bytes(out) for out in self._resampler.resample(frame))
            assert self._container is not None
            assert self._stream is not None
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except av.FFmpegError as exc:
            raise self._failure(exc) from exc
        return self._sink.take()

    def _failure(self, exc: BaseException) -> ProviderError:
        return ProviderError(self._provider, f"{self._provider} audio could not be encoded", original_error=exc)


def _pcm_bytes(frame: av.AudioFrame) -> bytes:
    """A packed s16 mono frame's samples (its plane may be padded past them)."""
    return bytes(frame.planes[0])[: frame.samples * _SAMPLE_BYTES]


async def encode_pcm_stream(
    pcm: AsyncIterator[bytes],
    audio_format: str,
    *,
    in_rate: int,
    out_rate: int | None = None,
    provider: str,
) -> AsyncGenerator[bytes, None]:
    """``pcm`` encoded as ``audio_format`` piece by piece (empty pieces skipped); the source is closed however the
    stream ends, and the encoder's tail goes out only when the source ended normally."""
    encoder = AudioEncoder(audio_format, in_rate=in_rate, out_rate=out_rate, provider=provider)
    finished = False
    try:
        async for piece in pcm:
            encoded = piece if encoder.passthrough else await asyncio.to_thread(encoder.encode, piece)
            if encoded:
                yield encoded
        tail = await asyncio.to_thread(encoder.finish)
        finished = True
        if tail:
            yield tail
    finally:
        if not finished:
            encoder.close()
        aclose = getattr(pcm, "aclose", None)
        if aclose is not None:
            await aclose()
