"""Driven adapter (Gemini): the vendor's builder, every port it serves over one ``genai.Client`` (Gemini API mode)."""

from __future__ import annotations

from typing import Any

import httpx2
from google import genai
from google.genai import types

from adapters.gemini.embeddings import GeminiEmbeddingProvider
from adapters.gemini.images import GeminiImageProvider
from adapters.gemini.speech import GeminiSpeechProvider
from adapters.gemini.text import GeminiTextProvider
from adapters.gemini.transcription import GeminiTranscriptionProvider
from ports.embeddings import EMBEDDING_PORT
from ports.images import IMAGE_PORT
from ports.providers import PortKey, VendorProviders
from ports.speech import TTS_PORT
from ports.text import TEXT_PORT
from ports.transcription import STT_PORT

__all__ = ["build_gemini_providers"]


def build_gemini_providers(
    *, name: str, api_key: str, base_url: str | None, timeout_s: float, connect_timeout_s: float
) -> VendorProviders:
    """One client for ``name``. google-genai takes one timeout, in milliseconds, for every phase of a request, so
    ``connect_timeout_s`` cannot be applied separately; the overall ``timeout_s`` bounds the connect as well. Its own
    retries are off (one attempt): the attempt runner retries."""
    del connect_timeout_s  # see the docstring: the SDK has a single timeout
    options = types.HttpOptions(
        base_url=base_url,
        timeout=max(1, round(timeout_s * 1000)),
        retry_options=types.HttpRetryOptions(attempts=1),
        # An explicit transport keeps the SDK on httpx2 even where aiohttp is installed (aiobotocore brings it):
        # its errors are the ones adapters/gemini/errors.py maps, and the ones the contract suites prove.
        async_client_args={"transport": httpx2.AsyncHTTPTransport()},
    )
    client = genai.Client(api_key=api_key, http_options=options)
    served: dict[PortKey[Any], object] = {
        TEXT_PORT: GeminiTextProvider(client, name=name),
        EMBEDDING_PORT: GeminiEmbeddingProvider(client, name=name),
        IMAGE_PORT: GeminiImageProvider(client, name=name),
        STT_PORT: GeminiTranscriptionProvider(client, name=name),
        TTS_PORT: GeminiSpeechProvider(client, name=name),
    }
    return VendorProviders(name, served, client.aio.aclose)
