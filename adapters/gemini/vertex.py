"""Driven adapter (Gemini): the Vertex AI client that Imagen and Veo run on, beside the vendor's Gemini API client.

google-genai 3.x serves Imagen (``generate_images``) and Veo (``generate_videos``) in Vertex AI mode only. A
deployment points them at Vertex with one of two configurations (``providers.gemini_vertex_*``):

- a Google Cloud project and location: the SDK calls ``/v1beta1/projects/{project}/locations/{location}/publishers/
  google/models/...`` with an OAuth token from Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``,
  ``gcloud auth application-default login``, or the service account attached on Google Cloud). The SDK loads them on
  the first Vertex call, not here: finding them may ask the metadata server, which must not hold up the start;
- an express-mode API key (a Google Cloud API key bound to a Vertex project): ``/v1beta1/publishers/google/
  models/...`` with ``x-goog-api-key``; no project and no location.

Every other port stays on the Gemini API client. Credentials that fail (none found, a refused refresh) raise
google-auth's errors from inside the SDK call: ``vertex_auth_error`` makes them a ``ProviderError`` that says so.
"""

from __future__ import annotations

from typing import Final

import httpx2
from google import genai
from google.auth import exceptions as auth_errors
from google.genai import types

from domain.errors import ConfigurationError, ProviderError

__all__ = ["AUTH_FAILURES", "DEFAULT_VERTEX_LOCATION", "build_vertex_client", "vertex_auth_error"]

DEFAULT_VERTEX_LOCATION: Final = "us-central1"  # where Imagen 4 and Veo 3 are served
#: What a Vertex call raises when its credentials fail: google-auth's errors, and the SDK's own "no token" report.
AUTH_FAILURES: Final[tuple[type[Exception], ...]] = (auth_errors.GoogleAuthError,)


def build_vertex_client(
    *,
    project: str | None,
    location: str | None,
    api_key: str | None,
    base_url: str | None,
    timeout_s: float,
) -> genai.Client | None:
    """The Vertex AI client the settings ask for (``None``: none is configured). One timeout for every phase, no SDK
    retries (the attempt runner retries) and the httpx2 transport, as the Gemini API client."""
    project = project or None
    if project is None and not api_key:
        return None
    if project is not None and api_key:
        raise ConfigurationError(
            "SWITCHYARD_PROVIDERS_GEMINI_VERTEX_API_KEY",
            "set either a Vertex AI project (with its location) or an express-mode API key, not both",
        )
    options = types.HttpOptions(
        base_url=base_url,
        timeout=max(1, round(timeout_s * 1000)),
        retry_options=types.HttpRetryOptions(attempts=1),
        async_client_args={"transport": httpx2.AsyncHTTPTransport()},
    )
    if api_key:
        return genai.Client(vertexai=True, api_key=api_key, http_options=options)
    if not location:
        raise ConfigurationError("SWITCHYARD_PROVIDERS_GEMINI_VERTEX_LOCATION", "a Vertex AI project needs a location")
    return genai.Client(vertexai=True, project=project, location=location, http_options=options)


def vertex_auth_error(provider: str, exc: Exception) -> ProviderError:
    """A Vertex call whose credentials failed: retryable only when google-auth says the failure is transient."""
    return ProviderError(
        provider,
        f"{provider}: Vertex AI credentials failed (Application Default Credentials: {type(exc).__name__})",
        original_error=exc,
        retryable=bool(getattr(exc, "retryable", False)),
    )
