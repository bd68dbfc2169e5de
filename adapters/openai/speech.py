"""Driven adapter: OpenAI text-to-speech (``POST /v1/audio/speech``) implementation of the ``SpeechProvider`` port.

``audio.speech.with_streaming_response.create`` holds the response open and ``iter_bytes`` hands each piece on as it
arrives, so the first audio goes out before the vendor finished speaking. OpenAI encodes every format itself; its raw
``pcm`` is 24 kHz 16-bit mono, so PCM asked at another rate is resampled here (adapter kit, PyAV). ``instructions``
work on ``gpt-4o-mini-tts`` only (the catalog lists them unsupported on ``tts-1``/``tts-1-hd``); voices are catalog
data, since OpenAI has no voice-listing API. One attempt per call; the SDK client is shared with the vendor's other
providers and not closed here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import openai
from openai import AsyncOpenAI

from adapters.kit.audio import encode_pcm_stream
from adapters.openai.errors import TRANSPORT_ERRORS, map_openai_error
from domain.catalog import ModelSpec
from domain.errors import ServiceError, ValidationError
from domain.speech import DEFAULT_PCM_RATE, AudioChunk, SpeechRequest, Voice, output_rate

__all__ = ["OPENAI_PCM_RATE", "OpenAISpeechProvider"]

OPENAI_PCM_RATE: Final = DEFAULT_PCM_RATE
"""OpenAI's raw PCM is 24 kHz, whatever the model."""
_VENDOR_FAILURES: Final[tuple[type[Exception], ...]] = (openai.OpenAIError, *TRANSPORT_ERRORS)
_REQUEST_FIELDS: Final = frozenset(("input", "voice", "speed", "instructions", "model"))


def _params(request: SpeechRequest, model: ModelSpec) -> dict[str, Any]:
    if request.voice is None:
        raise ValidationError("voice", f"{model.qualified_id} needs a voice")
    params: dict[str, Any] = {
        "model": model.wire_name,
        "input": request.input,
        "voice": request.voice,
        "response_format": request.format,
    }
    if request.speed is not None:
        params["speed"] = request.speed
    if request.instructions is not None:
        params["instructions"] = request.instructions
    return params


def _mapped(provider: str, exc: BaseException) -> ServiceError:
    """The domain error, with a 400 about one of the request's fields naming that field (OpenAI says which in
    ``error.param``) rather than the chat-shaped ``request``/``messages``."""
    error = map_openai_error(provider, exc)
    if type(error) is not ValidationError or error.field not in ("request", "messages"):
        return error
    body = getattr(exc, "body", None)
    inner = body.get("error", body) if isinstance(body, Mapping) else None
    param = inner.get("param") if isinstance(inner, Mapping) else None
    field = param if param in _REQUEST_FIELDS else "input"
    return ValidationError(field, error.reason, context=error.context | {"field": field})


class OpenAISpeechProvider:
    """``SpeechProvider`` over the vendor's shared ``AsyncOpenAI`` client (not closed here: the bundle closes it)."""

    def __init__(self, client: AsyncOpenAI, *, name: str = "openai") -> None:
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def voices(self, model: ModelSpec) -> list[Voice]:
        """The catalog's voices for ``model`` (OpenAI lists none through its API)."""
        return [Voice(id=voice, name=voice.title()) for voice in model.voices]

    def synthesize(self, request: SpeechRequest, model: ModelSpec) -> AsyncIterator[AudioChunk]:
        """The vendor's audio as it streams; PCM at a rate other than 24 kHz resampled on the way."""
        rate = output_rate(request)
        if rate is None or rate == OPENAI_PCM_RATE:
            return self._stream(request, model)
        return encode_pcm_stream(
            self._stream(request, model), "pcm", in_rate=OPENAI_PCM_RATE, out_rate=rate, provider=self._name
        )

    async def _stream(self, request: SpeechRequest, model: ModelSpec) -> AsyncIterator[AudioChunk]:
        params = _params(request, model)
        try:
            async with self._client.audio.speech.with_streaming_response.create(**params) as response:
                async for chunk in response.iter_bytes():
                    if chunk:
                        yield chunk
        except _VENDOR_FAILURES as exc:
            raise _mapped(self._name, exc) from exc
