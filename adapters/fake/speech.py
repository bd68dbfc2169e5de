"""Driven adapter: ``FakeSpeechProvider``, a deterministic SpeechProvider that speaks real, playable audio.

Each character of the text becomes 60 ms of sound (divided by ``speed``): a letter or digit a tone whose pitch comes
from the character and the voice, anything else silence, so the clip's length follows the text and another voice
sounds different. The samples (24 kHz, 16-bit mono) are encoded in the asked format by the adapter kit's PyAV
encoder and streamed a few characters at a time, as a vendor streams.

Voices are the catalog entry's ``voices`` (any name when it lists none). Faults, as for the other fakes, come from
the entry's ``default_params`` or from a marker in the text, which is not spoken:
``[[fake fake_error=rate_limited fake_retry_after=0 fake_fail_times=1]]``. ``fake_error`` is one of
``FAKE_SPEECH_ERRORS``; ``fake_fail_after = N`` fails after N audio chunks went out (a stream cut mid-clip);
``fake_fail_times = N`` fails only the first N calls with the same ``fake_key`` (default: model and text);
``fake_delay_ms`` waits before the first chunk and ``fake_chunk_delay_ms`` between chunks.
"""

from __future__ import annotations

import array
import asyncio
import hashlib
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from typing import Any, Final

from adapters.fake.faults import FailureCounter, scripted_fault
from adapters.kit.audio import encode_pcm_stream
from domain.catalog import ModelSpec
from domain.errors import ServiceError, ValidationError
from domain.speech import AudioChunk, SpeechRequest, Voice, output_rate

__all__ = ["CHARACTER_SECONDS", "FAKE_SPEECH_ERRORS", "SAMPLE_RATE", "FakeSpeechProvider", "spoken_text"]

FAKE_SPEECH_ERRORS: Final = ("rate_limited", "provider_error", "overloaded", "timeout", "auth")
SAMPLE_RATE: Final = 24_000
CHARACTER_SECONDS: Final = 0.06
"""Audio per character of text at speed 1.0."""
_CHARACTERS_PER_CHUNK: Final = 5  # ~300 ms of audio per chunk: small enough to stream, large enough to encode well
_AMPLITUDE: Final = 9000
_PITCHES: Final = (196.0, 220.0, 247.0, 262.0, 294.0, 330.0, 349.0, 392.0, 440.0, 494.0, 523.0, 587.0)
_MARKER: Final = re.compile(r"\[\[fake((?:\s+\w+=[^\s\]]*)*)\s*\]\]")


def spoken_text(text: str) -> str:
    """The text the fake speaks: ``text`` without its fault markers."""
    return _MARKER.sub("", text)


def _marker_options(text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for match in _MARKER.finditer(text):
        for pair in match.group(1).split():
            key, _, value = pair.partition("=")
            options[key] = value
    return options


@cache
def _period(frequency: float) -> bytes:
    """One period of a sine at ``frequency`` (as 16-bit samples at ``SAMPLE_RATE``)."""
    length = max(2, round(SAMPLE_RATE / frequency))
    return array.array("h", (round(_AMPLITUDE * math.sin(2 * math.pi * i / length)) for i in range(length))).tobytes()


def _character(char: str, voice_shift: int, samples: int) -> bytes:
    """``samples`` of sound for one character: a tone for a letter or digit, silence otherwise."""
    if not char.isalnum():
        return bytes(2 * samples)
    period = _period(_PITCHES[(ord(char.lower()) + voice_shift) % len(_PITCHES)])
    repeats = (2 * samples) // len(period) + 1
    return (period * repeats)[: 2 * samples]


def _voice_shift(voice: str | None) -> int:
    return hashlib.sha256((voice or "").encode()).digest()[0] % len(_PITCHES)


class FakeSpeechProvider:
    """The ``fake`` vendor's ``SpeechProvider``. ``sleep`` is injectable so delays cost nothing in unit tests."""

    def __init__(self, *, name: str = "fake", sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._name = name
        self._sleep = sleep
        self._failures = FailureCounter()
        self.calls = 0

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def voices(self, model: ModelSpec) -> list[Voice]:
        """The entry's voices (the fake has no voice API)."""
        return [Voice(id=voice, name=voice.title(), language="en") for voice in model.voices]

    def synthesize(self, request: SpeechRequest, model: ModelSpec) -> AsyncIterator[AudioChunk]:
        """The clip of ``request.input`` in ``request.format``, a few characters per chunk."""
        return self._synthesize(request, model)

    async def _synthesize(self, request: SpeechRequest, model: ModelSpec) -> AsyncIterator[AudioChunk]:
        self.calls += 1
        options = {**model.default_params, **_marker_options(request.input)}
        if model.voices and request.voice is not None and request.voice not in model.voices:
            raise ValidationError("voice", f"{model.qualified_id} has no voice {request.voice!r}")
        delay_ms = options.get("fake_delay_ms")
        if delay_ms is not None:
            await self._sleep(float(delay_ms) / 1000.0)
        failure = self._failure(options, f"{model.qualified_id}:{request.input}")
        fail_after = int(options["fake_fail_after"]) if "fake_fail_after" in options else None
        if failure is not None and fail_after is None:
            raise failure
        chunk_delay_ms = options.get("fake_chunk_delay_ms")
        pcm = self._pcm(spoken_text(request.input), request)
        audio = encode_pcm_stream(
            pcm, request.format, in_rate=SAMPLE_RATE, out_rate=output_rate(request), provider=self._name
        )
        sent = 0
        try:
            async for chunk in audio:
                if failure is not None and fail_after is not None and sent >= fail_after:
                    raise failure
                if sent and chunk_delay_ms is not None:
                    await self._sleep(float(chunk_delay_ms) / 1000.0)
                yield chunk
                sent += 1
        finally:
            await audio.aclose()
        if failure is not None:
            raise failure  # fewer chunks than fake_fail_after: the cut comes at the end

    async def _pcm(self, text: str, request: SpeechRequest) -> AsyncIterator[bytes]:
        samples = max(1, round(SAMPLE_RATE * CHARACTER_SECONDS / (request.speed or 1.0)))
        shift = _voice_shift(request.voice)
        characters = text.strip() or " "
        for start in range(0, len(characters), _CHARACTERS_PER_CHUNK):
            group = characters[start : start + _CHARACTERS_PER_CHUNK]
            yield b"".join(_character(char, shift, samples) for char in group)

    def _failure(self, options: dict[str, Any], default_key: str) -> ServiceError | None:
        kind = self._failures.failure(options.get, default_key)
        if kind is None:
            return None
        retry_after = options.get("fake_retry_after")
        return scripted_fault(
            self._name,
            kind,
            float(retry_after) if retry_after is not None else None,
            kinds=FAKE_SPEECH_ERRORS,
            field="input",
        )
