"""Driven adapters on the official ``anthropic`` SDK: text generation through the Messages API."""

from __future__ import annotations

from adapters.anthropic.text import AnthropicTextProvider, build_anthropic_text_provider

__all__ = ["AnthropicTextProvider", "build_anthropic_text_provider"]
