"""Driven adapter: OpenAI ``POST /v1/embeddings`` implementation of the ``EmbeddingProvider`` port.

The same class serves the OpenAI-compatible family (Mistral, Together, Ollama, vLLM ...) by base URL, key and
provider name alone, like ``OpenAITextProvider``. The SDK asks for ``encoding_format: base64`` unless told otherwise
and decodes the little-endian float32 itself (a quarter of the JSON floats' bytes); it decodes only when the format
was left unset, so the adapter never names ``base64``. A compatible server that cannot answer base64 gets
``float`` by setting ``encoding_format = "float"`` in the model's ``default_params``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import openai
from openai import AsyncOpenAI

from adapters.openai.errors import TRANSPORT_ERRORS, map_openai_error
from domain.catalog import ModelSpec
from domain.embeddings import EmbeddingResult
from domain.errors import ProviderError
from domain.metering import Units

__all__ = ["OPENAI_MAX_BATCH", "OpenAIEmbeddingProvider"]

#: OpenAI refuses more than 2048 inputs in one request ("array must be 2048 dimensions or less").
OPENAI_MAX_BATCH: Final = 2048
#: What may escape the SDK call: its own errors, transport errors it did not wrap, and a body it could not parse
#: (``ValueError("No embedding data received")``, a base64 string that is not float32 ...).
_VENDOR_FAILURES: Final[tuple[type[Exception], ...]] = (
    openai.OpenAIError,
    *TRANSPORT_ERRORS,
    ValueError,
    TypeError,
    LookupError,
)


class OpenAIEmbeddingProvider:
    """``EmbeddingProvider`` over a shared ``AsyncOpenAI`` client (the vendor bundle owns and closes it)."""

    def __init__(self, client: AsyncOpenAI, *, name: str = "openai", max_batch: int = OPENAI_MAX_BATCH) -> None:
        self._client = client
        self._name = name
        self._max_batch = max_batch

    @property
    def name(self) -> str:
        """The provider id in the catalog (``openai``, ``mistral`` ...)."""
        return self._name

    @property
    def max_batch(self) -> int:
        """The most inputs one request takes."""
        return self._max_batch

    async def embed(self, inputs: Sequence[str], model: ModelSpec, *, dimensions: int | None) -> EmbeddingResult:
        """One request for ``inputs``; vectors put back in input order by the ``index`` the vendor gives each."""
        params: dict[str, Any] = {"model": model.wire_name, "input": list(inputs)}
        if dimensions is not None:
            params["dimensions"] = dimensions
        if model.default_params.get("encoding_format") == "float":
            params["encoding_format"] = "float"
        try:
            reply = await self._client.embeddings.create(**params)
            by_index = {item.index: item.embedding for item in reply.data}
            vectors = tuple(tuple(by_index[i]) for i in range(len(inputs)))
            tokens = reply.usage.prompt_tokens
        except _VENDOR_FAILURES as exc:
            raise map_openai_error(self._name, exc) from exc
        if len(by_index) != len(inputs):
            raise ProviderError(
                self._name, f"{self._name} answered {len(by_index)} vectors for {len(inputs)} inputs", retryable=True
            )
        return EmbeddingResult(vectors, Units(input_tokens=tokens))
