"""HTTP boundary (OpenAI door): Embeddings requests to the domain ``EmbeddingRequest``, vectors back.

The OpenAI SDK asks for ``encoding_format: base64`` unless told otherwise and decodes little-endian float32 itself,
so base64 is the path most clients take: each vector is packed as float32 (what OpenAI sends; the vectors are
float32 at the vendor anyway) and encoded once.
"""

from __future__ import annotations

import base64
import sys
from array import array

from domain.embeddings import EmbeddingRequest, EmbeddingResponse
from entrypoints.http.doors.openai.body import invalid
from entrypoints.http.doors.openai.wire import (
    OpenAIEmbedding,
    OpenAIEmbeddingList,
    OpenAIEmbeddingRequest,
    OpenAIEmbeddingUsage,
)

__all__ = ["embedding_list", "embedding_request", "float32_base64"]


def embedding_request(body: OpenAIEmbeddingRequest) -> EmbeddingRequest:
    """The domain request: text inputs only (token-id arrays are refused naming ``input``)."""
    if isinstance(body.input, str):
        return EmbeddingRequest(model=body.model, input=body.input, dimensions=body.dimensions)
    texts: list[str] = []
    for index, item in enumerate(body.input):
        if not isinstance(item, str):
            what = "token ids" if isinstance(item, int | list) else type(item).__name__
            raise invalid(f"input[{index}]", f"expected a string, got {what} (Switchyard embeds text: send strings)")
        texts.append(item)
    return EmbeddingRequest(model=body.model, input=texts, dimensions=body.dimensions)


def float32_base64(vector: list[float]) -> str:
    """Base64 of ``vector`` as little-endian float32, what the SDK decodes."""
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def embedding_list(response: EmbeddingResponse, *, base64_encoded: bool) -> OpenAIEmbeddingList:
    """The ``list`` object: one ``embedding`` per input, in input order."""
    data = [
        OpenAIEmbedding(index=index, embedding=float32_base64(vector) if base64_encoded else vector)
        for index, vector in enumerate(response.embeddings)
    ]
    tokens = response.usage.input_tokens
    return OpenAIEmbeddingList(
        data=data, model=response.model, usage=OpenAIEmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
    )
