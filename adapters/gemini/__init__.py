"""Driven adapters on the official ``google-genai`` SDK, for Gemini (Gemini API mode)."""

from __future__ import annotations

from adapters.gemini.text import GeminiTextProvider, build_gemini_text_provider
from adapters.gemini.vendor import build_gemini_providers

__all__ = ["GeminiTextProvider", "build_gemini_providers", "build_gemini_text_provider"]
