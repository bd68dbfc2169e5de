"""Driven adapter: ElevenLabs realtime speech-to-text (Scribe realtime) as a ``LiveTranscriptionProvider``.

The SDK's ``client.speech_to_text.realtime.connect(options)`` opens ``wss://…/v1/speech-to-text/realtime`` with the
options in the query (``model_id``, ``audio_format=pcm_<rate>``, ``commit_strategy``, ``language_code``) and the
key in ``xi-api-key``, and hands back a callback-style ``RealtimeConnection``; its callbacks only queue what the
vendor said, which ``events`` then reads in order. ``open`` returns once the vendor's ``session_started`` came.

Live audio is served by the realtime model (``scribe_v2_realtime``): a catalog entry of the Scribe family
(``scribe_v1``, whose files go to the batch API) is served live by it, and an entry naming a realtime model is sent as
it is. Audio goes out as ``input_audio_chunk`` messages (base64, at the client's own rate: the vendor takes every
PCM rate a client may declare). ``partial_transcript`` carries the uncommitted segment's text so far, and each
commit is answered by one ``committed_transcript`` (the segment's final text). Commits are the client's
(``commit_strategy=manual``): every ``commit_every_s`` of audio and at ``end``, so the number of commits still
unanswered says exactly when the session is over (a VAD commit crossing the last one could not be told apart).

Vendor errors arrive as messages (``auth_error``, ``rate_limited``, ``transcriber_error`` ...) and end the session
with the matching domain error; a connection lost mid-session is a retryable ``ProviderError``. The client is shared
with the vendor's other providers and not closed here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Final

from elevenlabs.client import AsyncElevenLabs
from elevenlabs.realtime import (
    AudioFormat,
    CommitStrategy,
    RealtimeAudioOptions,
    RealtimeConnection,
    RealtimeEvents,
)

from adapters.kit.live import HANDSHAKE_FAILURES, closed_error, handshake_error
from domain.catalog import ModelSpec
from domain.errors import ProviderError, RateLimitError, ServiceError, ValidationError
from domain.live_transcription import SAMPLE_BYTES, LiveConfig, LiveTranscript

__all__ = ["REALTIME_MODEL", "ElevenLabsLiveSession", "ElevenLabsLiveTranscriptionProvider", "realtime_model"]

REALTIME_MODEL: Final = "scribe_v2_realtime"
COMMIT_EVERY_S: Final = 20.0
#: Vendor error messages that mean "too much, try later".
_BUSY: Final = frozenset(("rate_limited", "commit_throttled", "queue_overflow", "resource_exhausted"))
#: Vendor error messages that a new attempt may well not see.
_TRANSIENT: Final = frozenset(("error", "transcriber_error"))


def realtime_model(model: ModelSpec) -> str:
    """The vendor model that serves ``model`` live."""
    wire = model.wire_name
    return wire if wire.endswith("_realtime") else REALTIME_MODEL


def _message_error(provider: str, data: dict[str, Any]) -> ServiceError:
    kind = str(data.get("message_type") or "")
    context = {"provider": provider, "vendor_code": kind or None}
    if not kind:  # the SDK's own report of a broken connection or an unreadable message
        return ProviderError(provider, f"{provider} live session failed", retryable=True, context=context)
    if kind in _BUSY:
        return RateLimitError(f"{provider} rate limit reached ({kind})", context=context)
    if kind == "auth_error":
        return ProviderError(provider, f"{provider} rejected our credentials", context={**context, "status": 401})
    if kind == "insufficient_audio_activity":
        return ValidationError("audio", "the vendor heard no speech for too long", context=context)
    retryable = kind in _TRANSIENT
    return ProviderError(provider, f"{provider} ended the live session ({kind})", retryable=retryable, context=context)


class ElevenLabsLiveSession:
    """One open realtime session; the SDK's callbacks feed ``_inbox``."""

    def __init__(self, connection: RealtimeConnection, provider: str, sample_rate: int, commit_every_s: float) -> None:
        self._connection = connection
        self._provider = provider
        self._commit_bytes = max(SAMPLE_BYTES, int(commit_every_s * sample_rate) * SAMPLE_BYTES)
        self._inbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._uncommitted = 0
        self._unanswered = 0
        self._segment = 0
        self._partial_sent = False
        self._ending = False
        self._closed = False
        for event, kind in (
            (RealtimeEvents.SESSION_STARTED, "started"),
            (RealtimeEvents.PARTIAL_TRANSCRIPT, "partial"),
            (RealtimeEvents.COMMITTED_TRANSCRIPT, "committed"),
            (RealtimeEvents.ERROR, "error"),
            (RealtimeEvents.CLOSE, "close"),
        ):
            connection.on(event, self._queue(kind))

    def _queue(self, kind: str) -> Any:
        def put(data: Any = None) -> None:
            self._inbox.put_nowait((kind, data if isinstance(data, dict) else {}))

        return put

    async def started(self) -> None:
        """Wait for ``session_started`` (the vendor accepted the session) or the error that refused it."""
        while True:
            kind, data = await self._inbox.get()
            if kind == "started":
                return
            if kind == "error":
                raise _message_error(self._provider, data)
            if kind == "close":
                raise closed_error(self._provider)

    async def send_audio(self, chunk: bytes) -> None:
        if not chunk:
            return
        await self._send({"audio_base_64": base64.b64encode(chunk).decode("ascii")})
        self._uncommitted += len(chunk)
        if self._uncommitted >= self._commit_bytes:
            await self._commit()

    async def end(self) -> None:
        if self._ending:
            return
        self._ending = True
        if self._uncommitted:
            await self._commit()
        self._inbox.put_nowait(("ended", {}))  # wakes ``events`` when no commit is left to wait for

    async def events(self) -> AsyncIterator[LiveTranscript]:
        while not (self._ending and self._unanswered == 0):
            kind, data = await self._inbox.get()
            if kind == "partial":
                text = str(data.get("text") or "").strip()
                if text:
                    self._partial_sent = True
                    yield LiveTranscript("partial", text, self._segment)
            elif kind == "committed":
                self._unanswered = max(0, self._unanswered - 1)
                text = str(data.get("text") or "").strip()
                if text or self._partial_sent:  # an empty final only retracts partials that went out
                    yield LiveTranscript("final", text, self._segment)
                    self._segment += 1
                self._partial_sent = False
            elif kind == "error":
                raise _message_error(self._provider, data)
            elif kind == "close":
                raise closed_error(self._provider)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # already gone: nothing left to release
            await self._connection.close()

    async def _commit(self) -> None:
        try:
            await self._connection.commit()
        except Exception as exc:  # websockets' ConnectionClosed and its kin: the connection went away
            raise self._lost(exc) from exc
        self._uncommitted = 0
        self._unanswered += 1

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self._connection.send(message)
        except Exception as exc:  # websockets' ConnectionClosed and its kin: the connection went away
            raise self._lost(exc) from exc

    def _lost(self, exc: BaseException) -> ProviderError:
        return ProviderError(
            self._provider, f"{self._provider} live session was lost", original_error=exc, retryable=True
        )


class ElevenLabsLiveTranscriptionProvider:
    """``LiveTranscriptionProvider`` over the vendor's shared ``AsyncElevenLabs`` client (not closed here)."""

    def __init__(self, client: AsyncElevenLabs, *, name: str = "elevenlabs", commit_every_s: float = COMMIT_EVERY_S):
        self._client = client
        self._name = name
        self._commit_every_s = commit_every_s

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def open(self, model: ModelSpec, config: LiveConfig) -> ElevenLabsLiveSession:
        """Connect with the session's options in the query and wait for ``session_started``."""
        options: RealtimeAudioOptions = {
            "model_id": realtime_model(model),
            "audio_format": AudioFormat(f"pcm_{config.sample_rate}"),
            "sample_rate": config.sample_rate,
            "commit_strategy": CommitStrategy.MANUAL,
        }
        if config.language is not None:
            options["language_code"] = config.language
        try:
            connection = await self._client.speech_to_text.realtime.connect(options)
        except HANDSHAKE_FAILURES as exc:
            raise handshake_error(self._name, exc) from exc
        except ValueError as exc:  # the SDK's own check: no key configured
            raise ProviderError(self._name, f"{self._name} is not configured for live sessions") from exc
        session = ElevenLabsLiveSession(connection, self._name, config.sample_rate, self._commit_every_s)
        try:
            await session.started()
        except BaseException:
            await session.aclose()
            raise
        return session
