"""Test double (vendor emulator): text-to-speech in OpenAI's, ElevenLabs' and Gemini's wire formats.

Routes: OpenAI ``POST /v1/audio/speech`` (raw audio, chunked), ElevenLabs ``POST /v1/text-to-speech/{voice_id}/stream``
(``xi-api-key``, ``?output_format=``, raw audio, chunked) and ``GET /v2/voices`` (paged), and audio output on Gemini
``:streamGenerateContent`` / ``:generateContent`` (``gemini_speech``, called by the generateContent route when the
request asks for ``AUDIO``: base64 ``audio/L16;codec=pcm;rate=24000`` in ``inlineData``). Each is as strict as the
vendor: the credential header, the required fields, the values each accepts (voices, formats, speed, which models
take instructions); anything else is the vendor's 400/404/422.

The audio is real: ``SECONDS_PER_CHARACTER`` of tone per character of the text, encoded with PyAV in the asked
format, sent in ``CHUNK_BYTES`` pieces paced by the scenario's ``chunk_delay_s``. The scenario comes from the
``x-emulator-scenario`` header, else the model name: status faults answer the vendor's error; ``fault-mid-stream``,
``fault-malformed`` and ``fault-truncated`` cut the stream after ``CUT_AFTER_CHUNKS`` pieces (raw audio: the
connection drops without the closing chunk; Gemini: an error event, a malformed frame, or an end without a finish
reason); ``fault-stall`` goes silent after the first piece.
"""

from __future__ import annotations

import array
import asyncio
import base64
import io
import json
import math
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import av
from quart import Quart, Response, request

from tests.emulator.render_gemini import gemini_error_event
from tests.emulator.render_openai import openai_error
from tests.emulator.scenario import Fault, Scenario
from tests.emulator.wire import LEAKY_KEY, MALFORMED_FRAME, ErrorReply, retry_after_headers, sse

if TYPE_CHECKING:
    from tests.emulator.app import EmulatorState

__all__ = [
    "CHUNK_BYTES",
    "CUT_AFTER_CHUNKS",
    "ELEVENLABS_MODELS",
    "ELEVENLABS_VOICES",
    "GEMINI_VOICES",
    "OPENAI_VOICES",
    "SECONDS_PER_CHARACTER",
    "gemini_speech",
    "gemini_voice",
    "register_speech_routes",
    "render_audio",
    "wants_audio",
]

SECONDS_PER_CHARACTER: Final = 0.05
CHUNK_BYTES: Final = 2048
CUT_AFTER_CHUNKS: Final = 2
OPENAI_VOICES: Final = frozenset(
    ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar")
)
_OPENAI_FORMATS: Final = frozenset(("mp3", "opus", "aac", "flac", "wav", "pcm"))
_OPENAI_KEYS: Final = frozenset(
    ("model", "input", "voice", "instructions", "response_format", "speed", "stream_format")
)
_OPENAI_NO_INSTRUCTIONS: Final = frozenset(("tts-1", "tts-1-hd"))
#: ElevenLabs: voice id -> (name, gender, language).
ELEVENLABS_VOICES: Final[Mapping[str, tuple[str, str, str]]] = {
    "21m00Tcm4TlvDq8ikWAM": ("Rachel", "female", "en"),
    "JBFqnCBsd6RMkjVDRZzb": ("George", "male", "en"),
    "EXAVITQu4vr4xnSDxMaL": ("Sarah", "female", "en"),
}
ELEVENLABS_MODELS: Final = frozenset(("eleven_flash_v2_5", "eleven_multilingual_v2", "eleven_turbo_v2_5", "eleven_v3"))
_ELEVENLABS_FORMATS: Final = frozenset(
    ["mp3_22050_32", "mp3_44100_64", "mp3_44100_128", "mp3_44100_192"]
    + [f"pcm_{rate}" for rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000)]
    + [f"opus_48000_{bits}" for bits in (32, 64, 96, 128, 192)]
)
_ELEVENLABS_KEYS: Final = frozenset(
    (
        "text",
        "model_id",
        "language_code",
        "voice_settings",
        "pronunciation_dictionary_locators",
        "seed",
        "previous_text",
        "next_text",
        "previous_request_ids",
        "next_request_ids",
        "use_pvc_as_ivc",
        "apply_text_normalization",
        "apply_language_text_normalization",
        "audio_effects",
    )
)
_ELEVENLABS_SETTINGS: Final = frozenset(
    ("stability", "use_speaker_boost", "similarity_boost", "style", "speed", "clone_strength")
)
GEMINI_VOICES: Final = frozenset(
    (
        "Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe", "Autonoe",
        "Enceladus", "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome", "Algenib", "Rasalgethi", "Laomedeia",
        "Achernar", "Alnilam", "Schedar", "Gacrux", "Pulcherrima", "Achird", "Zubenelgenubi", "Vindemiatrix",
        "Sadachbia", "Sadaltager", "Sulafat",
    )
)  # fmt: skip
_GEMINI_RATE: Final = 24_000
_GEMINI_MIME: Final = f"audio/L16;codec=pcm;rate={_GEMINI_RATE}"
#: format -> (muxer, encoder, sample rate)
_CONTAINERS: Final[Mapping[str, tuple[str, str]]] = {
    "mp3": ("mp3", "libmp3lame"),
    "opus": ("ogg", "libopus"),
    "aac": ("adts", "aac"),
    "flac": ("flac", "flac"),
    "wav": ("wav", "pcm_s16le"),
}
_CUT_FAULTS: Final = frozenset(("mid_stream_error", "malformed_chunk", "truncated"))


class _StreamCut(Exception):
    """Raised inside a response body: the server drops the connection without the closing chunk."""


def _tone(text: str, rate: int) -> bytes:
    """``SECONDS_PER_CHARACTER`` of 16-bit mono sound per character of ``text`` at ``rate``."""
    samples = max(1, round(len(text) * SECONDS_PER_CHARACTER * rate))
    pitch = 220.0 + (sum(map(ord, text)) % 12) * 20.0
    values = (round(8000 * math.sin(2 * math.pi * pitch * i / rate)) for i in range(samples))
    return array.array("h", values).tobytes()


def render_audio(text: str, audio_format: str, rate: int = _GEMINI_RATE) -> bytes:
    """The whole clip of ``text`` as ``audio_format`` (``pcm``: raw 16-bit little-endian mono at ``rate``)."""
    pcm = _tone(text, rate)
    if audio_format == "pcm":
        return pcm
    muxer, codec = _CONTAINERS[audio_format]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=muxer) as container:
        stream = container.add_stream(codec, rate=48_000 if codec == "libopus" else rate, layout="mono")
        assert isinstance(stream, av.audio.stream.AudioStream)
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
        frame.planes[0].update(pcm)
        frame.sample_rate = rate
        frame.pts = 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def _pieces(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]


async def _audio_body(pieces: list[bytes], scenario: Scenario) -> AsyncIterator[bytes]:
    """The pieces, paced; a cut fault drops the connection after ``CUT_AFTER_CHUNKS``, a stall goes silent."""
    fault = scenario.fault
    for index, piece in enumerate(pieces):
        if fault is not None and fault.kind in _CUT_FAULTS and index == CUT_AFTER_CHUNKS:
            raise _StreamCut("scripted cut after some audio")
        if index and scenario.chunk_delay_s:
            await asyncio.sleep(scenario.chunk_delay_s)
        yield piece
        if fault is not None and fault.kind == "stall" and index == 0:
            await asyncio.sleep(fault.stall_s)


def _json(reply: ErrorReply) -> Response:
    return Response(json.dumps(reply.body), status=reply.status, headers=reply.headers, mimetype="application/json")


def _openai_refusal(message: str, param: str | None, status: int = 400) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}
    return _json(ErrorReply(status, body))


def _check_openai(body: Mapping[str, Any]) -> Response | None:
    """The vendor's 400 for an invalid speech request (``None``: valid)."""
    unknown = sorted(set(body) - _OPENAI_KEYS)
    if unknown:
        return _openai_refusal(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
    for name in ("model", "input", "voice"):
        if not isinstance(body.get(name), str) or not body[name]:
            return _openai_refusal(f"Missing required parameter: '{name}'.", name)
    if len(body["input"]) > 4096:
        return _openai_refusal("Input is too long: the maximum is 4096 characters.", "input")
    if body["voice"] not in OPENAI_VOICES:
        return _openai_refusal(f"Invalid value for 'voice': {body['voice']!r}.", "voice")
    if body.get("response_format", "mp3") not in _OPENAI_FORMATS:
        return _openai_refusal(f"Invalid value for 'response_format': {body['response_format']!r}.", "response_format")
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
        return _openai_refusal("Invalid 'speed': expected a number between 0.25 and 4.0.", "speed")
    if "instructions" in body and body["model"] in _OPENAI_NO_INSTRUCTIONS:
        return _openai_refusal(f"Instructions are not supported with model {body['model']}.", "instructions")
    if body.get("stream_format", "audio") not in ("audio", "sse"):
        return _openai_refusal("Invalid value for 'stream_format'.", "stream_format")
    return None


def _elevenlabs_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json(ErrorReply(status, {"detail": {"status": code, "message": message}}, headers or {}))


def _elevenlabs_fault(fault: Fault) -> Response:
    match fault.kind:
        case "unauthorized":
            return _elevenlabs_error(401, "invalid_api_key", f"Invalid API key: {LEAKY_KEY}")
        case "rate_limited":
            headers = retry_after_headers(fault.retry_after_s, with_ms=False)
            return _elevenlabs_error(429, "too_many_concurrent_requests", "Too many concurrent requests.", headers)
        case "context_too_long":
            return _elevenlabs_error(400, "max_character_limit_exceeded", "Text is too long for this model.")
        case "overloaded":
            return _elevenlabs_error(503, "system_busy", "The system is experiencing heavy traffic.")
        case _:
            return _elevenlabs_error(500, "internal_error", "An internal error occurred.")


def _check_elevenlabs(voice_id: str, body: Mapping[str, Any], output_format: str) -> Response | None:
    """The vendor's 4xx for an invalid stream request (``None``: valid)."""
    unknown = sorted(set(body) - _ELEVENLABS_KEYS)
    if unknown:
        detail = [{"loc": ["body", unknown[0]], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}]
        return _json(ErrorReply(422, {"detail": detail}))
    text = body.get("text")
    if not isinstance(text, str) or not text:
        detail = [{"loc": ["body", "text"], "msg": "Field required", "type": "missing"}]
        return _json(ErrorReply(422, {"detail": detail}))
    if body.get("model_id", "eleven_multilingual_v2") not in ELEVENLABS_MODELS:
        return _elevenlabs_error(400, "model_not_found", f"A model with model ID {body.get('model_id')} not found.")
    if output_format not in _ELEVENLABS_FORMATS:
        return _elevenlabs_error(400, "invalid_output_format", f"Invalid output format: {output_format}.")
    if voice_id not in ELEVENLABS_VOICES:
        return _elevenlabs_error(404, "voice_not_found", f"A voice with voice_id {voice_id} was not found.")
    settings = body.get("voice_settings") or {}
    if not isinstance(settings, dict) or set(settings) - _ELEVENLABS_SETTINGS:
        return _elevenlabs_error(400, "invalid_voice_settings", "voice_settings has unknown fields.")
    speed = settings.get("speed")
    if speed is not None and not 0.7 <= float(speed) <= 1.2:
        return _elevenlabs_error(400, "invalid_voice_settings", "speed must be between 0.7 and 1.2.")
    return None


def _elevenlabs_audio(text: str, output_format: str) -> tuple[bytes, str]:
    kind, _, rest = output_format.partition("_")
    rate = int(rest.partition("_")[0])
    if kind == "pcm":
        return render_audio(text, "pcm", rate), "audio/pcm"
    if kind == "opus":
        return render_audio(text, "opus", 48_000), "audio/ogg"
    return render_audio(text, "mp3", rate), "audio/mpeg"


def _voices_page(page_size: int, token: str | None) -> dict[str, Any]:
    ids = list(ELEVENLABS_VOICES)
    start = int(token) if token and token.isdigit() else 0
    chosen = ids[start : start + page_size]
    more = start + page_size < len(ids)
    voices = [
        {
            "voice_id": voice_id,
            "name": ELEVENLABS_VOICES[voice_id][0],
            "category": "premade",
            "labels": {"gender": ELEVENLABS_VOICES[voice_id][1], "accent": "american"},
            "description": f"{ELEVENLABS_VOICES[voice_id][0]}, a premade voice",
            "verified_languages": [{"language": ELEVENLABS_VOICES[voice_id][2], "model_id": "eleven_multilingual_v2"}],
            "high_quality_base_model_ids": ["eleven_flash_v2_5", "eleven_multilingual_v2"],
        }
        for voice_id in chosen
    ]
    return {
        "voices": voices,
        "has_more": more,
        "total_count": len(ids),
        "next_page_token": str(start + page_size) if more else None,
    }


def register_speech_routes(app: Quart, state: EmulatorState) -> None:
    """Add the OpenAI and ElevenLabs speech routes to the emulator ``app`` over ``state``."""
    from tests.emulator.app import RecordedRequest

    def headers() -> dict[str, str]:
        secret = ("authorization", "x-api-key", "x-goog-api-key", "xi-api-key")
        return {k.lower(): v for k, v in request.headers.items() if k.lower() not in secret}

    def scenario_for(model: str) -> Scenario | None:
        return state.resolve(request.headers.get("x-emulator-scenario") or model)

    @app.post("/v1/audio/speech")
    async def openai_speech() -> Response:
        body = await request.get_json(force=True, silent=True)
        model = str(body.get("model", "")) if isinstance(body, dict) else ""
        state.requests.append(
            RecordedRequest("openai_speech", model, body if isinstance(body, dict) else {}, headers())
        )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _json(openai_error(Fault("unauthorized")))
        if request.mimetype != "application/json" or not isinstance(body, dict):
            return _openai_refusal("We could not parse the JSON body of your request.", None)
        refused = _check_openai(body)
        if refused is not None:
            return refused
        scenario = scenario_for(model)
        if scenario is None:
            return _openai_refusal(f"The model '{model}' does not exist.", "model", 404)
        if scenario.fault is not None and scenario.fault.is_status:
            return _json(openai_error(scenario.fault))
        audio_format = str(body.get("response_format", "mp3"))
        audio = render_audio(body["input"], audio_format)
        content_type = {"mp3": "audio/mpeg", "opus": "audio/opus", "wav": "audio/wav"}.get(
            audio_format, f"audio/{audio_format}"
        )
        return Response(_audio_body(_pieces(audio), scenario), content_type=content_type)

    @app.post("/v1/text-to-speech/<voice_id>/stream")
    async def elevenlabs_stream(voice_id: str) -> Response:
        body = await request.get_json(force=True, silent=True)
        fields = body if isinstance(body, dict) else {}
        model = str(fields.get("model_id", ""))
        recorded = {**fields, "_voice_id": voice_id, "_query": dict(request.args.items())}
        state.requests.append(RecordedRequest("elevenlabs_tts", model, recorded, headers()))
        if not request.headers.get("xi-api-key"):
            return _elevenlabs_error(401, "needs_authorization", "Missing the xi-api-key header.")
        if not isinstance(body, dict):
            return _json(ErrorReply(422, {"detail": [{"loc": ["body"], "msg": "Invalid JSON", "type": "json"}]}))
        output_format = request.args.get("output_format", "mp3_44100_128")
        refused = _check_elevenlabs(voice_id, body, output_format)
        if refused is not None:
            return refused
        scenario = scenario_for(model)
        if scenario is None:
            return _elevenlabs_error(400, "model_not_found", f"A model with model ID {model} not found.")
        if scenario.fault is not None and scenario.fault.is_status:
            return _elevenlabs_fault(scenario.fault)
        audio, content_type = _elevenlabs_audio(body["text"], output_format)
        return Response(_audio_body(_pieces(audio), scenario), content_type=content_type)

    @app.get("/v2/voices")
    async def elevenlabs_voices() -> Response:
        query = dict(request.args.items())
        state.requests.append(RecordedRequest("elevenlabs_voices", "", {"_query": query}, headers()))
        if not request.headers.get("xi-api-key"):
            return _elevenlabs_error(401, "needs_authorization", "Missing the xi-api-key header.")
        scenario = state.resolve(request.headers.get("x-emulator-scenario") or "text")
        if scenario is not None and scenario.fault is not None and scenario.fault.is_status:
            return _elevenlabs_fault(scenario.fault)
        size = query.get("page_size", "10")
        if not size.isdigit() or not 1 <= int(size) <= 100:
            detail = [{"loc": ["query", "page_size"], "msg": "must be between 1 and 100", "type": "value_error"}]
            return _json(ErrorReply(422, {"detail": detail}))
        return Response(json.dumps(_voices_page(int(size), query.get("next_page_token"))), mimetype="application/json")


# --- Gemini: audio output on :generateContent / :streamGenerateContent ---------------------------------------------


def wants_audio(body: Mapping[str, Any]) -> bool:
    """Whether a generateContent body asks for audio output (``generationConfig.responseModalities``)."""
    config = body.get("generationConfig") or {}
    modalities = config.get("responseModalities") if isinstance(config, dict) else None
    return isinstance(modalities, list) and "AUDIO" in modalities


def _google_refusal(message: str, code: int = 400, status: str = "INVALID_ARGUMENT") -> Response:
    return _json(ErrorReply(code, {"error": {"code": code, "message": message, "status": status}}))


def _gemini_text(body: Mapping[str, Any]) -> str | None:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return None
    parts = contents[-1].get("parts") if isinstance(contents[-1], dict) else None
    texts = [p["text"] for p in parts or () if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return "".join(texts) or None


def _field(message: object, camel: str) -> Any:
    """A protobuf JSON field: the API accepts its lowerCamel name and its proto (snake_case) name alike, and
    google-genai 3.6 sends ``speechConfig``'s inner fields in snake_case."""
    if not isinstance(message, Mapping):
        raise TypeError("not an object")
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return message[camel] if camel in message else message[snake]


def gemini_voice(body: Mapping[str, Any]) -> str | bool | None:
    """The prebuilt voice asked for, ``None`` when none (the model's default), ``False`` when malformed."""
    speech = (body.get("generationConfig") or {}).get("speechConfig")
    if speech is None:
        return None
    try:
        voice = _field(_field(_field(speech, "voiceConfig"), "prebuiltVoiceConfig"), "voiceName")
    except (KeyError, TypeError):
        return False
    return voice if isinstance(voice, str) else False


def _gemini_chunk(model: str, pcm: bytes, *, last: bool, characters: int) -> dict[str, Any]:
    part = {"inlineData": {"mimeType": _GEMINI_MIME, "data": base64.b64encode(pcm).decode()}}
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [part] if pcm else []}, "index": 0}
    chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": "tts-emu"}
    if last:
        candidate["finishReason"] = "STOP"
        chunk["usageMetadata"] = {
            "promptTokenCount": max(1, characters // 4),
            "candidatesTokenCount": 25 * max(1, characters // 4),
            "totalTokenCount": 26 * max(1, characters // 4),
        }
    return chunk


async def gemini_speech(scenario: Scenario, model: str, method: str, body: Mapping[str, Any]) -> Response:
    """The answer of a Gemini TTS model (status faults are answered before this is called)."""
    if not model.endswith("-tts"):
        return _google_refusal("The requested combination of response modalities (AUDIO) is not supported.")
    if body.get("generationConfig", {}).get("responseModalities") != ["AUDIO"]:
        return _google_refusal("TTS models answer the AUDIO response modality alone.")
    voice = gemini_voice(body)
    if voice is False or (isinstance(voice, str) and voice not in GEMINI_VOICES):
        return _google_refusal(f"Voice {voice!r} is not a prebuilt voice.")
    text = _gemini_text(body)
    if text is None:
        return _google_refusal("contents must hold the text to speak.")
    pcm = render_audio(text, "pcm", _GEMINI_RATE)
    step = 12_000  # 250 ms of 24 kHz audio per chunk
    pieces = [pcm[i : i + step] for i in range(0, len(pcm), step)]
    if method == "generateContent":
        if scenario.fault is not None and scenario.fault.kind in _CUT_FAULTS:
            return _google_refusal("Internal error encountered.", 500, "INTERNAL")
        whole = _gemini_chunk(model, pcm, last=True, characters=len(text))
        return Response(json.dumps(whole), mimetype="application/json")
    if method != "streamGenerateContent" or request.args.get("alt") != "sse":
        return _google_refusal(f"no method {method!r} with alt={request.args.get('alt')!r}", 404, "NOT_FOUND")
    return Response(_gemini_frames(model, pieces, scenario, len(text)), content_type="text/event-stream")


async def _gemini_frames(model: str, pieces: list[bytes], scenario: Scenario, characters: int) -> AsyncIterator[bytes]:
    fault = scenario.fault
    for index, piece in enumerate(pieces):
        if fault is not None and index == 1:
            if fault.kind == "mid_stream_error":
                yield gemini_error_event()
                return
            if fault.kind == "malformed_chunk":
                yield MALFORMED_FRAME
                return
            if fault.kind == "truncated":
                return
            if fault.kind == "stall":
                await asyncio.sleep(fault.stall_s)
        if index and scenario.chunk_delay_s:
            await asyncio.sleep(scenario.chunk_delay_s)
        yield sse(_gemini_chunk(model, piece, last=index == len(pieces) - 1, characters=characters))
