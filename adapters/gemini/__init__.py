"""Driven adapters on the official ``google-genai`` SDK: Gemini text generation (Gemini API mode)."""

from __future__ import annotations

from adapters.gemini.text import GeminiTextProvider, build_gemini_text_provider

__all__ = ["GeminiTextProvider", "build_gemini_text_provider"]
