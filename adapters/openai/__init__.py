"""Driven adapters on the official ``openai`` SDK, for OpenAI and the OpenAI-compatible family."""

from __future__ import annotations

from adapters.openai.text import OpenAITextProvider, build_openai_text_provider
from adapters.openai.vendor import build_openai_providers

__all__ = ["OpenAITextProvider", "build_openai_providers", "build_openai_text_provider"]
