"""Driven adapter (ElevenLabs): the vendor's builder, every port it serves over one ``AsyncElevenLabs`` client."""

from __future__ import annotations

from typing import Any

import httpx
from elevenlabs.client import AsyncElevenLabs

from adapters.elevenlabs.live_transcription import ElevenLabsLiveTranscriptionProvider
from adapters.elevenlabs.speech import ElevenLabsSpeechProvider
from adapters.elevenlabs.transcription import ElevenLabsTranscriptionProvider
from ports.live_transcription import LIVE_STT_PORT
from ports.providers import PortKey, VendorProviders
from ports.speech import TTS_PORT
from ports.transcription import STT_PORT

__all__ = ["build_elevenlabs_providers"]


def build_elevenlabs_providers(
    *, name: str, api_key: str, base_url: str | None, timeout_s: float, connect_timeout_s: float
) -> VendorProviders:
    """One client for ``name`` at ``base_url`` (ElevenLabs' own when ``None``). The SDK rides on legacy ``httpx``;
    the client is built here so the connect timeout applies apart from the read timeout, and closed once at
    shutdown."""
    http = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s), follow_redirects=True)
    client = AsyncElevenLabs(api_key=api_key, base_url=base_url, httpx_client=http)
    served: dict[PortKey[Any], object] = {
        TTS_PORT: ElevenLabsSpeechProvider(client, name=name),
        STT_PORT: ElevenLabsTranscriptionProvider(client, name=name),
        LIVE_STT_PORT: ElevenLabsLiveTranscriptionProvider(client, name=name),
    }
    return VendorProviders(name, served, http.aclose)
