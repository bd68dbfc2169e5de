"""Driven adapter: the OpenAI Realtime API's conversation session (``gpt-realtime`` models) as a ``RealtimeProvider``.

``client.realtime.connect(model=...)`` opens ``wss://…/v1/realtime?model=…``; ``session.update`` then makes it a
``realtime`` session answering in audio: 24 kHz ``audio/pcm`` both ways (the only PCM rate the API takes, so 16 kHz
client audio is resampled by the adapter kit's PyAV resampler), the voice, the instructions, input transcription,
server VAD (``create_response``/``interrupt_response`` on, so the vendor answers at the user's pauses and stops when
the user talks over it) or none, and the function tools. ``open`` returns once ``session.updated`` confirmed it (a
refusal there is the attempt's error; a refused voice or tool is the client's ``ValidationError`` naming it).

In: ``input_audio_buffer.append`` (base64); ``commit`` is ``input_audio_buffer.commit`` then ``response.create``
(a commit alone never makes the model answer; an empty buffer's ``input_audio_buffer_commit_empty`` is no error: the
model answers the conversation so far); text and tool results are ``conversation.item.create`` then
``response.create``. Only one response may be active: a ``response.create`` asked for while one is (as the session
sees it, or as the vendor says with ``conversation_already_has_active_response``) is sent once it is done, so a tool
result that arrives before its response ended is still answered. ``cancel`` is ``response.cancel`` (the vendor's
``response_cancel_not_active``, when the response ended meanwhile, is no error).

Out: ``response.output_audio.delta`` → ``RealtimeAudio``; ``response.output_audio_transcript.delta``/``.done`` and
``conversation.item.input_audio_transcription.delta``/``.completed`` → ``RealtimeTranscript``;
``input_audio_buffer.speech_started``/``speech_stopped`` → ``RealtimeSpeechStarted``/``RealtimeSpeechStopped``;
``response.function_call_arguments.done`` → ``RealtimeToolCall``; ``response.done`` → ``RealtimeTurnDone`` with its
usage (input tokens include cached and audio tokens, output tokens audio ones). Its status: ``cancelled`` with
reason ``turn_detected`` is ``interrupted``, ``incomplete`` (cut by ``max_output_tokens`` or the content filter)
still ``completed`` (the turn ended; nothing failed), ``failed`` ``failed``. A failed transcription of the user's
audio is no reason to end the conversation: it is dropped. The SDK does not reconnect here: a lost connection ends
the session with a retryable ``ProviderError``. The client is shared with the vendor's other providers and not
closed here.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Final

import openai
from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import (
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeErrorEvent,
    ResponseAudioDeltaEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    SessionUpdatedEvent,
)
from openai.types.realtime.realtime_response import RealtimeResponse
from websockets.exceptions import ConnectionClosed

from adapters.kit.audio import AudioEncoder
from adapters.kit.live import HANDSHAKE_FAILURES, closed_error, handshake_error
from adapters.openai.realtime_wire import event_error, parsed, receive, receive_raw
from domain.catalog import ModelSpec
from domain.errors import ProviderError, ValidationError
from domain.metering import Units
from domain.realtime import (
    REALTIME_OUTPUT_RATE,
    RealtimeAudio,
    RealtimeConfig,
    RealtimeEvent,
    RealtimeSpeechStarted,
    RealtimeSpeechStopped,
    RealtimeToolCall,
    RealtimeTranscript,
    RealtimeTurnDone,
    TurnStatus,
)

__all__ = ["INPUT_TRANSCRIPTION_MODEL", "OpenAIRealtimeProvider", "OpenAIRealtimeSession"]

#: Transcribes the user's audio when the session asks for input transcription (the model hears the audio itself).
INPUT_TRANSCRIPTION_MODEL: Final = "gpt-4o-mini-transcribe"
_PCM: Final = {"type": "audio/pcm", "rate": REALTIME_OUTPUT_RATE}
_AUDIO_DELTA: Final = "response.output_audio.delta"
#: Vendor errors that leave the session as it was: a cancel that found nothing to cancel, an empty commit (the
#: ``response.create`` after it still answers), a response asked for while one runs (sent again once it ends).
_NOT_CANCELLABLE: Final = "response_cancel_not_active"
_COMMIT_EMPTY: Final = "input_audio_buffer_commit_empty"
_ALREADY_ACTIVE: Final = "conversation_already_has_active_response"
#: A refused session parameter -> the client's field it came from.
_FIELDS: Final = {
    "session.audio.output.voice": "voice",
    "session.instructions": "instructions",
    "session.tools": "tools",
}


def _session(config: RealtimeConfig) -> dict[str, Any]:
    """The ``session.update`` body (``temperature`` never is: see ``OpenAIRealtimeProvider.open``)."""
    audio_input: dict[str, Any] = {
        "format": _PCM,
        "turn_detection": (
            {"type": "server_vad", "create_response": True, "interrupt_response": True}
            if config.turn_detection == "server_vad"
            else None
        ),
    }
    if config.input_transcription:
        audio_input["transcription"] = {"model": INPUT_TRANSCRIPTION_MODEL}
    audio_output: dict[str, Any] = {"format": _PCM}
    if config.voice is not None:
        audio_output["voice"] = config.voice
    session: dict[str, Any] = {
        "type": "realtime",
        "output_modalities": ["audio"],
        "audio": {"input": audio_input, "output": audio_output},
    }
    if config.instructions is not None:
        session["instructions"] = config.instructions
    if config.tools:
        session["tools"] = [
            {"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}
            for t in config.tools
        ]
        session["tool_choice"] = "auto"
    return session


def _usage(response: RealtimeResponse) -> Units | None:
    usage = response.usage
    if usage is None:
        return None
    details = usage.input_token_details
    return Units(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cached_tokens=(details.cached_tokens or 0) if details is not None else 0,
    )


def _status(response: RealtimeResponse) -> TurnStatus:
    details = response.status_details
    if response.status == "cancelled":
        return "interrupted" if details is not None and details.reason == "turn_detected" else "cancelled"
    if response.status == "failed":
        return "failed"
    return "completed"


class OpenAIRealtimeSession:
    """One open conversation session over the SDK's ``AsyncRealtimeConnection``."""

    def __init__(self, connection: AsyncRealtimeConnection, provider: str, in_rate: int) -> None:
        self._connection = connection
        self._provider = provider
        self._encoder = AudioEncoder("pcm", in_rate=in_rate, out_rate=REALTIME_OUTPUT_RATE, provider=provider)
        self._active: str | None = None  # the response in progress, as the server events say
        self._answer_after = False  # a response.create waits for the active response to end
        self._closed = False

    async def send_audio(self, chunk: bytes) -> None:
        # Resampling one client frame (about 100 ms) takes microseconds: inline, unlike a TTS clip's encoding.
        pcm = self._encoder.encode(chunk)
        if pcm:
            # Built by hand: the SDK's typed ``append`` transforms each frame's dict against every client event
            # type, which costs more than the frame's whole relay.
            audio = base64.b64encode(pcm).decode("ascii")
            await self._send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))

    async def commit(self) -> None:
        await self._send(json.dumps({"type": "input_audio_buffer.commit"}))
        await self._answer()

    async def send_text(self, text: str) -> None:
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        await self._guarded(self._connection.conversation.item.create(item=item))  # type: ignore[arg-type]
        await self._answer()

    async def send_tool_result(self, call_id: str, output: str) -> None:
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        await self._guarded(self._connection.conversation.item.create(item=item))  # type: ignore[arg-type]
        await self._answer()

    async def cancel(self) -> None:
        # A response asked for meanwhile (a text or tool result sent during this one) is still sent after it: the
        # cancel stops what is playing, not the answer to what the user said since.
        if self._active is not None:
            await self._guarded(self._connection.response.cancel())

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        while True:
            try:
                data = await receive_raw(self._connection, self._provider)
            except ProviderError:
                if self._closed:
                    return  # our own close ended the connection: the session is over, not lost
                raise
            audio = self._audio(data)
            if audio is not None:
                yield audio
                continue
            for found in await self._handle(parsed(self._connection, self._provider, data)):
                yield found

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._encoder.close()
        with contextlib.suppress(Exception):  # already gone: nothing left to release
            await self._connection.close()

    async def _answer(self) -> None:
        """Ask for a response now, or once the active one ended."""
        if self._active is not None:
            self._answer_after = True
        else:
            await self._guarded(self._connection.response.create())

    async def _send(self, data: str) -> None:
        await self._guarded(self._connection.send_raw(data))

    async def _guarded(self, sending: Awaitable[None]) -> None:
        try:
            await sending
        except (ConnectionClosed, openai.OpenAIError) as exc:
            if isinstance(exc, ConnectionClosed):
                raise closed_error(self._provider, exc) from exc
            raise ProviderError(self._provider, f"{self._provider} live session failed", original_error=exc) from exc

    def _audio(self, data: bytes) -> RealtimeAudio | None:
        """An audio delta, read without the SDK's event model: most of a session's messages are these, and building
        the model costs more than the rest of their relay (any other message goes through the SDK's parser)."""
        try:
            message = json.loads(data)
            if not isinstance(message, dict) or message.get("type") != _AUDIO_DELTA:
                return None
            return RealtimeAudio(base64.b64decode(message["delta"]), response_id=str(message.get("response_id", "")))
        except (ValueError, KeyError, TypeError):
            return None  # the SDK's parser says what is wrong with it

    async def _handle(self, event: object) -> list[RealtimeEvent]:
        """The domain events a server event carries; the session's bookkeeping; the error it reports, raised."""
        if isinstance(event, ResponseAudioDeltaEvent):  # only a malformed one gets here (``_audio`` took the rest)
            raise ProviderError(self._provider, f"{self._provider} sent a malformed audio delta", retryable=True)
        if isinstance(event, ResponseAudioTranscriptDeltaEvent):
            return (
                [RealtimeTranscript("assistant", event.delta, final=False, item_id=event.item_id)]
                if event.delta
                else []
            )
        if isinstance(event, ResponseAudioTranscriptDoneEvent):
            return [RealtimeTranscript("assistant", event.transcript, final=True, item_id=event.item_id)]
        if isinstance(event, ConversationItemInputAudioTranscriptionDeltaEvent):
            return [RealtimeTranscript("user", event.delta, final=False, item_id=event.item_id)] if event.delta else []
        if isinstance(event, ConversationItemInputAudioTranscriptionCompletedEvent):
            return [RealtimeTranscript("user", event.transcript, final=True, item_id=event.item_id)]
        if isinstance(event, InputAudioBufferSpeechStartedEvent):
            return [RealtimeSpeechStarted()]
        if isinstance(event, InputAudioBufferSpeechStoppedEvent):
            return [RealtimeSpeechStopped()]
        if isinstance(event, ResponseFunctionCallArgumentsDoneEvent):
            return [RealtimeToolCall(event.call_id, event.name, event.arguments)]
        if isinstance(event, ResponseCreatedEvent):
            self._active = event.response.id or ""
        elif isinstance(event, ResponseDoneEvent):
            return await self._done(event.response)
        elif isinstance(event, RealtimeErrorEvent):
            code = event.error.code
            if code == _ALREADY_ACTIVE:
                self._answer_after = True  # the vendor started one (server VAD) before ours arrived
            elif code not in (_NOT_CANCELLABLE, _COMMIT_EMPTY):
                raise event_error(self._provider, event, fields=_FIELDS)
        return []

    async def _done(self, response: RealtimeResponse) -> list[RealtimeEvent]:
        self._active = None
        done = RealtimeTurnDone(response.id or "", _status(response), _usage(response))
        if self._answer_after:
            self._answer_after = False
            await self._guarded(self._connection.response.create())
        return [done]


class OpenAIRealtimeProvider:
    """``RealtimeProvider`` over the vendor's shared ``AsyncOpenAI`` client (not closed here)."""

    def __init__(self, client: AsyncOpenAI, *, name: str = "openai") -> None:
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def open(self, model: ModelSpec, config: RealtimeConfig) -> OpenAIRealtimeSession:
        """Connect to ``model``, configure the session as ``config`` says, and wait for the vendor to confirm. A
        ``temperature`` is refused before connecting: GA realtime sessions have none (the SDK's session type has no
        such field; the vendor refuses it as an unknown parameter), and dropping it would answer a session the
        client did not ask for. The catalog says so first (``unsupported_params``); this holds for an entry that
        does not."""
        if config.temperature is not None:
            raise ValidationError(
                "session.temperature",
                f"{self._name}: model {model.qualified_id!r} takes no temperature in its realtime sessions",
                context={"model": model.qualified_id},
            )
        try:
            connection = await self._client.realtime.connect(model=model.wire_name).enter()
        except HANDSHAKE_FAILURES as exc:
            raise handshake_error(self._name, exc) from exc
        except openai.OpenAIError as exc:
            raise ProviderError(
                self._name, f"could not reach {self._name}", original_error=exc, retryable=True
            ) from exc
        session = OpenAIRealtimeSession(connection, self._name, config.input_sample_rate)
        try:
            failure: ProviderError | None = None
            try:
                await session._guarded(connection.session.update(session=_session(config)))  # type: ignore[arg-type]
            except ProviderError as exc:
                failure = exc  # closed under us: the vendor's error event, read next, says why
            await self._confirmed(connection)
            if failure is not None:
                raise failure
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
                raise event_error(self._name, event, fields=_FIELDS)
