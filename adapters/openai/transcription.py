"""Driven adapter: OpenAI Audio API (``audio.transcriptions.create``) implementation of ``TranscriptionProvider``.

Two families answer differently. ``whisper-1`` takes ``response_format=verbose_json``, which reports the language
and the duration, and with ``timestamp_granularities[]`` the segments and words with their timings; it is always
asked for that format. The GPT-4o transcribe models (``gpt-4o-transcribe``, ``gpt-4o-mini-transcribe``) answer
``json`` only (text and usage, no timings), so asking them for timestamps is refused before the call, naming
``timestamps``. The file goes as ``(name, bytes, type)``: OpenAI tells formats apart by the name's extension, which
the service has set from the decoded container. One attempt per call; the SDK client is shared and not closed here.
"""

from __future__ import annotations

from typing import Any, Final

import openai
from openai import AsyncOpenAI
from openai.types.audio import Transcription as OpenAITranscription
from openai.types.audio import TranscriptionVerbose

from adapters.openai.errors import TRANSPORT_ERRORS, map_openai_error
from domain.catalog import ModelSpec
from domain.errors import ProviderError, ServiceError, ValidationError
from domain.transcription import Segment, Transcript, TranscriptionRequest, Word

__all__ = ["OpenAITranscriptionProvider", "gives_timestamps"]

_VENDOR_FAILURES: Final[tuple[type[Exception], ...]] = (openai.OpenAIError, *TRANSPORT_ERRORS)
#: What ``timestamps`` asks ``whisper-1`` for (words come with segments, as ``timestamps = word`` promises).
_GRANULARITIES: Final[dict[str, list[Any]]] = {"segment": ["segment"], "word": ["word", "segment"]}


def gives_timestamps(model: ModelSpec) -> bool:
    """Whether ``model`` answers ``verbose_json`` (timings, language, duration): the Whisper family."""
    return model.wire_name.startswith("whisper")


def _params(request: TranscriptionRequest, model: ModelSpec) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": model.wire_name,
        "file": (request.filename, request.audio, request.content_type),
    }
    if request.language is not None:
        params["language"] = request.language
    if request.prompt is not None:
        params["prompt"] = request.prompt
    if gives_timestamps(model):
        params["response_format"] = "verbose_json"
        if request.timestamps != "none":
            params["timestamp_granularities"] = _GRANULARITIES[request.timestamps]
    elif request.timestamps != "none":
        raise ValidationError(
            "timestamps", f"{model.qualified_id} gives no timestamps", context={"model": model.qualified_id}
        )
    else:
        params["response_format"] = "json"
    return params


def _mapped(provider: str, exc: BaseException) -> ServiceError:
    error = map_openai_error(provider, exc)
    # A 400 about the upload (format, corruption, length) is about the request's file, not a chat's messages.
    if type(error) is ValidationError and error.field in ("request", "messages"):
        return ValidationError("file", error.reason, context=error.context)
    return error


def _verbose(response: TranscriptionVerbose, request: TranscriptionRequest) -> Transcript:
    segments: tuple[Segment, ...] = ()
    words: tuple[Word, ...] = ()
    if request.timestamps != "none":
        segments = tuple(Segment(s.start, s.end, s.text.strip()) for s in response.segments or ())
    if request.timestamps == "word":
        words = tuple(Word(w.start, w.end, w.word.strip()) for w in response.words or ())
    return Transcript(
        text=response.text.strip(),
        language=request.language or response.language or None,
        duration_s=response.duration,
        segments=segments,
        words=words,
    )


def _plain(response: OpenAITranscription, request: TranscriptionRequest) -> Transcript:
    usage = response.usage
    duration = usage.seconds if usage is not None and usage.type == "duration" else None
    return Transcript(text=response.text.strip(), language=request.language, duration_s=duration)


class OpenAITranscriptionProvider:
    """``TranscriptionProvider`` over the vendor's shared ``AsyncOpenAI`` client (not closed here)."""

    def __init__(self, client: AsyncOpenAI, *, name: str = "openai") -> None:
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def transcribe(self, request: TranscriptionRequest, model: ModelSpec) -> Transcript:
        """One ``audio.transcriptions.create`` call in the format the model's family answers."""
        params = _params(request, model)
        try:
            response = await self._client.audio.transcriptions.create(**params)
        except _VENDOR_FAILURES as exc:
            raise _mapped(self._name, exc) from exc
        if isinstance(response, TranscriptionVerbose):
            return _verbose(response, request)
        if isinstance(response, OpenAITranscription):
            return _plain(response, request)
        raise ProviderError(self._name, f"{self._name} answered a transcription of an unexpected shape")
