"""Test double (vendor emulator): speech-to-text for files in OpenAI's, ElevenLabs' and Gemini's wire formats.

Routes: OpenAI ``POST /v1/audio/transcriptions`` (multipart; ``json``, ``text``, ``srt``, ``vtt`` and
``verbose_json`` answers as the API gives them, ``timestamp_granularities[]``), ElevenLabs ``POST
/v1/speech-to-text`` (multipart, ``xi-api-key``), and Gemini audio understanding on ``:generateContent``
(``gemini_transcript``, called by the generateContent route when the last content carries inline audio). Each is as
strict as the vendor: its credential header, multipart where multipart is due, the required fields, the file
formats and response formats each model family accepts, and audio that really decodes (PyAV), at least 0.1 s long;
anything else is the vendor's 400 (or 422) in its words.

The transcript is the scenario's text (``text``: "Hello, world!"), spread evenly over the decoded duration for
segments and words, so tests can check both the words and the timings. Status faults answer the vendor's error
(``fault-429`` with Retry-After, ``fault-401``, ``fault-500``); ``stall`` waits, then answers; ``malformed_chunk``
and ``truncated`` send a body cut short; ``mid_stream_error`` is a 500. Every request is recorded with its form
fields and, for the file, its name, type, size and decoded duration.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from quart import Quart, Response, request

from tests.emulator.render_gemini import gemini_error
from tests.emulator.render_openai import openai_error
from tests.emulator.render_transcription import (
    audio_duration,
    elevenlabs_answer,
    elevenlabs_error,
    gemini_answer,
    openai_answer,
)
from tests.emulator.scenario import Fault, Scenario
from tests.emulator.wire import ErrorReply

if TYPE_CHECKING:
    from tests.emulator.app import EmulatorState

__all__ = [
    "ELEVENLABS_MODELS",
    "GEMINI_AUDIO_TYPES",
    "OPENAI_EXTENSIONS",
    "gemini_transcript",
    "register_transcription_routes",
    "wants_transcript",
]

#: The file extensions OpenAI's transcription endpoint takes (it tells formats apart by name).
OPENAI_EXTENSIONS: Final = frozenset(("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"))
_OPENAI_FORMATS: Final = frozenset(("json", "text", "srt", "verbose_json", "vtt", "diarized_json"))
_GPT4O_FORMATS: Final = frozenset(("json", "text"))
_OPENAI_KEYS: Final = frozenset(
    (
        "model",
        "language",
        "prompt",
        "response_format",
        "temperature",
        "timestamp_granularities[]",
        "stream",
        "include[]",
        "chunking_strategy",
    )
)
ELEVENLABS_MODELS: Final = frozenset(("scribe_v1", "scribe_v1_experimental", "scribe_v2"))
_GRANULARITIES: Final = frozenset(("none", "word", "character"))
#: What Gemini documents for audio input.
GEMINI_AUDIO_TYPES: Final = frozenset(("audio/wav", "audio/mp3", "audio/aiff", "audio/aac", "audio/ogg", "audio/flac"))
_MIN_S: Final = 0.1
_SECRET_HEADERS: Final = frozenset(("authorization", "x-api-key", "x-goog-api-key", "xi-api-key"))


class _Refused(Exception):
    """A request the vendor rejects: status, message, (OpenAI) the parameter and code, (ElevenLabs) a code or the
    list of field errors of a 422."""

    def __init__(
        self, message: str, param: str | None = None, code: str | None = None, status: int = 400, detail: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status
        self.detail = detail if detail is not None else {"status": code or "invalid_parameters", "message": message}


def _json(reply: ErrorReply) -> Response:
    return Response(json.dumps(reply.body), status=reply.status, headers=reply.headers, mimetype="application/json")


def _ok(body: Mapping[str, Any]) -> Response:
    return Response(json.dumps(body), mimetype="application/json")


def _headers() -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS}


async def _fault_reply(scenario: Scenario, render: Callable[[Fault], ErrorReply]) -> Response | None:
    """The scripted fault's answer (``None``: serve the scenario). A stall delays, then serves."""
    fault = scenario.fault
    if fault is None:
        return None
    if fault.is_status:
        return _json(render(fault))
    if fault.kind == "stall":
        await asyncio.sleep(fault.stall_s)
        return None
    if fault.kind in ("malformed_chunk", "truncated"):
        return Response('{"text": "Hel', mimetype="application/json")
    return _json(render(Fault("server_error")))


# --- OpenAI ------------------------------------------------------------------------------------------------------


def _check_openai(fields: Mapping[str, list[str]], filename: str, duration: float | None) -> tuple[str, str]:
    """(model, response_format) of a valid OpenAI transcription request; raises ``_Refused`` otherwise."""
    unknown = sorted(set(fields) - _OPENAI_KEYS)
    if unknown:
        raise _Refused(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
    model = (fields.get("model") or [""])[0]
    if not model:
        raise _Refused("you must provide a model parameter", "model")
    response_format = (fields.get("response_format") or ["json"])[0]
    if response_format not in _OPENAI_FORMATS:
        raise _Refused(f"Invalid value for 'response_format': {response_format!r}.", "response_format")
    if not model.startswith("whisper") and response_format not in _GPT4O_FORMATS:
        raise _Refused(
            f"response_format '{response_format}' is not compatible with model '{model}'. Use 'json' or 'text'.",
            "response_format",
            "unsupported_value",
        )
    granularities = fields.get("timestamp_granularities[]", [])
    if granularities and response_format != "verbose_json":
        raise _Refused("timestamp_granularities requires response_format=verbose_json", "timestamp_granularities")
    if any(g not in ("word", "segment") for g in granularities):
        raise _Refused("Invalid value for 'timestamp_granularities'.", "timestamp_granularities")
    language = next(iter(fields.get("language") or ()), None)
    if language is not None and not re.fullmatch(r"[a-z]{2}", language):
        raise _Refused(
            f"Invalid language '{language}'. Language parameter must be specified in ISO-639-1 format.", "language"
        )
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    if extension not in OPENAI_EXTENSIONS:
        supported = sorted(OPENAI_EXTENSIONS)
        raise _Refused(f"Invalid file format. Supported formats: {supported}", "file", "invalid_value")
    if duration is None:
        raise _Refused("Audio file might be corrupted or unsupported", "file", "invalid_value")
    if duration < _MIN_S:
        raise _Refused("Audio file is too short. Minimum audio length is 0.1 seconds.", "file", "audio_too_short")
    return model, response_format


def _openai_refusal(refused: _Refused) -> Response:
    error = {"message": refused.message, "type": "invalid_request_error", "param": refused.param, "code": refused.code}
    return _json(ErrorReply(refused.status, {"error": error}))


# --- ElevenLabs ----------------------------------------------------------------------------------------------------


def _invalid_field(name: str, message: str) -> _Refused:
    """FastAPI's 422: a list of field errors."""
    return _Refused(message, status=422, detail=[{"loc": ["body", name], "msg": message, "type": "value_error"}])


def _check_elevenlabs(fields: Mapping[str, list[str]], has_file: bool, duration: float | None) -> tuple[str, str]:
    """(model_id, timestamps_granularity) of a valid request; raises ``_Refused`` (``message``: the detail)."""
    model = (fields.get("model_id") or [""])[0]
    if not model:
        raise _invalid_field("model_id", "Field required")
    if model not in ELEVENLABS_MODELS:
        raise _Refused(f"Model '{model}' does not support speech to text.", code="invalid_model_id")
    granularity = (fields.get("timestamps_granularity") or ["word"])[0]
    if granularity not in _GRANULARITIES:
        raise _invalid_field("timestamps_granularity", "Input should be 'none', 'word' or 'character'")
    for flag in ("tag_audio_events", "diarize"):
        if (fields.get(flag) or ["false"])[0] not in ("true", "false"):
            raise _invalid_field(flag, "Input should be a valid boolean")
    language = next(iter(fields.get("language_code") or ()), None)
    if language is not None and not re.fullmatch(r"[a-z]{2,3}", language):
        raise _Refused(f"Unknown language '{language}'.", code="invalid_language_code")
    if not has_file and not fields.get("cloud_storage_url"):
        raise _Refused("Must provide either file or cloud_storage_url parameter.")
    if duration is None or duration < _MIN_S:
        raise _Refused("The uploaded file is not a valid audio or video file.", code="invalid_content")
    return model, granularity


def _elevenlabs_refusal(refused: _Refused) -> Response:
    return _json(ErrorReply(refused.status, {"detail": refused.detail}))


def register_transcription_routes(app: Quart, state: EmulatorState) -> None:
    """Add the OpenAI and ElevenLabs transcription routes to the emulator ``app`` over ``state``."""
    from tests.emulator.app import RecordedRequest

    async def read_form() -> tuple[dict[str, list[str]], dict[str, Any] | None, bytes]:
        form = await request.form
        files = await request.files
        fields = {key: form.getlist(key) for key in form}
        upload = files.get("file")
        if upload is None:
            return fields, None, b""
        data = upload.read()
        about = {"filename": upload.filename or "", "content_type": upload.mimetype, "size": len(data)}
        return fields, about, data

    def record(api: str, model: str, fields: Mapping[str, list[str]], about: dict[str, Any] | None) -> None:
        body: dict[str, Any] = {key: values[0] if len(values) == 1 else values for key, values in fields.items()}
        if about is not None:
            body["file"] = about
        state.requests.append(RecordedRequest(api, model, body, _headers()))

    def scenario_for(model: str) -> Scenario | None:
        return state.resolve(request.headers.get("x-emulator-scenario") or model)

    @app.post("/v1/audio/transcriptions")
    async def openai_transcriptions() -> Response:
        if request.mimetype != "multipart/form-data":
            return _openai_refusal(_Refused("Expected a multipart/form-data body."))
        fields, about, data = await read_form()
        duration = audio_duration(data) if about is not None else None
        if about is not None:
            about["duration_s"] = duration
        model = (fields.get("model") or [""])[0]
        record("openai_transcriptions", model, fields, about)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _json(openai_error(Fault("unauthorized")))
        try:
            if about is None:
                raise _Refused("Missing required parameter: 'file'.", "file")
            model, response_format = _check_openai(fields, str(about["filename"]), duration)
        except _Refused as refused:
            return _openai_refusal(refused)
        scenario = scenario_for(model)
        if scenario is None:
            message = f"The model '{model}' does not exist."
            return _openai_refusal(_Refused(message, "model", "model_not_found", status=404))
        failed = await _fault_reply(scenario, openai_error)
        if failed is not None:
            return failed
        assert duration is not None
        payload, mimetype = openai_answer(model, response_format, fields, scenario.text, duration)
        return Response(payload if isinstance(payload, str) else json.dumps(payload), mimetype=mimetype)

    @app.post("/v1/speech-to-text")
    async def elevenlabs_speech_to_text() -> Response:
        if request.mimetype != "multipart/form-data":
            return _json(ErrorReply(400, {"detail": {"status": "invalid_request", "message": "Expected multipart."}}))
        fields, about, data = await read_form()
        duration = audio_duration(data) if about is not None else None
        if about is not None:
            about["duration_s"] = duration
        model = (fields.get("model_id") or [""])[0]
        record("elevenlabs_stt", model, fields, about)
        if not request.headers.get("xi-api-key"):
            return _json(elevenlabs_error(Fault("unauthorized")))
        try:
            model, granularity = _check_elevenlabs(fields, about is not None, duration)
        except _Refused as refused:
            return _elevenlabs_refusal(refused)
        scenario = scenario_for(model)
        if scenario is None:
            return _json(ErrorReply(404, {"detail": {"status": "model_not_found", "message": f"No model {model}"}}))
        failed = await _fault_reply(scenario, elevenlabs_error)
        if failed is not None:
            return failed
        assert duration is not None
        return _ok(elevenlabs_answer(fields, granularity, scenario.text, duration))


# --- Gemini: audio understanding on :generateContent -------------------------------------------------------------


def _inline_audio(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    contents = body.get("contents")
    last = contents[-1] if isinstance(contents, list) and contents else None
    parts = last.get("parts") if isinstance(last, dict) else None
    found = []
    for part in parts or ():
        blob = part.get("inlineData") if isinstance(part, dict) else None
        # proto3 JSON takes lowerCamel and original names alike; google-genai sends ``mime_type`` inside inlineData.
        mime = (blob.get("mimeType") or blob.get("mime_type")) if isinstance(blob, dict) else None
        if isinstance(mime, str) and mime.startswith("audio/"):
            found.append({"mime_type": mime, "data": blob.get("data") if isinstance(blob, dict) else None})
    return found


def wants_transcript(body: Mapping[str, Any]) -> bool:
    """Whether a generateContent body carries inline audio (audio understanding, as a transcription asks)."""
    return bool(_inline_audio(body))


def _google_refusal(message: str) -> Response:
    return _json(ErrorReply(400, {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}))


async def gemini_transcript(scenario: Scenario, model: str, body: Mapping[str, Any]) -> Response:
    """The generateContent answer to inline audio (the route already checked auth and status faults)."""
    durations = []
    for blob in _inline_audio(body):
        if blob["mime_type"] not in GEMINI_AUDIO_TYPES:
            return _google_refusal(f"Unsupported MIME type: {blob['mime_type']}")
        try:
            # google-genai sends bytes URL-safe base64 encoded; proto3 JSON takes either alphabet.
            text = str(blob["data"] or "").replace("-", "+").replace("_", "/")
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return _google_refusal("Invalid value at 'contents[0].parts[0].inline_data.data' (TYPE_BYTES).")
        duration = audio_duration(data)
        if duration is None:
            return _google_refusal("Request contains an invalid argument.")
        durations.append(duration)
    failed = await _fault_reply(scenario, gemini_error)
    if failed is not None:
        return failed
    return _ok(gemini_answer(scenario, model, durations))
