"""Driven adapter: ElevenLabs speech-to-text (``speech_to_text.convert``, Scribe) as a ``TranscriptionProvider``.

Scribe answers the text, the detected language (ISO-639-3, e.g. ``eng``), the audio's duration, and each word and
space with its timing when ``timestamps_granularity=word``. It has no segments, so for ``timestamps`` they are
built here from the words: a segment ends at a sentence's final punctuation or at a pause of a second or more.
Audio events (``(laughter)``) are not tagged, so the text is the speech alone, as the other vendors give it. Scribe
takes no prompt: asking for one is refused before the call, naming ``prompt``.

The SDK retries a failed non-streaming request twice by itself; every call here says ``max_retries = 0``, since
retries belong to the attempt runner. The client is shared with the vendor's other providers and closed by the
bundle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from elevenlabs.client import AsyncElevenLabs
from elevenlabs.types import SpeechToTextChunkResponseModel, SpeechToTextWordResponseModel

from adapters.elevenlabs.errors import VENDOR_FAILURES, map_elevenlabs_error
from domain.catalog import ModelSpec
from domain.errors import ProviderError, ValidationError
from domain.transcription import Segment, Transcript, TranscriptionRequest, Word

__all__ = ["ElevenLabsTranscriptionProvider", "segments_of"]

_NO_RETRIES: Final[Any] = {"max_retries": 0}  # the attempt runner retries
#: The vendor's field names -> the request's (an error about one names the request's field).
_FIELDS: Final = {
    "file": "file",
    "language_code": "language",
    "model_id": "model",
    "timestamps_granularity": "timestamps",
}
_SENTENCE_END: Final = (".", "?", "!", "…")
_PAUSE_S: Final = 1.0


def segments_of(words: Sequence[SpeechToTextWordResponseModel]) -> tuple[Segment, ...]:
    """Segments from Scribe's timed items (words, spacing): one per sentence, or per stretch between long pauses."""
    segments: list[Segment] = []
    pending: list[SpeechToTextWordResponseModel] = []

    def close() -> None:
        timed = [item for item in pending if item.type == "word" and item.start is not None and item.end is not None]
        text = "".join(item.text for item in pending).strip()
        if timed and text:
            segments.append(Segment(float(timed[0].start or 0.0), float(timed[-1].end or 0.0), text))
        pending.clear()

    last_end: float | None = None
    for item in words:
        if (
            item.type == "word"
            and last_end is not None
            and item.start is not None
            and item.start - last_end >= _PAUSE_S
        ):
            close()
        pending.append(item)
        if item.type == "word":
            last_end = item.end if item.end is not None else last_end
            if item.text.rstrip().endswith(_SENTENCE_END):
                close()
    close()
    return tuple(segments)


class ElevenLabsTranscriptionProvider:
    """``TranscriptionProvider`` over the vendor's shared ``AsyncElevenLabs`` client (not closed here)."""

    def __init__(self, client: AsyncElevenLabs, *, name: str = "elevenlabs") -> None:
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def transcribe(self, request: TranscriptionRequest, model: ModelSpec) -> Transcript:
        """One ``speech_to_text.convert`` call (synchronous transcription, no webhook)."""
        if request.prompt is not None:
            raise ValidationError(
                "prompt", f"{model.qualified_id} takes no prompt", context={"model": model.qualified_id}
            )
        options: dict[str, Any] = {}
        if request.language is not None:
            options["language_code"] = request.language
        try:
            response = await self._client.speech_to_text.convert(
                model_id=model.wire_name,
                file=(request.filename, request.audio, request.content_type),
                tag_audio_events=False,
                timestamps_granularity="none" if request.timestamps == "none" else "word",
                request_options=_NO_RETRIES,
                **options,
            )
        except VENDOR_FAILURES as exc:
            raise map_elevenlabs_error(self._name, exc, fields=_FIELDS, default_field="file") from exc
        if not isinstance(response, SpeechToTextChunkResponseModel):
            # Multichannel and webhook answers come only when asked for (use_multi_channel, webhook): we never ask.
            raise ProviderError(self._name, f"{self._name} answered a transcription of an unexpected shape")
        return self._transcript(response, request)

    def _transcript(self, response: SpeechToTextChunkResponseModel, request: TranscriptionRequest) -> Transcript:
        segments: tuple[Segment, ...] = ()
        words: tuple[Word, ...] = ()
        if request.timestamps != "none":
            segments = segments_of(response.words)
        if request.timestamps == "word":
            words = tuple(
                Word(float(item.start), float(item.end), item.text.strip())
                for item in response.words
                if item.type == "word" and item.start is not None and item.end is not None
            )
        return Transcript(
            text=response.text.strip(),
            language=request.language or response.language_code or None,
            duration_s=response.audio_duration_secs,
            segments=segments,
            words=words,
        )
