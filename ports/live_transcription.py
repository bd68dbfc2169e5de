"""Driven port: a vendor that transcribes live audio over one open session (speech-to-text as it is spoken).

Opening the session is the provider call the attempt runner retries and falls back on; once it is open, audio goes
in and transcripts come out until the client ends (or leaves), and a failure ends the session. A vendor without a
live API simply registers no provider for ``LIVE_STT_PORT``: its models are then refused for live audio with a
``CapabilityError`` naming the model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final, Protocol

from domain.catalog import ModelSpec
from domain.live_transcription import LiveConfig, LiveTranscript
from ports.providers import PortKey

__all__ = ["LIVE_STT_PORT", "LiveSession", "LiveTranscriptionProvider"]


class LiveSession(Protocol):
    """One open vendor session. ``send_audio`` and ``end`` are called from one task, ``events`` is iterated by
    another; ``aclose`` (idempotent) releases the connection however the session went. Every method raises domain
    errors (``ProviderError``, ``RateLimitError`` ...), never a vendor exception."""

    async def send_audio(self, chunk: bytes) -> None:
        """Forward ``chunk`` (whole ``pcm16`` samples at the configured rate); waits while the vendor is slow to
        take it, which is what bounds a client that sends faster than the vendor listens."""
        ...

    async def end(self) -> None:
        """No more audio: the vendor finishes the segment it holds."""
        ...

    def events(self) -> AsyncIterator[LiveTranscript]:
        """Partials and finals as the vendor sends them; ends after ``end`` once the last final is out."""
        ...

    async def aclose(self) -> None:
        """Close the vendor connection (at once: what was not transcribed yet is dropped)."""
        ...


class LiveTranscriptionProvider(Protocol):
    """One vendor's live speech-to-text."""

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        ...

    async def open(self, model: ModelSpec, config: LiveConfig) -> LiveSession:
        """A session with ``model`` taking audio framed as ``config`` says (one attempt: connect and configure)."""
        ...


# Same capability as file transcription (``stt``), its own slot in a vendor's providers.
LIVE_STT_PORT: Final = PortKey[LiveTranscriptionProvider]("stt", "live")
