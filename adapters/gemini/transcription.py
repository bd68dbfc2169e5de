"""Driven adapter: Gemini audio understanding (google-genai ``models.generate_content``) as a ``TranscriptionProvider``.

Gemini has no transcription endpoint: the audio goes inline (``inlineData``) with an instruction to transcribe it
verbatim and answer the transcript alone, at temperature 0 and without thinking (a transcript needs none, and
thinking tokens cost time and money). The language hint and the request's ``prompt`` (names, spelling) are added
to the instruction. Gemini gives no reliable timings, so asking it for timestamps is refused before the call.

The API takes the audio types its documentation lists (WAV, MP3, AIFF, AAC, OGG, FLAC); another container is
refused before the call, naming ``file``. A blocked prompt or a safety finish is a ``ContentPolicyError`` naming
``file``. The SDK client is shared with the vendor's other providers and closed by the bundle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from adapters.gemini.errors import map_gemini_error, safe_reason
from domain.catalog import ModelSpec
from domain.errors import ContentPolicyError, ProviderError, ServiceError, ValidationError
from domain.transcription import Transcript, TranscriptionRequest

__all__ = ["GEMINI_AUDIO_TYPES", "INSTRUCTION", "GeminiTranscriptionProvider", "instruction_for"]

#: Our MIME type -> the one Gemini's documentation names for it (its supported audio formats).
GEMINI_AUDIO_TYPES: Final[Mapping[str, str]] = {
    "audio/wav": "audio/wav",
    "audio/x-wav": "audio/wav",
    "audio/mpeg": "audio/mp3",
    "audio/mp3": "audio/mp3",
    "audio/aiff": "audio/aiff",
    "audio/aac": "audio/aac",
    "audio/ogg": "audio/ogg",
    "audio/flac": "audio/flac",
}
INSTRUCTION: Final = (
    "Transcribe the speech in this audio verbatim. Answer with the transcript only: no title, no timestamps, "
    "no speaker labels, no commentary. If there is no speech, answer with nothing."
)
_POLICY_FINISH: Final = frozenset(("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"))
_VENDOR_FAILURES: Final[tuple[type[Exception], ...]] = (
    genai_errors.APIError,
    httpx2.HTTPError,
    TimeoutError,
    ValueError,
)


def instruction_for(request: TranscriptionRequest) -> str:
    """The transcription instruction, with the request's language hint and prompt."""
    parts = [INSTRUCTION]
    if request.language:
        parts.append(f"The speech is in the language with ISO-639-1 code {request.language!r}.")
    if request.prompt:
        parts.append(f"Context that may help with names and spelling: {request.prompt}")
    return " ".join(parts)


def _name(value: object) -> str:
    return str(getattr(value, "value", value))


class GeminiTranscriptionProvider:
    """``TranscriptionProvider`` over the vendor's shared ``genai.Client`` (its ``aio`` side)."""

    def __init__(self, client: genai.Client, *, name: str = "gemini") -> None:
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def transcribe(self, request: TranscriptionRequest, model: ModelSpec) -> Transcript:
        """One ``generate_content`` call with the audio inline and the transcription instruction."""
        if request.timestamps != "none":
            raise ValidationError(
                "timestamps", f"{model.qualified_id} gives no timestamps", context={"model": model.qualified_id}
            )
        mime_type = GEMINI_AUDIO_TYPES.get(request.content_type)
        if mime_type is None:
            accepted = "WAV, MP3, AIFF, AAC, OGG or FLAC"
            raise ValidationError("file", f"{model.qualified_id} takes {accepted} audio, not {request.content_type}")
        audio = types.Part.from_bytes(data=request.audio, mime_type=mime_type)
        contents = [types.Content(role="user", parts=[audio, types.Part.from_text(text=instruction_for(request))])]
        config = types.GenerateContentConfig(temperature=0.0, thinking_config=types.ThinkingConfig(thinking_budget=0))
        try:
            response = await self._client.aio.models.generate_content(
                model=model.wire_name, contents=contents, config=config
            )
        except _VENDOR_FAILURES as exc:
            raise self._mapped(exc) from exc
        return Transcript(text=self._text(response), language=request.language)

    def _mapped(self, exc: BaseException) -> ServiceError:
        error = map_gemini_error(self._name, exc)
        if type(error) is ValidationError and error.field in ("request", "messages"):
            return ValidationError("file", error.reason, context=error.context)
        return error

    def _text(self, response: types.GenerateContentResponse) -> str:
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            reason = feedback.block_reason_message or f"the audio was blocked ({_name(feedback.block_reason)})"
            raise ContentPolicyError(self._name, safe_reason(reason), field="file")
        candidate = response.candidates[0] if response.candidates else None
        if candidate is None:
            raise ProviderError(self._name, f"{self._name} answered no candidate")
        finish = _name(candidate.finish_reason) if candidate.finish_reason else "STOP"
        if finish in _POLICY_FINISH:
            message = candidate.finish_message or f"the transcript was blocked ({finish})"
            raise ContentPolicyError(self._name, safe_reason(message), field="file")
        parts = candidate.content.parts if candidate.content is not None else None
        texts = [part.text for part in parts or () if part.text and not part.thought]
        if finish not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
            raise ProviderError(
                self._name, f"{self._name} stopped transcribing early ({finish})", context={"finish": finish}
            )
        return "".join(texts).strip()
