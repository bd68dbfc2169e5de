"""Blueprint: ``POST /api/v1/embeddings``, one vector per input text, in input order, from one model.

The body is ``domain.embeddings.EmbeddingRequest`` (``{model, input: string | [string], dimensions?}``), structured
strictly by the HTTP converter (a misspelt field is a 422 naming it); the service checks the rules types cannot
express (empty texts as ``input[i]``, limits, ``dimensions`` for the model).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response, current_app, g

from domain.embeddings import EmbeddingRequest, EmbeddingResponse
from entrypoints.http.auth import current_auth
from entrypoints.http.envelope import api_ok
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import CONVERTER, read_body, unstructure
from services.attempts import Caller
from services.embeddings import EmbeddingService

__all__ = ["blueprint"]

blueprint = Blueprint("embeddings", __name__)
_ERRORS: Final = (400, 401, 404, 413, 415, 422, 429, 502, 503, 504)


def _text_or_texts(value: object, _: type) -> str | list[str]:
    """``input``: one string, or a list of strings (each item checked, so ``$.input[2]`` names a bad one)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts: list[str] = CONVERTER.structure(value, list[str])
        return texts
    raise TypeError(f"expected a string or a list of strings, got {type(value).__name__}")


# The converter cannot tell a string from a list of strings by itself (see ``Message.content`` in serialization).
CONVERTER.register_structure_hook_func(lambda t: t == (str | list[str]), _text_or_texts)


def _max_body() -> int:
    limit: Any = current_app.config.get("MAX_CONTENT_LENGTH")
    return int(limit or 1024 * 1024)


@blueprint.post("/api/v1/embeddings")
@inject
@documented(
    "Embed texts: one vector per input, in input order, all from the one model that served",
    request=EmbeddingRequest,
    response=EmbeddingResponse,
    tags=["embeddings"],
    errors=_ERRORS,
    description=(
        "`input` is a string or a list of up to 2048 non-empty strings (1,000,000 characters in all). "
        "`dimensions` shortens the vectors of models that allow it (up to the model's length). Batches larger than "
        "the vendor takes are split and reassembled in order; a retry or fallback re-embeds the whole request with "
        "one model, so vectors of two models are never mixed. `meta.extra` says which model and provider served, "
        "the retries and the fallback used."
    ),
)
async def embeddings(service: EmbeddingService = Provide["embedding_service"]) -> Response:
    body = await read_body(EmbeddingRequest, max_bytes=_max_body())
    caller = Caller(current_auth().customer_id, str(getattr(g, "request_id", "") or ""))
    result = await service.embed(body, caller)
    envelope = unstructure(api_ok(result.response, extra=result.meta))
    # Thousands of floats per answer: msgspec writes them ~20x faster than ``json.dumps`` (the same shortest
    # round-trip digits), which is most of this route's own cost.
    return Response(msgspec.json.encode(envelope, enc_hook=str), content_type="application/json")
