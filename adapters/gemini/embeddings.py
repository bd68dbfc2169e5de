"""Driven adapter: Gemini (google-genai ``client.aio.models.embed_content``) implementation of ``EmbeddingProvider``.

In Gemini API mode the SDK sends every call to ``POST /{version}/models/{model}:batchEmbedContents`` with one
``requests[]`` entry per text (each naming the model again, with ``outputDimensionality`` and ``taskType``), and
the API takes at most 100 of them. The Gemini API reports no token usage for embeddings (only Vertex does): when
``usage_metadata`` is absent the input tokens are estimated at one per four characters, Google's own rule of thumb,
so that usage is never zero. ``task_type`` (``RETRIEVAL_DOCUMENT``, ``SEMANTIC_SIMILARITY`` ...) comes from the
model's ``default_params``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from adapters.gemini.errors import map_gemini_error
from domain.catalog import ModelSpec
from domain.embeddings import EmbeddingResult
from domain.errors import ProviderError
from domain.metering import Units

__all__ = ["GEMINI_MAX_BATCH", "GeminiEmbeddingProvider", "estimated_tokens"]

#: batchEmbedContents refuses more than 100 requests ("at most 100 requests can be in one batch").
GEMINI_MAX_BATCH: Final = 100
#: What may escape the SDK call: its API errors, transport errors it leaves unwrapped (httpx2, aiohttp's
#: ``TimeoutError``), and a body it cannot parse.
_VENDOR_FAILURES: Final[tuple[type[Exception], ...]] = (
    genai_errors.APIError,
    httpx2.HTTPError,
    TimeoutError,
    ValueError,
    TypeError,
    AttributeError,
    LookupError,
)


def estimated_tokens(inputs: Sequence[str]) -> int:
    """About one token per four characters, at least one per text."""
    return sum(max(1, math.ceil(len(text) / 4)) for text in inputs)


class GeminiEmbeddingProvider:
    """``EmbeddingProvider`` over a shared ``genai.Client`` (its ``aio`` side; the vendor bundle closes it)."""

    def __init__(self, client: genai.Client, *, name: str = "gemini", max_batch: int = GEMINI_MAX_BATCH) -> None:
        self._client = client
        self._name = name
        self._max_batch = max_batch

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    @property
    def max_batch(self) -> int:
        """The most inputs one call takes."""
        return self._max_batch

    async def embed(self, inputs: Sequence[str], model: ModelSpec, *, dimensions: int | None) -> EmbeddingResult:
        """One batchEmbedContents call for ``inputs``; the vendor answers in request order."""
        config = types.EmbedContentConfig(
            output_dimensionality=dimensions, task_type=model.default_params.get("task_type")
        )
        # One Content per text, never bare strings: for a model the SDK deems multimodal (any name with "gemini"
        # but gemini-embedding-001) it folds a list of strings into one Content, which embeds as ONE vector.
        contents: Any = [types.Content(parts=[types.Part(text=text)], role="user") for text in inputs]
        try:
            reply = await self._client.aio.models.embed_content(model=model.wire_name, contents=contents, config=config)
            vectors = tuple(tuple(item.values or ()) for item in reply.embeddings or ())
            usage = reply.usage_metadata
            tokens = usage.prompt_token_count if usage is not None else None
        except _VENDOR_FAILURES as exc:
            raise map_gemini_error(self._name, exc) from exc
        if len(vectors) != len(inputs) or not all(vectors):
            raise ProviderError(
                self._name, f"{self._name} answered {len(vectors)} vectors for {len(inputs)} inputs", retryable=True
            )
        if tokens is None:
            return EmbeddingResult(vectors, Units(input_tokens=estimated_tokens(inputs)), estimated=True)
        return EmbeddingResult(vectors, Units(input_tokens=tokens))
