"""Blueprint: the OpenAI front door under ``/v1`` (Chat Completions, Responses, Models, Embeddings, Images).

Each view reads OpenAI's body, translates it to the domain request, calls the same service as the native route and
translates the answer back; errors are OpenAI's error body (``errors.install_error_handlers``). Bearer auth is the
app's (``/v1/`` is a protected prefix), so a Switchyard token works as the SDK's ``api_key``.
"""

from __future__ import annotations

import time
from typing import Any, Final

import msgspec
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response, request

from entrypoints.http.auth import current_auth
from entrypoints.http.doors.openai.body import read_wire
from entrypoints.http.doors.openai.chat import chat_request, completion
from entrypoints.http.doors.openai.chunks import ChunkWriter
from entrypoints.http.doors.openai.delivery import door_stream_response
from entrypoints.http.doors.openai.embeddings import embedding_list, embedding_request
from entrypoints.http.doors.openai.errors import install_error_handlers
from entrypoints.http.doors.openai.images import image_request, images_response
from entrypoints.http.doors.openai.responses import encode_response, response_object, responses_chat_request
from entrypoints.http.doors.openai.responses_stream import ResponseEventWriter
from entrypoints.http.doors.openai.wire import (
    OpenAIChatCompletion,
    OpenAIChatRequest,
    OpenAIEmbeddingList,
    OpenAIEmbeddingRequest,
    OpenAIErrorBody,
    OpenAIImageRequest,
    OpenAIImagesResponse,
    OpenAIModel,
    OpenAIModelList,
)
from entrypoints.http.doors.openai.wire_responses import OpenAIResponse, OpenAIResponsesRequest
from entrypoints.http.openapi import WireFormat, documented
from entrypoints.http.routes.chat import caller
from services.chat import ChatService
from services.embeddings import EmbeddingService
from services.images import ImageService
from services.registry import ProviderRegistry

__all__ = ["blueprint"]

blueprint = Blueprint("openai_door", __name__)
install_error_handlers(blueprint)

_WIRE: Final = WireFormat(error=OpenAIErrorBody)
_TAGS: Final = ("openai",)
_ERRORS: Final = (400, 401, 404, 413, 415, 422, 429, 502, 503, 504)


def _json(obj: Any) -> Response:
    return Response(msgspec.json.encode(obj), content_type="application/json")


@blueprint.post("/v1/chat/completions")
@inject
@documented(
    "OpenAI Chat Completions: the whole answer, or chat.completion.chunk SSE with stream=true",
    request=OpenAIChatRequest,
    response=OpenAIChatCompletion,
    tags=_TAGS,
    errors=_ERRORS,
    streaming=True,
    wire=_WIRE,
    description=(
        "`model` is a Switchyard model (`provider/model`, bare id or alias). Streams end with exactly one chunk "
        "carrying `finish_reason`, then (with `stream_options.include_usage`) one usage chunk, then `data: [DONE]`; "
        'a failure mid-stream is one `data: {"error": {...}}` line. The stream is a Switchyard stream: its id is '
        "in `X-Stream-ID` (resume or cancel it through `/api/v1/streams/{id}`). `n` must be 1."
    ),
)
async def chat_completions(service: ChatService = Provide["chat_service"]) -> Response:
    body = await read_wire(OpenAIChatRequest)
    chat = chat_request(body)
    who = caller(current_auth().customer_id)
    created = int(time.time())
    if chat.stream:
        stream_id = await service.start_stream(chat, who)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        writer = ChunkWriter(f"chatcmpl-{stream_id}", created, chat.model, include_usage=include_usage)
        return door_stream_response(service.streams, stream_id, who.customer_id, writer)
    result = await service.complete(chat, who)
    return _json(completion(result.response, completion_id=f"chatcmpl-{who.request_id}", created=created))


@blueprint.post("/v1/responses")
@inject
@documented(
    "OpenAI Responses: the whole response, or its typed SSE events with stream=true",
    request=OpenAIResponsesRequest,
    response=OpenAIResponse,
    tags=_TAGS,
    errors=_ERRORS,
    streaming=True,
    wire=_WIRE,
    description=(
        "Text, tools (function calls, in parallel) and structured output (`text.format`) through the same chat "
        "service as `POST /api/v1/chat`. Streams send `response.created`, each output item's events, then "
        "`response.completed`; the stream id is in `X-Stream-ID`. Responses are not stored, so "
        "`previous_response_id` is refused: send the conversation in `input`."
    ),
)
async def responses(service: ChatService = Provide["chat_service"]) -> Response:
    body = await read_wire(OpenAIResponsesRequest)
    chat = responses_chat_request(body)
    who = caller(current_auth().customer_id)
    created = int(time.time())
    if chat.stream:
        stream_id = await service.start_stream(chat, who)
        writer = ResponseEventWriter(f"resp_{stream_id}", created, chat.model)
        return door_stream_response(service.streams, stream_id, who.customer_id, writer)
    result = await service.complete(chat, who)
    answer = response_object(result.response, response_id=f"resp_{who.request_id}", created=created)
    return Response(encode_response(answer), content_type="application/json")


@blueprint.get("/v1/models")
@inject
@documented(
    "OpenAI Models: every model this server can serve, as OpenAI lists models",
    response=OpenAIModelList,
    tags=_TAGS,
    errors=(401,),
    wire=_WIRE,
)
async def list_models(registry: ProviderRegistry = Provide["provider_registry"]) -> Response:
    models = [OpenAIModel(id=spec.qualified_id, owned_by=spec.provider) for spec in registry.models()]
    return _json(OpenAIModelList(data=models))


@blueprint.get("/v1/models/<path:model_id>")
@inject
@documented(
    "OpenAI Models: one model by Switchyard name (ids contain '/': send it percent-encoded or as is)",
    response=OpenAIModel,
    tags=_TAGS,
    errors=(401, 404),
    wire=_WIRE,
)
async def retrieve_model(model_id: str, registry: ProviderRegistry = Provide["provider_registry"]) -> Response:
    spec = registry.resolve(model_id)
    return _json(OpenAIModel(id=spec.qualified_id, owned_by=spec.provider))


@blueprint.post("/v1/embeddings")
@inject
@documented(
    "OpenAI Embeddings: one vector per input, as floats or base64 float32 (the SDK's default)",
    request=OpenAIEmbeddingRequest,
    response=OpenAIEmbeddingList,
    tags=_TAGS,
    errors=_ERRORS,
    wire=_WIRE,
)
async def embeddings(service: EmbeddingService = Provide["embedding_service"]) -> Response:
    body = await read_wire(OpenAIEmbeddingRequest)
    who = caller(current_auth().customer_id)
    result = await service.embed(embedding_request(body), who)
    return _json(embedding_list(result.response, base64_encoded=body.encoding_format == "base64"))


@blueprint.post("/v1/images/generations")
@inject
@documented(
    "OpenAI Images: generate images, answered as URLs of the media store or inline base64",
    request=OpenAIImageRequest,
    response=OpenAIImagesResponse,
    tags=_TAGS,
    errors=_ERRORS,
    wire=_WIRE,
)
async def generate_images(service: ImageService = Provide["image_service"]) -> Response:
    body = await read_wire(OpenAIImageRequest)
    who = caller(current_auth().customer_id)
    result = await service.generate(image_request(body), who)
    b64_json = body.response_format == "b64_json"
    created = int(time.time())
    return _json(images_response(result.generation, created=created, base_url=request.host_url, b64_json=b64_json))
