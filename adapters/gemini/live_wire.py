"""Driven adapter (Gemini): Gemini Live's wire in domain terms, for ``adapters.gemini.realtime``. The ``setup`` a
``RealtimeConfig`` becomes, a tool result as a ``FunctionResponse``, ``usageMetadata`` as ``Units``, and the
failures of a Live session as domain errors.

After the WebSocket handshake the API refuses and fails with close frames, which google-genai raises as an
``APIError`` whose code is the close code and whose details are the reason: 1008 (policy) with a key complaint is a
refused credential, 1008 for a model that does not serve ``bidiGenerateContent`` a refusal, 1007 (invalid payload) an
invalid request naming the setting its words name, 1011 naming a quota a rate limit, any other 1011 (and 1013/1014)
an outage (retryable); a close without one of those (1000 after ``goAway``, 1006 with no close frame) is a lost
session (retryable). A refused handshake goes through the adapter kit's ladder, its 429 with the wait the body's
``google.rpc.RetryInfo`` names. Each status becomes a domain error through the kit's one ladder (``status_error``).
"""

from __future__ import annotations

import json
from typing import Any, Final

from google.genai import errors as genai_errors
from google.genai import types
from websockets.exceptions import ConnectionClosed, InvalidStatus

from adapters.gemini.errors import map_gemini_error, retry_info_delay
from adapters.kit.errors import status_error
from adapters.kit.live import HANDSHAKE_FAILURES, closed_error, handshake_error
from domain.catalog import ModelSpec
from domain.errors import RateLimitError, ServiceError
from domain.metering import Units
from domain.realtime import RealtimeConfig

__all__ = ["connect_config", "map_live_error", "tool_response", "usage_units"]

_KEY_COMPLAINTS: Final = ("api key", "unregistered callers", "permission", "unauthenticated", "credential")
_QUOTA_COMPLAINTS: Final = ("quota", "resource_exhausted", "rate limit", "exceeded")


def _close_status(code: int, reason: str) -> int | None:
    """The HTTP status a Gemini Live close frame stands for; ``None``: the connection just ended."""
    text = reason.lower()
    if code == 1008:  # policy violation: a refused key, or a model that does not serve bidiGenerateContent
        if any(word in text for word in _KEY_COMPLAINTS):
            return 401
        return 404 if "not found" in text or "not supported" in text else 400
    if code == 1007:  # invalid payload: the API's INVALID_ARGUMENT
        return 400
    if code in (1011, 1013, 1014):  # internal error / try again later / bad gateway; quotas come as 1011 too
        return 429 if any(word in text for word in _QUOTA_COMPLAINTS) else 503
    return None


def _field(reason: str) -> str:
    """The session setting a 1007 refusal is about, as far as its words tell."""
    text = reason.lower()
    for words, name in (("voice", "voice"), ("function", "tools"), ("tool", "tools"), ("instruction", "instructions")):
        if words in text:
            return name
    return "session"


def map_live_error(provider: str, exc: BaseException, *, mid_session: bool = False) -> ServiceError:
    """The domain error for what connecting to, or talking with, Gemini Live raised (``mid_session``: after the
    setup was confirmed)."""
    frame: ConnectionClosed | None = None
    if isinstance(exc, ConnectionClosed):
        frame = exc
    elif isinstance(exc, genai_errors.APIError) and isinstance(exc.code, int) and exc.code >= 1000:
        # google-genai re-raises a close frame as APIError(code=<close code>, details=<reason>) inside the except
        # block that caught websockets' ConnectionClosed, which stays its context.
        frame = exc.__context__ if isinstance(exc.__context__, ConnectionClosed) else None
        code, reason = exc.code, exc.details if isinstance(exc.details, str) else ""
        return _closed(provider, code, reason, exc, frame, mid_session=mid_session)
    if frame is not None:
        received = frame.rcvd
        code, reason = (received.code, received.reason) if received is not None else (1006, "")
        return _closed(provider, code, reason, exc, frame, mid_session=mid_session)
    if isinstance(exc, InvalidStatus):
        return _refused(provider, exc)
    if isinstance(exc, HANDSHAKE_FAILURES):
        return handshake_error(provider, exc)
    return map_gemini_error(provider, exc)


def _refused(provider: str, exc: InvalidStatus) -> ServiceError:
    """A handshake refused with an HTTP status (the kit's ladder); a 429 says when to retry in the body's
    ``google.rpc.RetryInfo``, as the API's other 429s do."""
    error = handshake_error(provider, exc)
    if isinstance(error, RateLimitError) and error.retry_after is None:
        try:
            body = json.loads(bytes(exc.response.body or b"null"))
        except (ValueError, RecursionError):
            body = None
        delay = retry_info_delay(body)
        if delay is not None:
            return RateLimitError(error.message, retry_after=delay, context=error.context | {"retry_after": delay})
    return error


def _closed(
    provider: str,
    code: int,
    reason: str,
    original: BaseException,
    frame: ConnectionClosed | None,
    *,
    mid_session: bool,
) -> ServiceError:
    status = _close_status(code, reason)
    if status is None:
        lost = closed_error(provider, frame)
        lost.context["close_code"] = code
        return lost
    error = status_error(
        provider,
        status,
        original,
        message=reason,
        field=_field,
        vendor_code=f"close_{code}",
        mid_stream=mid_session,
    )
    error.context["close_code"] = code
    return error


def usage_units(raw: types.UsageMetadata) -> Units:
    thoughts = raw.thoughts_token_count or 0
    return Units(
        input_tokens=(raw.prompt_token_count or 0) + (raw.tool_use_prompt_token_count or 0),
        output_tokens=(raw.response_token_count or 0) + thoughts,
        cached_tokens=raw.cached_content_token_count or 0,
        reasoning_tokens=thoughts,
    )


def tool_response(call_id: str, name: str, output: str) -> types.FunctionResponse:
    try:
        parsed = json.loads(output)
    except ValueError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"output": output}
    return types.FunctionResponse(id=call_id, name=name, response=response)


def connect_config(model: ModelSpec, config: RealtimeConfig) -> types.LiveConnectConfig:
    voice = config.voice or model.default_params.get("voice")
    speech = None
    if voice:
        prebuilt = types.PrebuiltVoiceConfig(voice_name=str(voice))
        speech = types.SpeechConfig(voice_config=types.VoiceConfig(prebuilt_voice_config=prebuilt))
    tools: list[types.Tool | Any] | None = None
    if config.tools:
        declarations = [
            types.FunctionDeclaration(
                name=tool.name, description=tool.description or None, parameters_json_schema=tool.parameters or None
            )
            for tool in config.tools
        ]
        tools = [types.Tool(function_declarations=declarations)]
    detection = types.AutomaticActivityDetection(disabled=True) if config.turn_detection == "none" else None
    return types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        speech_config=speech,
        system_instruction=config.instructions or None,
        temperature=config.temperature,
        tools=tools,
        input_audio_transcription=types.AudioTranscriptionConfig() if config.input_transcription else None,
        output_audio_transcription=types.AudioTranscriptionConfig(),
        realtime_input_config=types.RealtimeInputConfig(automatic_activity_detection=detection) if detection else None,
    )
