"""Driven adapter (Gemini): the vendor's builder, every port it serves over one ``genai.Client`` (Gemini API mode),
and Imagen and Veo over a Vertex AI client when one is configured (``adapters/gemini/vertex.py``)."""

from __future__ import annotations

import re
from typing import Any, Final

import httpx2
from google import genai
from google.genai import types

from adapters.gemini.embeddings import GeminiEmbeddingProvider
from adapters.gemini.images import GeminiImageProvider
from adapters.gemini.realtime import GeminiRealtimeProvider
from adapters.gemini.speech import GeminiSpeechProvider
from adapters.gemini.text import GeminiTextProvider
from adapters.gemini.transcription import GeminiTranscriptionProvider
from adapters.gemini.vertex import DEFAULT_VERTEX_LOCATION, build_vertex_client
from adapters.gemini.video import GeminiVideoProvider
from domain.errors import ConfigurationError
from ports.embeddings import EMBEDDING_PORT
from ports.images import IMAGE_PORT
from ports.providers import PortKey, VendorProviders
from ports.realtime import REALTIME_PORT
from ports.speech import TTS_PORT
from ports.text import TEXT_PORT
from ports.transcription import STT_PORT
from ports.video import VIDEO_PORT

__all__ = ["DEFAULT_API_VERSION", "build_gemini_providers", "checked_api_version"]

# google-genai defaults to /v1 in Gemini API mode, but the API's newer features (thinking, JSON-schema output, speech
# and image output) and the Gemini-compatible servers live under /v1beta: the path the adapter must call by default.
DEFAULT_API_VERSION: Final = "v1beta"
_API_VERSION: Final = re.compile(r"v\d+(?:(?:alpha|beta)\d*)?")


def checked_api_version(api_version: str) -> str:
    """``api_version`` when it looks like one (``v1``, ``v1beta``, ``v1alpha``); a ``ConfigurationError`` otherwise."""
    if not _API_VERSION.fullmatch(api_version):
        raise ConfigurationError(
            "SWITCHYARD_PROVIDERS_GEMINI_API_VERSION", f"expected an API version such as v1beta, got {api_version!r}"
        )
    return api_version


def build_gemini_providers(
    *,
    name: str,
    api_key: str,
    base_url: str | None,
    timeout_s: float,
    connect_timeout_s: float,
    api_version: str = DEFAULT_API_VERSION,
    vertex_project: str | None = None,
    vertex_location: str | None = DEFAULT_VERTEX_LOCATION,
    vertex_api_key: str | None = None,
    vertex_base_url: str | None = None,
) -> VendorProviders:
    """One client for ``name``, calling ``<base_url>/<api_version>/...``. google-genai takes one timeout, in
    milliseconds, for every phase of a request, so ``connect_timeout_s`` cannot be applied separately; the overall
    ``timeout_s`` bounds the connect as well. Its own retries are off (one attempt): the attempt runner retries.
    Gemini Live sessions are WebSockets the SDK opens without that timeout: ``connect_timeout_s`` bounds their
    handshake and setup. ``vertex_project`` (with ``vertex_location``) or ``vertex_api_key`` (express mode) adds a
    Vertex AI client (at ``vertex_base_url`` when set) for Imagen and Veo; without either they are refused."""
    vertex = build_vertex_client(
        project=vertex_project,
        location=vertex_location,
        api_key=vertex_api_key,
        base_url=vertex_base_url,
        timeout_s=timeout_s,
    )
    options = types.HttpOptions(
        base_url=base_url,
        api_version=checked_api_version(api_version),
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
        IMAGE_PORT: GeminiImageProvider(client, name=name, imagen_client=vertex),
        STT_PORT: GeminiTranscriptionProvider(client, name=name),
        TTS_PORT: GeminiSpeechProvider(client, name=name),
        VIDEO_PORT: GeminiVideoProvider(client, name=name, vertex_client=vertex),
        REALTIME_PORT: GeminiRealtimeProvider(client, name=name, open_timeout_s=connect_timeout_s),
    }

    async def close() -> None:
        try:
            await client.aio.aclose()
        finally:
            if vertex is not None:
                await vertex.aio.aclose()

    return VendorProviders(name, served, close)
