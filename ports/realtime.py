"""Driven port: a vendor's realtime voice session (a speech-to-speech model over one open connection).

Opening the session is the provider call the attempt runner retries and falls back on; once it is open, the client's
audio, text, commits, cancels and tool results go in, and the model's audio, transcripts, tool calls and turn ends
come out until either side ends it. A vendor without a realtime API registers no provider for ``REALTIME_PORT``: its
models are refused for realtime with a ``CapabilityError`` naming the model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final, Protocol

from domain.catalog import ModelSpec
from domain.realtime import RealtimeConfig, RealtimeEvent
from ports.providers import PortKey

__all__ = ["REALTIME_PORT", "RealtimeProvider", "RealtimeSession"]


class RealtimeSession(Protocol):
    """One open vendor session. The ``send_*``/``commit``/``cancel``/``end`` methods are called from one task,
    ``events`` is iterated by another; ``aclose`` (idempotent) releases the connection however the session went.
    Every method raises domain errors (``ProviderError``, ``RateLimitError``, ``ValidationError`` ...), never a
    vendor exception."""

    async def send_audio(self, chunk: bytes) -> None:
        """Forward ``chunk`` (whole pcm16 samples at the configured input rate); waits while the vendor is slow to
        take it, which is what bounds a client that sends faster than the vendor listens."""
        ...

    async def commit(self) -> None:
        """The user's turn is over (turn detection ``none``): the model answers what it heard."""
        ...

    async def send_text(self, text: str) -> None:
        """A user message in text; the model answers it."""
        ...

    async def send_tool_result(self, call_id: str, output: str) -> None:
        """The result of the tool call ``call_id``; the model goes on with it."""
        ...

    async def cancel(self) -> None:
        """Stop the response in progress (its ``RealtimeTurnDone`` says ``cancelled``); nothing when none is."""
        ...

    def events(self) -> AsyncIterator[RealtimeEvent]:
        """What the vendor says, in order; ends when the vendor closes the session after ``aclose``."""
        ...

    async def aclose(self) -> None:
        """Close the vendor connection at once (what is in flight is dropped)."""
        ...


class RealtimeProvider(Protocol):
    """One vendor's realtime voice."""

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        ...

    async def open(self, model: ModelSpec, config: RealtimeConfig) -> RealtimeSession:
        """A session with ``model`` configured as ``config`` says (one attempt: connect and configure; returns once
        the vendor confirmed the configuration)."""
        ...


REALTIME_PORT: Final = PortKey[RealtimeProvider]("realtime")
