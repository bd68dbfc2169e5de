"""Driven port: a vendor that speaks text, streaming the encoded audio as it is produced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final, Protocol

from domain.catalog import ModelSpec
from domain.speech import AudioChunk, SpeechRequest, Voice
from ports.providers import PortKey

__all__ = ["TTS_PORT", "SpeechProvider"]


class SpeechProvider(Protocol):
    """One vendor's text-to-speech: one attempt per ``synthesize`` (retries and fallbacks belong to the attempt
    runner); raises domain errors (``RateLimitError``, ``ProviderError``, ``ValidationError`` naming the field ...),
    never a vendor exception."""

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        ...

    def synthesize(self, request: SpeechRequest, model: ModelSpec) -> AsyncIterator[AudioChunk]:
        """The audio of ``request.input`` in ``request.format``, chunk by chunk as the vendor sends it (never the
        whole clip at once); nothing is sent before the first chunk is asked for. Closing the iterator early
        (``aclose``) releases the vendor connection."""
        ...

    async def voices(self, model: ModelSpec) -> list[Voice]:
        """The voices ``model`` offers (from the catalog, or the vendor's API, cached)."""
        ...


TTS_PORT: Final = PortKey[SpeechProvider]("tts")
