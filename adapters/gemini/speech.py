"""Driven adapter: Gemini text-to-speech (``*-tts`` models through ``streamGenerateContent`` with ``AUDIO`` output)
implementation of the ``SpeechProvider`` port, on google-genai.

The models answer raw PCM (``inlineData`` of type ``audio/L16;codec=pcm;rate=24000``: 16-bit little-endian mono)
in one or more stream chunks; each chunk's samples are encoded into the asked format by the adapter kit (PyAV) and
sent on before the next arrives. Voices are Gemini's prebuilt voices (catalog data; the entry's ``voice`` default
applies when a request names none). Gemini takes delivery directions in the prompt itself, so ``instructions``
precede the text ("Say cheerfully: ..."); it has no speed control. A stream that ends without a finish reason was
cut: a retryable ``ProviderError`` (after audio went out, the attempt runner ends the run with it).
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Final

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from adapters.gemini.errors import map_gemini_error
from adapters.kit.audio import encode_pcm_stream
from domain.catalog import ModelSpec
from domain.errors import ProviderError, ServiceError, ValidationError
from domain.speech import DEFAULT_PCM_RATE, AudioChunk, SpeechRequest, Voice, output_rate

__all__ = ["GeminiSpeechProvider", "pcm_rate"]

_VENDOR_FAILURES: Final[tuple[type[Exception], ...]] = (
    genai_errors.APIError,
    httpx2.HTTPError,
    TimeoutError,
    ValueError,  # a chunk that is not JSON (``UnknownApiResponseError``) or not the shape of the SDK's models
)
_RATE: Final = re.compile(r"rate=(\d+)")
_REFUSALS: Final = frozenset(("SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"))


def pcm_rate(mime_type: str | None) -> int | None:
    """The sample rate of an ``audio/L16`` (raw PCM) part, ``None`` for any other type."""
    if not mime_type or not mime_type.lower().startswith(("audio/l16", "audio/pcm")):
        return None
    match = _RATE.search(mime_type)
    return int(match.group(1)) if match else DEFAULT_PCM_RATE


def _prompt(request: SpeechRequest) -> str:
    return f"{request.instructions.strip()}: {request.input}" if request.instructions else request.input


def _config(request: SpeechRequest, model: ModelSpec) -> types.GenerateContentConfig:
    voice = request.voice or model.default_params.get("voice")
    speech = None
    if voice:
        prebuilt = types.PrebuiltVoiceConfig(voice_name=str(voice))
        speech = types.SpeechConfig(voice_config=types.VoiceConfig(prebuilt_voice_config=prebuilt))
    return types.GenerateContentConfig(response_modalities=["AUDIO"], speech_config=speech)


def _mapped(provider: str, exc: BaseException) -> ServiceError:
    """The domain error; a 400 about the request is about its text (the mapper names chat's fields)."""
    error = map_gemini_error(provider, exc)
    if type(error) is ValidationError and error.field in ("request", "messages"):
        return ValidationError("input", error.reason, context=error.context | {"field": "input"})
    return error


class GeminiSpeechProvider:
    """``SpeechProvider`` over the vendor's shared ``genai.Client`` (its ``aio`` side; not closed here)."""

    def __init__(self, client: genai.Client, *, name: str = "gemini") -> None:
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def voices(self, model: ModelSpec) -> list[Voice]:
        """Gemini's prebuilt voices, as the catalog lists them."""
        return [Voice(id=voice, name=voice) for voice in model.voices]

    def synthesize(self, request: SpeechRequest, model: ModelSpec) -> AsyncIterator[AudioChunk]:
        """The model's PCM, encoded as ``request.format`` chunk by chunk."""
        return self._encoded(request, model)

    async def _encoded(self, request: SpeechRequest, model: ModelSpec) -> AsyncIterator[AudioChunk]:
        if request.speed is not None and request.speed != 1.0:
            raise ValidationError("speed", f"{model.qualified_id} has no speed control; direct it in instructions")
        if request.voice is not None and model.voices and request.voice not in model.voices:
            raise ValidationError("voice", f"{model.qualified_id} has no prebuilt voice {request.voice!r}")
        rate_seen: list[int] = []
        pcm = self._pcm(request, model, rate_seen)
        # The rate is in the first part's MIME type, so the encoder starts once that part arrived.
        first = await anext(pcm, None)
        if first is None:
            raise ProviderError(self._name, f"{self._name} answered no audio", retryable=True)
        rate = rate_seen[0] if rate_seen else DEFAULT_PCM_RATE

        async def replay() -> AsyncIterator[bytes]:
            yield first
            async for piece in pcm:
                yield piece

        encoded = encode_pcm_stream(
            replay(), request.format, in_rate=rate, out_rate=output_rate(request), provider=self._name
        )
        try:
            async for chunk in encoded:
                yield chunk
        finally:
            await encoded.aclose()
            await pcm.aclose()

    async def _pcm(self, request: SpeechRequest, model: ModelSpec, rate_seen: list[int]) -> AsyncGenerator[bytes, None]:
        finished: str | None = None
        try:
            stream = await self._client.aio.models.generate_content_stream(
                model=model.wire_name, contents=_prompt(request), config=_config(request, model)
            )
            try:
                async for chunk in stream:
                    finish, pieces = self._audio_of(chunk, rate_seen)
                    finished = finish or finished
                    for piece in pieces:
                        yield piece
            finally:
                await stream.aclose()  # type: ignore[attr-defined]  # an async generator
        except _VENDOR_FAILURES as exc:
            raise _mapped(self._name, exc) from exc
        if finished is None:
            raise ProviderError(self._name, f"{self._name} ended the audio stream early", retryable=True)
        if finished in _REFUSALS and not rate_seen:
            raise ValidationError("input", f"{self._name} refused to speak this text ({finished})")

    def _audio_of(self, chunk: Any, rate_seen: list[int]) -> tuple[str | None, list[bytes]]:
        """(finish reason, PCM pieces) of one stream chunk; anything but raw PCM is a vendor failure."""
        pieces: list[bytes] = []
        finish: str | None = None
        for candidate in chunk.candidates or ():
            if candidate.finish_reason is not None:
                finish = str(getattr(candidate.finish_reason, "value", candidate.finish_reason))
            parts = candidate.content.parts if candidate.content is not None else None
            for part in parts or ():
                blob = part.inline_data
                if blob is None or not blob.data:
                    continue
                rate = pcm_rate(blob.mime_type)
                if rate is None:
                    raise ProviderError(self._name, f"{self._name} answered {blob.mime_type!r}, not raw PCM")
                if rate_seen and rate != rate_seen[0]:
                    raise ProviderError(self._name, f"{self._name} changed the sample rate mid-stream")
                if not rate_seen:
                    rate_seen.append(rate)
                pieces.append(blob.data)
        return finish, pieces
