"""Driven port: a vendor that turns a chat request into a stream of normalized provider events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final, Protocol

from domain.catalog import ModelSpec
from domain.chat import ChatRequest, ProviderEvent
from ports.providers import PortKey

__all__ = ["TEXT_PORT", "TextProvider"]


class TextProvider(Protocol):
    """One vendor's text generation. ``stream`` yields normalized events ending with ``Finish`` and raises domain
    errors (``ProviderError``, ``RateLimitError``, ``ProviderTimeoutError``, ``ValidationError`` ...), never a vendor
    exception. It performs a single attempt: retries and fallbacks belong to the attempt runner."""

    @property
    def name(self) -> str:
        """The provider id used in the catalog (``openai``, ``anthropic``, ``gemini``, ``groq``, ``fake`` ...)."""
        ...

    def stream(self, request: ChatRequest, model: ModelSpec) -> AsyncIterator[ProviderEvent]:
        """Stream one attempt of ``request`` against ``model``."""
        ...


TEXT_PORT: Final = PortKey[TextProvider]("text")
