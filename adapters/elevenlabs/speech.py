"""Driven adapter: ElevenLabs streaming text-to-speech (``POST /v1/text-to-speech/{voice_id}/stream``) implementation
of the ``SpeechProvider`` port, on the ``elevenlabs`` SDK's ``AsyncElevenLabs``.

A request's ``voice`` is an ElevenLabs voice id. MP3 and raw PCM are what the vendor sends natively (``mp3_44100_128``;
``pcm_<rate>`` at the asked rate); Opus, AAC, FLAC and WAV are encoded here from its 24 kHz PCM by the adapter kit
(PyAV), so every format streams the same way whatever the account's tier. ``speed`` travels in ``voice_settings``
(the vendor takes 0.7 to 1.2). The voice list is the vendor's ``GET /v2/voices`` (paged), kept for
``VOICE_CACHE_S``: voices belong to the account, not to a model. One attempt per call (the SDK's own retries are off
for the voice list; its streaming call has none); the client is shared with the vendor's other providers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from elevenlabs.client import AsyncElevenLabs
from elevenlabs.types import VoiceSettings

from adapters.elevenlabs.errors import VENDOR_FAILURES, map_elevenlabs_error
from adapters.kit.audio import encode_pcm_stream
from domain.catalog import ModelSpec
from domain.errors import ServiceError, ValidationError
from domain.speech import AudioChunk, SpeechRequest, Voice, output_rate

__all__ = ["ELEVENLABS_SPEED", "VOICE_CACHE_S", "ElevenLabsSpeechProvider"]

ELEVENLABS_SPEED: Final = (0.7, 1.2)
"""The ``voice_settings.speed`` range ElevenLabs accepts."""
VOICE_CACHE_S: Final = 300.0
_ENCODE_FROM_RATE: Final = 24_000  # pcm_24000 is served on every tier (pcm_44100 needs Pro)
_MP3: Final = "mp3_44100_128"
_PAGE_SIZE: Final = 100
_MAX_PAGES: Final = 20  # 2000 voices: past that an account's list is a library, not a menu
_NO_RETRIES: Final[Any] = {"max_retries": 0}  # the attempt runner retries
#: The vendor's field names, as the request names them.
_FIELDS: Final = {"voice_id": "voice", "text": "input", "model_id": "model", "output_format": "format"}


def _voice(item: Any) -> Voice:
    labels = item.labels or {}
    languages = item.verified_languages or []
    language = labels.get("language") or (languages[0].language if languages else None)
    return Voice(
        id=item.voice_id,
        name=item.name or item.voice_id,
        language=language,
        gender=labels.get("gender"),
        description=item.description,
    )


class ElevenLabsSpeechProvider:
    """``SpeechProvider`` over the vendor's shared ``AsyncElevenLabs`` client (not closed here: the bundle closes
    it). ``clock`` is injectable so the voice cache's expiry can be tested without waiting."""

    def __init__(
        self, client: AsyncElevenLabs, *, name: str = "elevenlabs", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._name = name
        self._clock = clock
        self._voices: tuple[float, list[Voice]] | None = None
        self._voices_lock = asyncio.Lock()

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    def synthesize(self, request: SpeechRequest, model: ModelSpec) -> AsyncIterator[AudioChunk]:
        """The vendor's audio as it streams (MP3 and PCM as sent; other formats encoded from its PCM)."""
        if request.format in ("mp3", "pcm"):
            rate = output_rate(request)
            return self._stream(request, model, _MP3 if rate is None else f"pcm_{rate}")
        pcm = self._stream(request, model, f"pcm_{_ENCODE_FROM_RATE}")
        return encode_pcm_stream(pcm, request.format, in_rate=_ENCODE_FROM_RATE, provider=self._name)

    async def voices(self, model: ModelSpec) -> list[Voice]:
        """The account's voices (every page of ``GET /v2/voices``), cached for ``VOICE_CACHE_S``."""
        async with self._voices_lock:  # one fetch however many requests arrive while it runs
            cached = self._voices
            if cached is not None and self._clock() - cached[0] < VOICE_CACHE_S:
                return list(cached[1])
            voices = await self._fetch_voices()
            self._voices = (self._clock(), voices)
            return list(voices)

    async def _fetch_voices(self) -> list[Voice]:
        voices: list[Voice] = []
        token: str | None = None
        try:
            for _ in range(_MAX_PAGES):
                page = await self._client.voices.search(
                    page_size=_PAGE_SIZE, next_page_token=token, request_options=_NO_RETRIES
                )
                voices.extend(_voice(item) for item in page.voices)
                token = page.next_page_token
                if not page.has_more or not token:
                    break
        except VENDOR_FAILURES as exc:
            raise self._mapped(exc) from exc
        return voices

    async def _stream(self, request: SpeechRequest, model: ModelSpec, output_format: str) -> AsyncIterator[AudioChunk]:
        kwargs = self._params(request, model, output_format)
        try:
            async for chunk in self._client.text_to_speech.stream(**kwargs):
                if chunk:
                    yield chunk
        except VENDOR_FAILURES as exc:
            raise self._mapped(exc) from exc

    def _params(self, request: SpeechRequest, model: ModelSpec, output_format: str) -> dict[str, Any]:
        if not request.voice:
            raise ValidationError("voice", f"{model.qualified_id} needs a voice id")
        if request.instructions is not None:
            raise ValidationError("instructions", f"{model.qualified_id} takes no instructions")
        params: dict[str, Any] = {
            "voice_id": request.voice,
            "text": request.input,
            "model_id": model.wire_name,
            "output_format": output_format,
        }
        if request.speed is not None:
            low, high = ELEVENLABS_SPEED
            if not low <= request.speed <= high:
                raise ValidationError("speed", f"{model.qualified_id} speaks at {low} to {high} times normal speed")
            params["voice_settings"] = VoiceSettings(speed=request.speed)
        return params

    def _mapped(self, exc: BaseException) -> ServiceError:
        return map_elevenlabs_error(self._name, exc, fields=_FIELDS, default_field="input")
