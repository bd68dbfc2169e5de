"""Driven port: a vendor that answers a chat request, as a stream of normalized provider events or all at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final, Protocol

from domain.catalog import ModelSpec
from domain.chat import ChatRequest, ProviderEvent
from domain.completion import Completion
from ports.providers import PortKey

__all__ = ["TEXT_PORT", "TextProvider"]


class TextProvider(Protocol):
    """One vendor's text generation. ``stream`` yields normalized events ending with ``Finish``; ``complete`` returns
    the whole answer from one call made without streaming (the cheaper call when nobody reads the answer as it
    grows). Both raise domain errors (``ProviderError``, ``RateLimitError``, ``ProviderTimeoutError``,
    ``ValidationError`` ...), never a vendor exception, and both perform a single attempt: retries and fallbacks
    belong to the attempt runner."""

    @property
    def name(self) -> str:
        """The provider id used in the catalog (``openai``, ``anthropic``, ``gemini``, ``groq``, ``fake`` ...)."""
        ...

    def stream(self, request: ChatRequest, model: ModelSpec) -> AsyncIterator[ProviderEvent]:
        """Stream one attempt of ``request`` against ``model``."""
        ...

    async def complete(self, request: ChatRequest, model: ModelSpec, *, timeout_s: float | None = None) -> Completion:
        """One attempt of ``request`` against ``model`` without streaming: the same answer, usage and finish reason
        its stream would add up to, and the same domain error for the same vendor fault. ``timeout_s`` bounds the
        whole call (a vendor sends nothing until it is done, so the stream's silence bound cannot apply); ``None``:
        the adapter's configured read timeout. A vendor that cannot answer some requests without streaming is
        streamed and assembled by its adapter."""
        ...


TEXT_PORT: Final = PortKey[TextProvider]("text")
