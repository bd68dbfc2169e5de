"""Driven ports: a vendor that transcribes a whole audio file, and a decoder that says what an upload holds."""

from __future__ import annotations

from typing import Final, Protocol

from domain.catalog import ModelSpec
from domain.transcription import AudioInfo, Transcript, TranscriptionRequest
from ports.providers import PortKey

__all__ = ["STT_PORT", "AudioProbe", "TranscriptionProvider"]


class TranscriptionProvider(Protocol):
    """One vendor's speech-to-text for files: one attempt per call (retries and fallbacks belong to the attempt
    runner); raises domain errors (``RateLimitError``, ``ProviderError``, ``ValidationError`` naming the field ...),
    never a vendor exception. The request's audio was decoded before the call: its ``content_type`` and
    ``filename`` extension name the real container."""

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        ...

    async def transcribe(self, request: TranscriptionRequest, model: ModelSpec) -> Transcript:
        """The transcript of ``request.audio`` by ``model``, with the timestamps ``request.timestamps`` asks for."""
        ...


class AudioProbe(Protocol):
    """Decodes an upload far enough to know it is audio and how long it lasts, before any vendor sees it."""

    async def probe(self, data: bytes) -> AudioInfo | None:
        """What ``data`` holds, or ``None`` when it is not decodable audio (no audio stream, corrupt, not a
        container at all)."""
        ...


STT_PORT: Final = PortKey[TranscriptionProvider]("stt")
