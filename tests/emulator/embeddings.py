"""Test double (vendor emulator): OpenAI ``POST /v1/embeddings`` and Gemini ``models/{model}:batchEmbedContents``.

As strict as the vendors: the vendor's own auth header, path and API version, required fields, non-empty texts,
and their batch limits (2048 inputs for OpenAI, 100 requests for Gemini) refused with a 400 in the vendor's words.
Vectors are deterministic (SHA-256 of the text, float32-exact so base64 and JSON floats carry the same values) and
unit-normalised; their length is ``dimensions``/``outputDimensionality`` when asked, else the named model's (1536,
3072) or ``DEFAULT_LENGTH`` for scenario names. Usage counts words (at least one per text).

The scenario comes from the ``x-emulator-scenario`` header or the model name, as for the other routes: a status
fault answers its error (429 with Retry-After, 500 ...), ``stall`` waits before answering, ``malformed_chunk`` and
``truncated`` send a body cut short; any other scenario embeds.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from quart import Quart, Response, request

from tests.emulator.render_gemini import gemini_error
from tests.emulator.render_openai import openai_error
from tests.emulator.scenario import Fault, Scenario
from tests.emulator.wire import ErrorReply

if TYPE_CHECKING:
    from tests.emulator.app import EmulatorState

__all__ = [
    "DEFAULT_LENGTH",
    "GEMINI_MAX_REQUESTS",
    "OPENAI_MAX_INPUTS",
    "emulated_tokens",
    "emulated_vector",
    "register_embedding_routes",
]

OPENAI_MAX_INPUTS: Final = 2048
GEMINI_MAX_REQUESTS: Final = 100
GEMINI_VERSIONS: Final = frozenset(("v1beta",))  # as render_gemini.API_VERSION: the adapter must call /v1beta
DEFAULT_LENGTH: Final = 16
_MODEL_LENGTHS: Final = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "gemini-embedding-001": 3072,
}
_SECRET_HEADERS: Final = frozenset(("authorization", "x-api-key", "x-goog-api-key"))
_TASK_TYPES: Final = frozenset(
    (
        "TASK_TYPE_UNSPECIFIED",
        "RETRIEVAL_QUERY",
        "RETRIEVAL_DOCUMENT",
        "SEMANTIC_SIMILARITY",
        "CLASSIFICATION",
        "CLUSTERING",
        "QUESTION_ANSWERING",
        "FACT_VERIFICATION",
        "CODE_RETRIEVAL_QUERY",
    )
)


def emulated_vector(text: str, length: int) -> list[float]:
    """The unit vector the emulator gives ``text``, every value exactly representable as float32."""
    seed = hashlib.sha256(text.encode()).digest()
    stream = b"".join(hashlib.sha256(seed + i.to_bytes(4, "little")).digest() for i in range(math.ceil(length / 16)))
    raw = [value / 32768.0 - 1.0 for (value,) in struct.iter_unpack("<H", stream[: 2 * length])]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [_float32(v / norm) for v in raw]


def emulated_tokens(texts: list[str]) -> int:
    """The usage the emulator reports: words, at least one per text."""
    return sum(max(1, len(text.split())) for text in texts)


def _float32(value: float) -> float:
    result: float = struct.unpack("<f", struct.pack("<f", value))[0]
    return result


def _length(model: str, dimensions: object) -> int:
    if isinstance(dimensions, int):
        return dimensions
    return _MODEL_LENGTHS.get(model, DEFAULT_LENGTH)


def _reply(reply: ErrorReply) -> Response:
    return Response(json.dumps(reply.body), status=reply.status, headers=reply.headers, mimetype="application/json")


def _openai_invalid(message: str, param: str, code: str | None = None) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    return _reply(ErrorReply(400, body))


def _gemini_invalid(message: str, status: int = 400, code: str = "INVALID_ARGUMENT") -> Response:
    return _reply(ErrorReply(status, {"error": {"code": status, "message": message, "status": code}}))


def _openai_problem(body: Any) -> Response | None:
    """The 400 OpenAI answers for a body it refuses, else ``None``."""
    if not isinstance(body, dict):
        return _openai_invalid("We could not parse the JSON body of your request.", "body")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return _openai_invalid("you must provide a model parameter", "model")
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts:
        return _openai_invalid("'$.input' is invalid. Please check the API reference.", "input")
    if len(texts) > OPENAI_MAX_INPUTS:
        message = (
            f"Invalid 'input': array too long. Expected an array with maximum length {OPENAI_MAX_INPUTS}, "
            f"but got an array with length {len(texts)} instead."
        )
        return _openai_invalid(message, "input", "array_above_max_length")
    if not all(isinstance(text, str) and text for text in texts):
        return _openai_invalid("'$.input' is invalid. Please check the API reference.", "input")
    if body.get("encoding_format", "float") not in ("float", "base64"):
        return _openai_invalid("Invalid value for 'encoding_format': expected 'float' or 'base64'.", "encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
        return _openai_invalid("Invalid 'dimensions': integer below minimum value.", "dimensions")
    return None


def _gemini_problem(body: Any, model: str) -> Response | None:
    """The 400 the Gemini API answers for a batchEmbedContents body it refuses, else ``None``."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return _gemini_invalid("* BatchEmbedContentsRequest.requests: requests must not be empty")
    if len(requests) > GEMINI_MAX_REQUESTS:
        return _gemini_invalid(
            f"* BatchEmbedContentsRequest.requests: at most {GEMINI_MAX_REQUESTS} requests can be in one batch"
        )
    for i, item in enumerate(requests):
        where = f"* BatchEmbedContentsRequest.requests[{i}]"
        if not isinstance(item, dict) or item.get("model") != f"models/{model}":
            return _gemini_invalid(f"{where}.model: must match the model in the URL, models/{model}")
        parts = (item.get("content") or {}).get("parts") if isinstance(item.get("content"), dict) else None
        if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) and p.get("text") for p in parts):
            return _gemini_invalid(f"{where}.content: contents must not be empty and must hold text parts")
        dimensions = item.get("outputDimensionality")
        if dimensions is not None and (not isinstance(dimensions, int) or dimensions < 1):
            return _gemini_invalid(f"{where}.output_dimensionality: must be a positive integer")
        if item.get("taskType") is not None and item["taskType"] not in _TASK_TYPES:
            return _gemini_invalid(f"{where}.task_type: invalid value {item['taskType']!r}")
    return None


async def _answer(scenario: Scenario, error: Callable[[Fault], ErrorReply], body: Callable[[], Any]) -> Response:
    """The scenario's fault, else ``body()`` as JSON (after any pacing)."""
    fault = scenario.fault
    if fault is not None:
        if fault.is_status:
            return _reply(error(fault))
        if fault.kind == "stall":
            await asyncio.sleep(fault.stall_s)
        elif fault.kind in ("malformed_chunk", "truncated"):
            return Response('{"object": "list", "data": [{"emb', mimetype="application/json")
        elif fault.kind == "mid_stream_error":
            return _reply(error(Fault("server_error")))
    if scenario.chunk_delay_s:
        await asyncio.sleep(scenario.chunk_delay_s)
    return Response(json.dumps(body()), mimetype="application/json")


def register_embedding_routes(app: Quart, state: EmulatorState) -> None:
    """Add the embedding routes to the emulator ``app`` over ``state``."""
    from tests.emulator.app import RecordedRequest  # app.py registers these routes: import it once it exists

    async def received(api: str, model: str | None = None) -> tuple[Any, str]:
        """The JSON body (recorded, without credentials) and the model: from the path, else from the body."""
        body = await request.get_json(force=True, silent=True)
        if model is None:
            model = str(body.get("model", "")) if isinstance(body, dict) else ""
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS}
        state.requests.append(RecordedRequest(api, model, body if isinstance(body, dict) else {}, headers))
        return body, model

    def scenario_for(model: str, error: Callable[[Fault], ErrorReply]) -> Scenario | Response:
        name = request.headers.get("x-emulator-scenario") or model
        scenario = state.resolve(name)
        if scenario is None:
            return _reply(ErrorReply(404, {"error": {"message": f"model {name!r} not found", "type": "not_found"}}))
        return scenario

    @app.post("/v1/embeddings")
    async def openai_embeddings() -> Response:
        body, model = await received("openai_embeddings")
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer ") or not authorization.removeprefix("Bearer ").strip():
            return _reply(openai_error(Fault("unauthorized")))
        problem = _openai_problem(body)
        if problem is not None:
            return problem
        scenario = scenario_for(model, openai_error)
        if isinstance(scenario, Response):
            return scenario
        texts: list[str] = [body["input"]] if isinstance(body["input"], str) else body["input"]
        length = _length(model, body.get("dimensions"))
        as_base64 = body.get("encoding_format") == "base64"

        def reply() -> dict[str, Any]:
            data = []
            for index, text in enumerate(texts):
                vector = emulated_vector(text, length)
                packed = base64.b64encode(struct.pack(f"<{length}f", *vector)).decode() if as_base64 else None
                data.append({"object": "embedding", "index": index, "embedding": packed or vector})
            tokens = emulated_tokens(texts)
            return {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }

        return await _answer(scenario, openai_error, reply)

    @app.post("/<version>/models/<model>:batchEmbedContents")
    async def gemini_batch_embed(version: str, model: str) -> Response:
        body, _ = await received("gemini_embeddings", model)
        if version not in GEMINI_VERSIONS:
            return _gemini_invalid(f"API version {version!r} not found", 404, "NOT_FOUND")
        if not request.headers.get("x-goog-api-key"):
            return _reply(gemini_error(Fault("unauthorized")))
        problem = _gemini_problem(body, model)
        if problem is not None:
            return problem
        scenario = scenario_for(model, gemini_error)
        if isinstance(scenario, Response):
            return scenario

        def reply() -> dict[str, Any]:
            embeddings = []
            for item in body["requests"]:
                text = "".join(part["text"] for part in item["content"]["parts"])
                embeddings.append({"values": emulated_vector(text, _length(model, item.get("outputDimensionality")))})
            return {"embeddings": embeddings}

        return await _answer(scenario, gemini_error, reply)
