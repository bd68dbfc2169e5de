"""Driven adapter: ``FakeTranscriptionProvider``, a deterministic TranscriptionProvider that really decodes the audio.

Like a vendor it refuses what is not decodable audio (a ``ValidationError`` naming ``file``, as a vendor's 400 maps).
The transcript follows from the audio itself: about two and a half words per second of its decoded length, chosen
from a small vocabulary by a SHA-256 of the bytes, so the same file always reads the same and another file reads
otherwise. Words are spread evenly over the audio; segments group them by eight (one sentence each).

Faults come from ``metadata`` (or the entry's ``default_params``), as for the other fakes: ``fake_error``
(``rate_limited``, ``provider_error`` (final), ``overloaded`` (retryable, a 5xx), ``timeout``, ``auth``),
``fake_retry_after`` seconds for a 429, ``fake_fail_times = N`` to fail only the first N calls with the same
``fake_key`` (default: the model and the audio's digest), and ``fake_delay_ms`` before answering.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, Final

from adapters.fake.faults import FailureCounter
from adapters.kit.audio_probe import probe_audio
from domain.catalog import ModelSpec
from domain.errors import ValidationError
from domain.transcription import Segment, Transcript, TranscriptionRequest, Word

__all__ = ["FAKE_TRANSCRIPTION_ERRORS", "VOCABULARY", "WORDS_PER_SECOND", "FakeTranscriptionProvider", "fake_words"]

FAKE_TRANSCRIPTION_ERRORS: Final = ("rate_limited", "provider_error", "overloaded", "timeout", "auth")
WORDS_PER_SECOND: Final = 2.5
VOCABULARY: Final = (
    "switchyard", "signal", "harbour", "lantern", "river", "morning", "copper", "meadow",
    "engine", "window", "silver", "thunder", "garden", "compass", "anchor", "velvet",
)  # fmt: skip
_SENTENCE: Final = 8


def fake_words(audio: bytes, duration_s: float) -> list[str]:
    """The words the fake hears in ``audio`` of ``duration_s`` seconds (at least one)."""
    count = max(1, round(duration_s * WORDS_PER_SECOND))
    digest = hashlib.sha256(audio).digest()
    stream = b"".join(hashlib.sha256(digest + i.to_bytes(4, "little")).digest() for i in range(count // 32 + 1))
    return [VOCABULARY[stream[i] % len(VOCABULARY)] for i in range(count)]


def _sentences(words: list[Word]) -> list[list[Word]]:
    return [words[i : i + _SENTENCE] for i in range(0, len(words), _SENTENCE)]


def _sentence_text(words: list[Word]) -> str:
    text = " ".join(word.text for word in words)
    return text[:1].upper() + text[1:] + "."


class FakeTranscriptionProvider:
    """The ``fake`` vendor's ``TranscriptionProvider``. ``sleep`` is injectable so delays cost nothing in tests."""

    def __init__(self, *, name: str = "fake", sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._name = name
        self._sleep = sleep
        self._failures = FailureCounter()
        self.calls = 0

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def transcribe(self, request: TranscriptionRequest, model: ModelSpec) -> Transcript:
        """The audio's deterministic transcript, or the scripted fault."""
        self.calls += 1
        await self._failures.play(
            self._name,
            lambda key: self._option(request, model, key),
            f"{model.qualified_id}:{hashlib.sha256(request.audio).hexdigest()[:16]}",
            self._sleep,
            kinds=FAKE_TRANSCRIPTION_ERRORS,
        )
        info = await asyncio.to_thread(probe_audio, request.audio)
        if info is None:
            raise ValidationError(
                "file", f"{self._name}: the audio could not be decoded", context={"provider": self._name}
            )
        duration = info.duration_s
        names = fake_words(request.audio, duration)
        slot = duration / len(names)
        words = [Word(round(i * slot, 3), round(i * slot + slot * 0.8, 3), text) for i, text in enumerate(names)]
        sentences = _sentences(words)
        text = " ".join(_sentence_text(sentence) for sentence in sentences)
        segments: tuple[Segment, ...] = ()
        if request.timestamps != "none":
            segments = tuple(Segment(s[0].start_s, s[-1].end_s, _sentence_text(s)) for s in sentences)
        return Transcript(
            text=text,
            language=request.language or "en",
            duration_s=duration,
            segments=segments,
            words=tuple(words) if request.timestamps == "word" else (),
        )

    def _option(self, request: TranscriptionRequest, model: ModelSpec, key: str) -> Any:
        if key in request.metadata:
            return request.metadata[key]
        return model.default_params.get(key)
