"""Driven adapter (OpenAI): the vendor's builder, every port it serves over one ``AsyncOpenAI`` client.

The same builder serves the OpenAI-compatible family (Groq, Ollama, vLLM ...) by name, key and base URL.
"""

from __future__ import annotations

from typing import Any

from adapters.openai.client import openai_client
from adapters.openai.embeddings import OpenAIEmbeddingProvider
from adapters.openai.images import OpenAIImageProvider
from adapters.openai.live_transcription import OpenAILiveTranscriptionProvider
from adapters.openai.realtime import OpenAIRealtimeProvider
from adapters.openai.speech import OpenAISpeechProvider
from adapters.openai.text import OpenAITextProvider
from adapters.openai.transcription import OpenAITranscriptionProvider
from ports.embeddings import EMBEDDING_PORT
from ports.images import IMAGE_PORT
from ports.live_transcription import LIVE_STT_PORT
from ports.providers import PortKey, VendorProviders
from ports.realtime import REALTIME_PORT
from ports.speech import TTS_PORT
from ports.text import TEXT_PORT
from ports.transcription import STT_PORT

__all__ = ["build_openai_providers"]


def build_openai_providers(
    *,
    name: str,
    api_key: str,
    base_url: str | None,
    timeout_s: float,
    connect_timeout_s: float,
    realtime: bool | None = None,
) -> VendorProviders:
    """One client for ``name`` at ``base_url`` (OpenAI's own when ``None``; see ``client.py``: pooled, on aiohttp,
    the SDK's own retries off because the attempt runner retries with its own deadline and backoff). ``realtime``
    (default: only for ``openai`` itself; the compatible family has no Realtime API) adds live transcription and
    realtime voice over the Realtime API."""
    client = openai_client(api_key=api_key, base_url=base_url, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s)
    served: dict[PortKey[Any], object] = {
        TEXT_PORT: OpenAITextProvider(client, name=name),
        EMBEDDING_PORT: OpenAIEmbeddingProvider(client, name=name),
        IMAGE_PORT: OpenAIImageProvider(client, name=name),
        STT_PORT: OpenAITranscriptionProvider(client, name=name),
        TTS_PORT: OpenAISpeechProvider(client, name=name),
    }
    if realtime if realtime is not None else name == "openai":
        served[LIVE_STT_PORT] = OpenAILiveTranscriptionProvider(client, name=name)
        served[REALTIME_PORT] = OpenAIRealtimeProvider(client, name=name)
    return VendorProviders(name, served, client.close)
