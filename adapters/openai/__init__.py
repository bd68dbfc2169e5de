"""Driven adapters on the official ``openai`` SDK: text generation for OpenAI and the OpenAI-compatible family."""

from __future__ import annotations

from adapters.openai.text import OpenAITextProvider, build_openai_text_provider

__all__ = ["OpenAITextProvider", "build_openai_text_provider"]
