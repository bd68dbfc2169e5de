"""Blueprint: the OpenAI front door under ``/v1`` (Chat Completions, Responses, Models, Embeddings, Images, Audio).

Each view reads OpenAI's body, translates it to the domain request, calls the same service as the native route and
translates the answer back; errors are OpenAI's error body (``errors.install_error_handlers``). Bearer auth is the
app's (``/v1/`` is a protected prefix), so a Switchyard token works as the SDK's ``api_key``.
"""

from __future__ import annotations

import time
from typing import Any, Final, cast

import msgspec
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Quart, Response, request
from quart.blueprints import BlueprintSetupState
from werkzeug.exceptions import RequestEntityTooLarge

from domain.errors import NotFoundError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from entrypoints.http import uploads
from entrypoints.http.auth import current_auth
from entrypoints.http.doors.openai.audio import (
    TRANSCRIPT_FORMATS,
    renamed_refusal,
    speech_request,
    transcript_answer,
    transcription_request,
)
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
from entrypoints.http.doors.openai.wire_audio import OpenAISpeechRequest, OpenAITranscriptionVerbose
from entrypoints.http.doors.openai.wire_responses import OpenAIResponse, OpenAIResponsesRequest
from entrypoints.http.openapi import WireFormat, documented
from entrypoints.http.routes import speech as speech_route
from entrypoints.http.routes import transcriptions as transcriptions_route
from entrypoints.http.routes.chat import caller
from services.chat import ChatService
from services.embeddings import EmbeddingService
from services.images import ImageService
from services.principal import allows_model, visible_models
from services.registry import ProviderRegistry
from services.speech import SpeechService
from services.transcription import TranscriptionService

__all__ = ["blueprint"]

blueprint = Blueprint("openai_door", __name__)
install_error_handlers(blueprint)

_WIRE: Final = WireFormat(error=OpenAIErrorBody)
_TAGS: Final = ("openai",)
_ERRORS: Final = (400, 401, 404, 413, 429, 502, 503, 504)  # 415 and 422 are OpenAI's 400 (errors.door_status)
TRANSCRIPTIONS_PATH: Final = "/v1/audio/transcriptions"


@blueprint.record_once
def _allow_uploads(state: BlueprintSetupState) -> None:
    """The transcription upload may be as large as on the native route (``audio.max_upload_bytes`` plus the form):
    Quart fixes a request's body limit when it creates the request, from its path (see ``uploads``)."""
    app = cast(Quart, state.app)
    settings = app.extensions["container"].settings()
    native = transcriptions_route.upload_limits(settings.audio.max_upload_bytes)[transcriptions_route.PATH]
    uploads.install_body_limits(app, {TRANSCRIPTIONS_PATH: native})


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
    "OpenAI Models: every model this server can serve to this caller (an API key's allow-list applies), as OpenAI "
    "lists models",
    response=OpenAIModelList,
    tags=_TAGS,
    errors=(401,),
    wire=_WIRE,
)
async def list_models(registry: ProviderRegistry = Provide["provider_registry"]) -> Response:
    models = [OpenAIModel(id=spec.qualified_id, owned_by=spec.provider) for spec in visible_models(registry.models())]
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
    if not allows_model(spec):  # as OpenAI answers for a model the key has no access to
        raise NotFoundError(f"model {model_id!r} does not exist or this API key has no access to it")
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


@blueprint.post("/v1/audio/speech")
@inject
@documented(
    "OpenAI Audio speech: the audio bytes, streamed as the vendor produces them",
    request=OpenAISpeechRequest,
    tags=_TAGS,
    errors=_ERRORS,
    wire=_WIRE,
    description=(
        "`model` is a Switchyard text-to-speech model; `voice` may be left out where the model has a default. "
        "`response_format` is mp3 (default), opus, aac, flac, wav or pcm (24 kHz 16-bit little-endian mono). The "
        "answer is the audio itself with chunked transfer, its first chunk sent as soon as the vendor's arrived; "
        "errors before it are OpenAI's error body, a vendor failure after it ends the audio early. Only "
        "`stream_format: audio` is served. The `X-Switchyard-*` headers are the native route's."
    ),
)
async def speech(
    service: SpeechService = Provide["speech_service"],
    send_timeout_s: float = Provide["settings.provided.streaming.send_timeout_s"],
) -> Response:
    body = await read_wire(OpenAISpeechRequest)
    who = caller(current_auth().customer_id)
    stream = await service.start(speech_request(body), who)  # returns with the first chunk in hand, or raises
    # The native route's body and headers, so both doors stream and bill audio alike (one mechanism, style 17).
    audio = speech_route.audio_body(stream, float(send_timeout_s))
    response = Response(audio, status=200, content_type=stream.content_type, headers=speech_route.audio_headers(stream))
    response.timeout = None  # a clip has no overall deadline; each write has one
    return response


async def _read_transcription_form(max_upload_bytes: int) -> tuple[dict[str, list[str]], bytes, str, str]:
    """The text fields (each name's values), and the file's bytes, name and type."""
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaTypeError(
            f"expected Content-Type multipart/form-data, got {request.mimetype or 'none'}",
            context={"content_type": request.mimetype, "field": "file"},
        )
    limit = max_upload_bytes + transcriptions_route.FORM_ALLOWANCE
    too_large = PayloadTooLargeError(max_upload_bytes)
    too_large.message = f"file: the upload is larger than the limit of {max_upload_bytes} bytes"
    too_large.context["field"] = "file"
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    try:
        form = await request.form
        files = await request.files
    except RequestEntityTooLarge:
        raise too_large from None
    upload = files.get("file")
    if upload is None:
        raise ValidationError("file", "is required: the audio as a multipart file part")
    fields = {name: form.getlist(name) for name in form}
    return fields, upload.read(), upload.filename or "audio", upload.mimetype or ""


@blueprint.post(TRANSCRIPTIONS_PATH)
@inject
@documented(
    "OpenAI Audio transcriptions: the text of an uploaded audio file (json, text or verbose_json)",
    response=OpenAITranscriptionVerbose,
    tags=_TAGS,
    errors=_ERRORS,
    wire=_WIRE,
    description=(
        "A `multipart/form-data` body as the SDK sends it: `file`, `model` (a Switchyard speech-to-text model), and "
        "optionally `language`, `prompt`, `response_format` (" + ", ".join(TRANSCRIPT_FORMATS) + "; srt and vtt "
        "are refused naming it) and, with verbose_json, `timestamp_granularities[]` (segment, word). The file is "
        "judged as on `POST /api/v1/audio/transcriptions` (not audio, empty or undecodable: 400 naming `file`; "
        "over `audio.max_upload_bytes`: 413). `usage.seconds` is the decoded length that is billed; verbose_json's "
        "`language` is the ISO-639-1 code."
    ),
)
async def transcriptions(service: TranscriptionService = Provide["transcription_service"]) -> Response:
    fields, audio, filename, content_type = await _read_transcription_form(service.max_upload_bytes)
    upload, response_format = transcription_request(fields, audio=audio, filename=filename, content_type=content_type)
    who = caller(current_auth().customer_id)
    try:
        result = await service.transcribe(upload, who)
    except ValidationError as exc:
        raise renamed_refusal(exc) from None
    payload, media_type = transcript_answer(result.response, response_format)
    headers = {"X-Switchyard-Model": result.response.model}
    if "provider" in result.meta:
        headers["X-Switchyard-Provider"] = str(result.meta["provider"])
    return Response(payload, content_type=media_type, headers=headers)
