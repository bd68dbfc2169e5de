"""Driven adapter: the OpenAI Realtime API's transcription session as a ``LiveTranscriptionProvider``.

``client.realtime.connect(extra_query={"intent": "transcription"})`` opens ``wss://…/v1/realtime?intent=transcription``
(no ``model`` in the URL: that would open a conversation session); ``session.update`` then makes it a
``transcription`` session with the model, the language hint, 24 kHz ``audio/pcm`` (the only PCM rate the API takes:
the client's audio is resampled by the adapter kit's PyAV encoder) and server VAD, so the vendor cuts segments at
pauses. ``open`` returns once ``session.updated`` confirmed it (a refusal there is the attempt's error).

Audio goes out as ``input_audio_buffer.append`` (base64). The vendor answers per committed item: ``…transcription.
delta`` pieces (a ``partial``: the item's text so far) and one ``…transcription.completed`` (its ``final``).
``input_audio_buffer.speech_started``/``speech_stopped`` give an item's place in the audio. ``end`` commits the
buffer's tail; the session is over once that commit is answered and every committed item is transcribed. Telling
the tail's commit from a VAD commit that crosses it: a VAD commit's item had a ``speech_stopped``, a client commit's
never has; an empty tail is answered by the ``input_audio_buffer_commit_empty`` error instead.

The SDK does not reconnect here (no ``on_reconnecting``): a lost connection ends the session with a retryable
``ProviderError``. The client is shared with the vendor's other providers and not closed here.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Final

import openai
from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import (
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeErrorEvent,
    SessionUpdatedEvent,
)
from websockets.exceptions import ConnectionClosed

from adapters.kit.audio import AudioEncoder
from adapters.kit.live import HANDSHAKE_FAILURES, closed_error, handshake_error
from adapters.openai.realtime_wire import event_error, receive
from domain.catalog import ModelSpec
from domain.errors import ProviderError
from domain.live_transcription import LiveConfig, LiveTranscript, TranscriptKind

__all__ = ["REALTIME_RATE", "OpenAILiveSession", "OpenAILiveTranscriptionProvider"]

REALTIME_RATE: Final = 24_000
_COMMIT_EMPTY: Final = "input_audio_buffer_commit_empty"
_END_COMMIT_ID: Final = "switchyard_end_commit"
_SILENCE_MS: Final = 500  # the vendor's default pause that ends a segment, stated so it cannot drift


def _session(model: ModelSpec, config: LiveConfig) -> dict[str, Any]:
    transcription: dict[str, Any] = {"model": model.wire_name}
    if config.language is not None:
        transcription["language"] = config.language
    return {
        "type": "transcription",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": REALTIME_RATE},
                "transcription": transcription,
                "turn_detection": {"type": "server_vad", "silence_duration_ms": _SILENCE_MS},
            }
        },
    }


class OpenAILiveSession:
    """One open transcription session over the SDK's ``AsyncRealtimeConnection``."""

    def __init__(self, connection: AsyncRealtimeConnection, provider: str, in_rate: int) -> None:
        self._connection = connection
        self._provider = provider
        self._encoder = AudioEncoder("pcm", in_rate=in_rate, out_rate=REALTIME_RATE, provider=provider)
        self._segments: dict[str, int] = {}
        self._texts: dict[str, str] = {}
        self._starts: dict[str, float] = {}
        self._ends: dict[str, float] = {}
        self._stopped: set[str] = set()
        self._pending: set[str] = set()
        self._ending = False
        self._tail_answered = False
        self._closed = False

    async def send_audio(self, chunk: bytes) -> None:
        # Resampling one client frame (about 100 ms) takes microseconds: inline, unlike a TTS clip's encoding.
        await self._append(self._encoder.encode(chunk))

    async def end(self) -> None:
        if self._ending:
            return
        await self._append(self._encoder.finish())
        self._ending = True
        try:
            await self._connection.input_audio_buffer.commit(event_id=_END_COMMIT_ID)
        except (ConnectionClosed, openai.OpenAIError) as exc:
            raise self._send_failure(exc) from exc

    async def events(self) -> AsyncIterator[LiveTranscript]:
        while not self._over:
            found = self._handle(await receive(self._connection, self._provider))
            if found is not None:
                yield found

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._encoder.close()
        with contextlib.suppress(Exception):  # already gone: nothing left to release
            await self._connection.close()

    @property
    def _over(self) -> bool:
        return self._ending and self._tail_answered and not self._pending

    async def _append(self, pcm: bytes) -> None:
        if not pcm:
            return
        try:
            await self._connection.input_audio_buffer.append(audio=base64.b64encode(pcm).decode("ascii"))
        except (ConnectionClosed, openai.OpenAIError) as exc:
            raise self._send_failure(exc) from exc

    def _send_failure(self, exc: BaseException) -> ProviderError:
        if isinstance(exc, ConnectionClosed):
            return closed_error(self._provider, exc)
        return ProviderError(self._provider, f"{self._provider} live session failed", original_error=exc)

    def _segment(self, item_id: str) -> int:
        return self._segments.setdefault(item_id, len(self._segments))

    def _transcript(self, kind: TranscriptKind, item_id: str, text: str) -> LiveTranscript:
        return LiveTranscript(
            kind=kind,
            text=text,
            segment=self._segment(item_id),
            start_s=self._starts.get(item_id),
            end_s=self._ends.get(item_id),
        )

    def _handle(self, event: object) -> LiveTranscript | None:
        """The transcript an event carries, if any; the session's bookkeeping; the error it reports, raised."""
        if isinstance(event, InputAudioBufferSpeechStartedEvent):
            self._segment(event.item_id)
            self._starts[event.item_id] = event.audio_start_ms / 1000
        elif isinstance(event, InputAudioBufferSpeechStoppedEvent):
            self._stopped.add(event.item_id)
            self._ends[event.item_id] = event.audio_end_ms / 1000
        elif isinstance(event, InputAudioBufferCommittedEvent):
            self._segment(event.item_id)
            self._pending.add(event.item_id)
            if self._ending and event.item_id not in self._stopped:
                self._tail_answered = True  # only a client commit has no speech_stopped
        elif isinstance(event, ConversationItemInputAudioTranscriptionDeltaEvent):
            if event.delta:
                text = self._texts.get(event.item_id, "") + event.delta
                self._texts[event.item_id] = text
                return self._transcript("partial", event.item_id, text.strip())
        elif isinstance(event, ConversationItemInputAudioTranscriptionCompletedEvent):
            self._pending.discard(event.item_id)
            text = event.transcript.strip()
            if text or event.item_id in self._texts:  # an empty final only retracts partials that went out
                return self._transcript("final", event.item_id, text)
        elif isinstance(event, ConversationItemInputAudioTranscriptionFailedEvent):
            message = event.error.message or "transcription failed"
            raise ProviderError(
                self._provider,
                f"{self._provider} could not transcribe a segment: {message}",
                retryable=True,
                context={"vendor_code": event.error.code},
            )
        elif isinstance(event, RealtimeErrorEvent):
            if self._ending and event.error.code == _COMMIT_EMPTY and event.error.event_id in (None, _END_COMMIT_ID):
                self._tail_answered = True  # nothing after the last VAD commit: no tail to transcribe
            else:
                raise event_error(self._provider, event)
        return None


class OpenAILiveTranscriptionProvider:
    """``LiveTranscriptionProvider`` over the vendor's shared ``AsyncOpenAI`` client (not closed here)."""

    def __init__(self, client: AsyncOpenAI, *, name: str = "openai") -> None:
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def open(self, model: ModelSpec, config: LiveConfig) -> OpenAILiveSession:
        """Connect, make the session a transcription session for ``model``, and wait for the vendor to confirm."""
        try:
            connection = await self._client.realtime.connect(extra_query={"intent": "transcription"}).enter()
        except HANDSHAKE_FAILURES as exc:
            raise handshake_error(self._name, exc) from exc
        except openai.OpenAIError as exc:
            raise ProviderError(
                self._name, f"could not reach {self._name}", original_error=exc, retryable=True
            ) from exc
        session = OpenAILiveSession(connection, self._name, config.sample_rate)
        try:
            await connection.session.update(session=_session(model, config))  # type: ignore[arg-type]
            await self._confirmed(connection)
        except BaseException:
            await session.aclose()
            raise
        return session

    async def _confirmed(self, connection: AsyncRealtimeConnection) -> None:
        while True:
            event = await receive(connection, self._name)
            if isinstance(event, SessionUpdatedEvent):
                return
            if isinstance(event, RealtimeErrorEvent):
                raise event_error(self._name, event)
