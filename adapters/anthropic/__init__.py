"""Driven adapters on the official ``anthropic`` SDK: text generation through the Messages API."""

from __future__ import annotations

from adapters.anthropic.text import AnthropicTextProvider, build_anthropic_text_provider
from adapters.anthropic.vendor import build_anthropic_providers

__all__ = ["AnthropicTextProvider", "build_anthropic_providers", "build_anthropic_text_provider"]
