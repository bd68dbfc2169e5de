"""Blueprint: ``POST /api/v1/audio/transcriptions``, the transcript of an uploaded audio file.

The body is ``multipart/form-data``: a ``file`` part (the audio, with its own Content-Type and file name) and the
text fields ``model``, ``language``, ``prompt``, ``timestamps`` (``none``, ``segment``, ``word``) and ``fallbacks``
(repeatable). As strict as a JSON body: another field, a field given twice, or a missing one is a 422 naming it.
This route's body may reach ``audio.max_upload_bytes`` plus room for the other fields (``upload_limits``: the app
raises its limit for this path alone); the service judges the file itself (415, 413, 422) before any vendor call.
"""

from __future__ import annotations

from typing import Final, cast

from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response, g, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from domain.errors import ConfigurationError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from domain.transcription import TIMESTAMPS, Timestamps, Transcription, TranscriptionRequest
from entrypoints.http.auth import current_auth
from entrypoints.http.envelope import api_ok
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import json_response
from services.attempts import Caller
from services.transcription import TranscriptionService

__all__ = ["PATH", "blueprint", "upload_limits"]

PATH: Final = "/api/v1/audio/transcriptions"
FORM_ALLOWANCE: Final = 64 * 1024
"""Bytes a body may hold besides the file: the other fields and the multipart framing."""
_ERRORS: Final = (400, 401, 404, 413, 415, 422, 429, 502, 503, 504)
_TEXT_FIELDS: Final = frozenset(("model", "language", "prompt", "timestamps", "fallbacks"))
_REPEATABLE: Final = frozenset(("fallbacks",))

blueprint = Blueprint("transcriptions", __name__)


def upload_limits(max_upload_bytes: int) -> dict[str, int]:
    """The body limit of each upload route of this blueprint, for ``uploads.install_body_limits`` (at app
    creation, so a limit that takes nothing stops the app at start)."""
    if max_upload_bytes <= 0:
        raise ConfigurationError("audio.max_upload_bytes", "must be positive")
    return {PATH: max_upload_bytes + FORM_ALLOWANCE}


def _too_large(limit: int) -> PayloadTooLargeError:
    error = PayloadTooLargeError(limit)
    error.message = f"file: the upload is larger than the limit of {limit} bytes"
    error.context["field"] = "file"
    return error


def _one(form: MultiDict[str, str], name: str) -> str | None:
    values = form.getlist(name)
    if len(values) > 1:
        raise ValidationError(name, "given more than once")
    return values[0] if values and values[0] != "" else None


async def _read_upload(max_upload_bytes: int) -> TranscriptionRequest:
    """The transcription request in the multipart body (the file's own checks are the service's)."""
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaTypeError(
            f"expected Content-Type multipart/form-data, got {request.mimetype or 'none'}",
            context={"content_type": request.mimetype},
        )
    if request.content_length is not None and request.content_length > max_upload_bytes + FORM_ALLOWANCE:
        raise _too_large(max_upload_bytes)
    try:
        form = await request.form
        files = await request.files
    except RequestEntityTooLarge:
        raise _too_large(max_upload_bytes) from None
    for name in form:
        if name not in _TEXT_FIELDS:
            raise ValidationError(name, "unknown field", context={"allowed": sorted(_TEXT_FIELDS | {"file"})})
        if name not in _REPEATABLE:
            _one(form, name)
    for name in files:
        if name != "file":
            raise ValidationError(name, "unknown file field; the audio goes in 'file'")
    uploads = files.getlist("file")
    if not uploads:
        raise ValidationError("file", "is required: the audio as a multipart file part")
    if len(uploads) > 1:
        raise ValidationError("file", "given more than once")
    model = _one(form, "model")
    if model is None:
        raise ValidationError("model", "is required")
    timestamps = _one(form, "timestamps") or "none"
    if timestamps not in TIMESTAMPS:
        raise ValidationError("timestamps", f"must be one of {', '.join(TIMESTAMPS)}")
    upload = uploads[0]
    return TranscriptionRequest(
        model=model,
        audio=upload.read(),
        filename=upload.filename or "audio",
        content_type=upload.mimetype or "",
        language=_one(form, "language"),
        prompt=_one(form, "prompt"),
        timestamps=cast(Timestamps, timestamps),
        fallbacks=tuple(value for value in form.getlist("fallbacks") if value),
    )


@blueprint.post(PATH)
@inject
@documented(
    "Transcribe an audio file: its text, language and duration, with segment or word timings on request",
    response=Transcription,
    tags=["audio"],
    errors=_ERRORS,
    description=(
        "A `multipart/form-data` body: `file` (the audio: `audio/*` or a container such as `video/mp4`; with a "
        "generic `application/octet-stream` type the file name's extension decides), `model` (a model with the "
        "`stt` capability), and optionally `language` (ISO-639-1 hint), `prompt` (names, spelling), `timestamps` "
        "(`none`, `segment`, `word`: words come with segments) and `fallbacks` (repeatable). Refused before any "
        "vendor call: a type that is not audio (415), a file over `audio.max_upload_bytes` (413, 25 MB by "
        "default), an empty, undecodable or shorter than 0.1 s file (422 naming `file`), and a model that cannot "
        "give timestamps or take a prompt when asked to (422 naming the field). `data.duration_s` is the decoded "
        "length, which `data.usage.audio_seconds` bills; `meta.extra` says which model and provider served, the "
        "retries and the fallback used."
    ),
)
async def transcriptions(service: TranscriptionService = Provide["transcription_service"]) -> Response:
    upload = await _read_upload(service.max_upload_bytes)
    caller = Caller(current_auth().customer_id, str(getattr(g, "request_id", "") or ""))
    result = await service.transcribe(upload, caller)
    return json_response(api_ok(result.response, extra=result.meta))
