"""Driven adapters for ElevenLabs (the ``elevenlabs`` SDK): streaming text-to-speech and the account's voices."""

from __future__ import annotations

from adapters.elevenlabs.vendor import build_elevenlabs_providers

__all__ = ["build_elevenlabs_providers"]
