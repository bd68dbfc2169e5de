"""Driven adapter: ``FakeLiveTranscriptionProvider``, a deterministic live transcription whose clock is the audio.

It hears one word per ``word_ms`` of audio received (400 ms: the file fake's two and a half words a second), chosen
from the file fake's vocabulary by a SHA-256 of that stretch of samples, so the same audio always reads the same.
Each word gives a ``partial`` of its segment so far; every eighth word closes the segment with a ``final`` (one
sentence, capitalised, with a full stop). ``end`` hears the tail (a word when at least half a slot is left) and
closes the last segment. Word timings follow the audio: word ``i`` starts at ``i * word_ms``.

Faults come from ``config.metadata`` (or the entry's ``default_params``), as for the other fakes: ``fake_error``
(``rate_limited``, ``provider_error``, ``overloaded``, ``timeout``, ``auth``) fails ``open``, or, with
``fake_fail_after = N``, the session after its N-th word; ``fake_fail_times = N`` fails only the first N opens with
the same ``fake_key`` (default: the model), ``fake_retry_after`` is a 429's wait and ``fake_delay_ms`` delays
``open``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from adapters.fake.faults import scripted_fault
from adapters.fake.transcription import FAKE_TRANSCRIPTION_ERRORS, VOCABULARY
from domain.catalog import ModelSpec
from domain.errors import ProviderError, ServiceError, ValidationError
from domain.live_transcription import SAMPLE_BYTES, LiveConfig, LiveTranscript, TranscriptKind
from domain.transcription import Word

__all__ = ["SENTENCE_WORDS", "WORD_MS", "FakeLiveSession", "FakeLiveTranscriptionProvider", "live_word"]

WORD_MS: Final = 400
SENTENCE_WORDS: Final = 8


def live_word(samples: bytes) -> str:
    """The word the fake hears in one slot of audio."""
    return VOCABULARY[hashlib.sha256(samples).digest()[0] % len(VOCABULARY)]


def _sentence(words: list[Word]) -> str:
    text = " ".join(word.text for word in words)
    return text[:1].upper() + text[1:] + "."


_END: Final = object()


class FakeLiveSession:
    """One fake session: words on the audio's clock, events in a queue read by ``events``."""

    def __init__(
        self, provider: str, config: LiveConfig, *, word_ms: int, fail_after: int | None, failure: ServiceError | None
    ) -> None:
        self._provider = provider
        self._slot_bytes = max(SAMPLE_BYTES, config.sample_rate * SAMPLE_BYTES * word_ms // 1000)
        self._slot_bytes -= self._slot_bytes % SAMPLE_BYTES
        self._slot_s = word_ms / 1000
        self._pending = bytearray()
        self._heard = 0
        self._segment = 0
        self._words: list[Word] = []
        self._fail_after = fail_after
        self._failure = failure
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._ended = False
        self._closed = False
        self.audio_bytes = 0

    async def send_audio(self, chunk: bytes) -> None:
        if self._closed or self._ended:
            raise ProviderError(self._provider, f"{self._provider}: audio sent to a finished session")
        self.audio_bytes += len(chunk)
        self._pending += chunk
        while len(self._pending) >= self._slot_bytes:
            slot = bytes(self._pending[: self._slot_bytes])
            del self._pending[: self._slot_bytes]
            self._hear(slot)

    async def end(self) -> None:
        if self._ended or self._closed:
            return
        self._ended = True
        if len(self._pending) * 2 >= self._slot_bytes:
            self._hear(bytes(self._pending), self._slot_s * len(self._pending) / self._slot_bytes)
        self._pending.clear()
        self._close_segment()
        self._queue.put_nowait(_END)

    async def events(self) -> AsyncIterator[LiveTranscript]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, ServiceError):
                raise item
            assert isinstance(item, LiveTranscript)
            yield item

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(_END)

    def _hear(self, samples: bytes, seconds: float | None = None) -> None:
        start = round(self._heard * self._slot_s, 3)
        spoken = self._slot_s * 0.8 if seconds is None else min(self._slot_s * 0.8, seconds)  # the tail is shorter
        word = Word(start, round(start + spoken, 3), live_word(samples))
        self._heard += 1
        self._words.append(word)
        self._queue.put_nowait(self._transcript("partial", " ".join(w.text for w in self._words)))
        if self._fail_after is not None and self._heard >= self._fail_after and self._failure is not None:
            self._queue.put_nowait(self._failure)
            self._failure = None
            return
        if len(self._words) >= SENTENCE_WORDS:
            self._close_segment()

    def _close_segment(self) -> None:
        if not self._words:
            return
        self._queue.put_nowait(self._transcript("final", _sentence(self._words), words=tuple(self._words)))
        self._words = []
        self._segment += 1

    def _transcript(self, kind: TranscriptKind, text: str, words: tuple[Word, ...] = ()) -> LiveTranscript:
        return LiveTranscript(
            kind=kind,
            text=text,
            segment=self._segment,
            start_s=self._words[0].start_s,
            end_s=self._words[-1].end_s,
            words=words,
        )


class FakeLiveTranscriptionProvider:
    """The ``fake`` vendor's ``LiveTranscriptionProvider``. ``sleep`` is injectable so delays cost nothing in tests."""

    def __init__(
        self,
        *,
        name: str = "fake",
        word_ms: int = WORD_MS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._name = name
        self._word_ms = word_ms
        self._sleep = sleep
        self._opens: dict[str, int] = {}
        self.sessions: list[FakeLiveSession] = []

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def open(self, model: ModelSpec, config: LiveConfig) -> FakeLiveSession:
        """A session, or the scripted fault."""
        delay_ms = self._option(config, model, "fake_delay_ms")
        if delay_ms is not None:
            await self._sleep(float(delay_ms) / 1000.0)
        kind = self._option(config, model, "fake_error")
        fail_after = self._option(config, model, "fake_fail_after")
        failure: ServiceError | None = None
        if kind is not None and self._fails_now(config, model):
            retry_after = self._option(config, model, "fake_retry_after")
            failure = scripted_fault(
                self._name,
                str(kind),
                float(retry_after) if retry_after is not None else None,
                kinds=FAKE_TRANSCRIPTION_ERRORS,
            )
            if fail_after is None or isinstance(failure, ValidationError):
                raise failure
        session = FakeLiveSession(
            self._name,
            config,
            word_ms=self._word_ms,
            fail_after=int(fail_after) if fail_after is not None else None,
            failure=failure,
        )
        self.sessions.append(session)
        return session

    def _option(self, config: LiveConfig, model: ModelSpec, key: str) -> Any:
        if key in config.metadata:
            return config.metadata[key]
        return model.default_params.get(key)

    def _fails_now(self, config: LiveConfig, model: ModelSpec) -> bool:
        times = self._option(config, model, "fake_fail_times")
        if times is None:
            return True
        key = str(self._option(config, model, "fake_key") or model.qualified_id)
        seen = self._opens.get(key, 0)
        self._opens[key] = seen + 1
        return seen < int(times)
