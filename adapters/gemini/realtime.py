"""Driven adapter: Gemini Live (``BidiGenerateContent`` over WebSocket) as a ``RealtimeProvider``, on google-genai.

``client.aio.live.connect`` opens ``wss://<base>/ws/google.ai.generativelanguage.<api_version>.GenerativeService.
BidiGenerateContent`` with the client's headers (the key in ``x-goog-api-key``) and sends the ``setup``: the model,
audio answers, the voice, the instructions, the function tools (their JSON schema as ``parametersJsonSchema``),
input and output transcription, and automatic activity detection (``server_vad``) or none. ``open`` returns once
``setupComplete`` came. google-genai always connects with TLS (``wss://``, whatever the base URL's scheme).

In: audio as ``realtimeInput.audio`` at 16 kHz (the API's own rate: 24 kHz client audio is resampled by the adapter
kit's PyAV resampler). With turn detection ``none`` the client marks the user's turns: the first audio of a turn is
preceded by ``activityStart`` and ``commit`` is ``activityEnd``; with ``server_vad`` the vendor hears the turns and
``commit`` is ``audioStreamEnd`` (the vendor closes the speech it is hearing). Text is a ``clientContent`` user turn
(``turnComplete``), a tool result a ``toolResponse`` (a JSON object output is the response itself, anything else is
``{"output": <text>}``, the key Gemini documents).

Out: ``serverContent.modelTurn`` audio parts (24 kHz pcm16) → ``RealtimeAudio``; ``inputTranscription`` and
``outputTranscription`` pieces → ``RealtimeTranscript`` deltas, each side's whole text as the ``final`` one (the
user's when the answer to it begins, the assistant's when its turn ends); ``toolCall`` → ``RealtimeToolCall``s, and
the response ends there (``completed``: the model waits for the results, which start the next response);
``interrupted`` → ``RealtimeSpeechStarted`` (the user talked over the answer) and the turn ends ``interrupted`` at
the vendor's ``turnComplete``, which carries ``usageMetadata``. What its VAD hears, Gemini says with ``voiceActivity``
(``ACTIVITY_START``/``ACTIVITY_END`` → ``RealtimeSpeechStarted``/``RealtimeSpeechStopped``), but only some models send
it. Until a session's first ``voiceActivity``, the first piece of the user's transcription outside an answer stands
for the ``RealtimeSpeechStarted`` (so without input transcription only interruptions are signalled), and nothing
stands for the ``RealtimeSpeechStopped``: the answer beginning is no end-of-speech signal (it comes after the vendor's
own latency, so timing the first audio from it would hide that latency), so such a session's server-VAD turns are not
timed. Gemini sends no response ids: the adapter numbers the responses itself.

``cancel``: Gemini has no ``response.cancel``. The answer in progress is ended here at once (``cancelled``) and the
rest of its output dropped until the vendor's ``turnComplete``; with turn detection ``none`` an ``activityStart``
also makes the vendor stop generating (the start of user activity interrupts an answer, the API's default), and the
activity it opened takes the user's next audio. With ``server_vad`` the vendor finishes the answer unheard (and keeps
it in its context). The usage the vendor reports for a cancelled answer is added to the next turn's.

Errors: a refused handshake, and the close frames with which the API refuses and fails a session, become domain
errors in ``live_wire`` (with the setup the config becomes). The client is shared with the vendor's other providers
and not closed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, Literal

from attrs import define, field
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from google.genai.live import AsyncSession
from websockets.exceptions import ConnectionClosed

from adapters.gemini.live_wire import connect_config, map_live_error, tool_response, usage_units
from adapters.gemini.speech import pcm_rate
from adapters.kit.audio import AudioEncoder
from domain.catalog import ModelSpec
from domain.errors import ProviderError, ServiceError, ValidationError
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

__all__ = ["LIVE_INPUT_RATE", "GeminiRealtimeProvider", "GeminiRealtimeSession"]

LIVE_INPUT_RATE: Final = 16_000
"""The rate Gemini Live listens at."""
_INPUT_MIME: Final = f"audio/pcm;rate={LIVE_INPUT_RATE}"
_QUEUE_SIZE: Final = 64  # events read ahead of the consumer; beyond it the vendor's socket is left unread
_BIG_CHUNK: Final = 1 << 15  # input chunks larger than this (~1 s at 16 kHz) are resampled in a worker thread
_END: Final = None

_Swallow = Literal["drop", "tool"] | None


@define
class _Turn:
    """The response being heard: its id, how it ends, its output transcript so far and its usage."""

    response_id: str
    status: TurnStatus = "completed"
    text: list[str] = field(factory=list)
    usage: Units | None = None


class GeminiRealtimeSession:
    """One open Gemini Live session. A reader task turns the vendor's messages into domain events in a bounded
    queue (so a consumer that stops reading stops the reading of the socket); the client's calls send directly."""

    def __init__(
        self, session: AsyncSession, stack: contextlib.AsyncExitStack, provider: str, config: RealtimeConfig
    ) -> None:
        self._session = session
        self._stack = stack
        self._provider = provider
        self._manual = config.turn_detection == "none"
        self._resampler = (
            AudioEncoder("pcm", in_rate=config.input_sample_rate, out_rate=LIVE_INPUT_RATE, provider=provider)
            if config.input_sample_rate != LIVE_INPUT_RATE
            else None
        )
        self._out_resamplers: dict[int, AudioEncoder] = {}
        self._queue: asyncio.Queue[RealtimeEvent | ServiceError | None] = asyncio.Queue(_QUEUE_SIZE)
        self._in_activity = False
        self._requested = False  # the client asked for an answer (commit, text, tool result) not yet begun
        self._calls: dict[str, str] = {}  # call id -> function name, until its result is sent
        self._dropped_calls: set[str] = set()
        self._turn: _Turn | None = None
        self._swallow: _Swallow = None
        self._carried: Units | None = None
        self._responses = 0
        self._heard: list[str] = []
        self._heard_items = 0
        self._speech_signalled = False  # a RealtimeSpeechStarted went out for the user's current utterance
        self._vendor_vad = False  # the vendor sends voiceActivity: its start and end are the only speech signals
        self._closed = False
        self._reader = asyncio.create_task(self._read(), name="gemini-live-reader")

    # --- the client's side -----------------------------------------------------------------------------------------

    async def send_audio(self, chunk: bytes) -> None:
        if not chunk:
            return
        pcm = chunk
        if self._resampler is not None:
            resampler = self._resampler
            pcm = (
                await asyncio.to_thread(resampler.encode, chunk) if len(chunk) > _BIG_CHUNK else resampler.encode(chunk)
            )
        if self._manual and not self._in_activity:
            await self._activity_start()
        if pcm:
            blob = types.Blob(data=pcm, mime_type=_INPUT_MIME)
            await self._send(lambda: self._session.send_realtime_input(audio=blob))

    async def commit(self) -> None:
        if not self._manual:
            await self._send(lambda: self._session.send_realtime_input(audio_stream_end=True))
            return
        if not self._in_activity:
            await self._activity_start()
        self._in_activity = False
        self._requested = True
        await self._send(lambda: self._session.send_realtime_input(activity_end=types.ActivityEnd()))

    async def send_text(self, text: str) -> None:
        self._requested = True
        turn = types.Content(role="user", parts=[types.Part(text=text)])
        await self._send(lambda: self._session.send_client_content(turns=turn, turn_complete=True))

    async def send_tool_result(self, call_id: str, output: str) -> None:
        name = self._calls.pop(call_id, None)
        if name is None:
            if call_id in self._dropped_calls:  # the vendor withdrew the call (toolCallCancellation): nothing waits
                return
            raise ValidationError("call_id", f"{self._provider}: no tool call {call_id!r} is waiting for a result")
        self._requested = True
        response = tool_response(call_id, name, output)
        await self._send(lambda: self._session.send_tool_response(function_responses=[response]))

    async def cancel(self) -> None:
        turn = self._turn
        if turn is None and not self._requested:
            return  # no answer in progress, none asked for
        if turn is None:
            turn = self._open()
        self._turn = None
        self._requested = False
        self._swallow = "drop"
        await self._finish(turn, "cancelled")
        if self._manual and not self._in_activity:
            await self._activity_start()  # the start of user activity makes the vendor stop generating

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, ServiceError):
                raise item
            yield item

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)  # its end, whatever it was
        with contextlib.suppress(Exception):  # already gone: nothing left to release
            await self._stack.aclose()
        for encoder in (self._resampler, *self._out_resamplers.values()):
            if encoder is not None:
                encoder.close()
        while not self._queue.empty():  # what is in flight is dropped; ``events`` ends
            self._queue.get_nowait()
        self._queue.put_nowait(_END)

    async def _activity_start(self) -> None:
        self._in_activity = True
        await self._send(lambda: self._session.send_realtime_input(activity_start=types.ActivityStart()))

    async def _send(self, sending: Callable[[], Awaitable[None]]) -> None:
        if self._closed:
            raise ProviderError(self._provider, f"{self._provider}: the live session is closed")
        try:
            await sending()
        except (genai_errors.APIError, ConnectionClosed, OSError) as exc:
            raise map_live_error(self._provider, exc, mid_session=True) from exc

    # --- the vendor's side -----------------------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while True:  # ``receive`` ends at each turnComplete; the session goes on
                async for message in self._session.receive():
                    await self._on(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure of the SDK's read (a close frame as APIError, a
            # malformed message, a lost socket) ends the session with its domain error, delivered in order
            if not self._closed:
                await self._queue.put(map_live_error(self._provider, exc, mid_session=True))

    async def _on(self, message: types.LiveServerMessage) -> None:
        if message.usage_metadata is not None:
            units = usage_units(message.usage_metadata)
            if self._turn is not None:
                self._turn.usage = units
            else:
                self._carry(units)
        if message.tool_call is not None:
            await self._tool_calls(message.tool_call.function_calls or [])
        if message.tool_call_cancellation is not None:
            for call_id in message.tool_call_cancellation.ids or []:
                if self._calls.pop(call_id, None) is not None:
                    self._dropped_calls.add(call_id)
        activity = message.voice_activity
        if activity is not None:
            self._vendor_vad = True
            if activity.voice_activity_type == types.VoiceActivityType.ACTIVITY_START:
                await self._speech_started()
            elif activity.voice_activity_type == types.VoiceActivityType.ACTIVITY_END:
                await self._speech_stopped()
        content = message.server_content
        if content is not None:
            await self._content(content)

    async def _content(self, content: types.LiveServerContent) -> None:
        heard = content.input_transcription
        if heard is not None and heard.text:
            if not self._manual and self._turn is None and not self._vendor_vad:
                # Gemini tells nothing else of the speech its VAD hears (short of interrupting an answer): its
                # transcription starting is the sign. Not while an answer plays: a late piece would cut it.
                await self._speech_started()
            self._heard.append(heard.text)
            await self._emit(RealtimeTranscript("user", heard.text, final=False, item_id=self._heard_item))
        if heard is not None and heard.finished:
            await self._heard_final()
        parts = content.model_turn.parts if content.model_turn is not None else None
        for part in parts or []:
            blob = part.inline_data
            if blob is not None and blob.data and not part.thought:
                await self._audio(blob.data, blob.mime_type)
        said = content.output_transcription
        if said is not None and said.text and self._swallow != "drop":
            turn = await self._begin()
            turn.text.append(said.text)
            await self._emit(RealtimeTranscript("assistant", said.text, final=False, item_id=turn.response_id))
        if content.interrupted:
            await self._interrupted()
        if content.turn_complete:
            await self._turn_complete()

    async def _audio(self, data: bytes, mime_type: str | None) -> None:
        if self._swallow == "drop":
            return
        rate = pcm_rate(mime_type)
        if rate is None:
            return  # not audio we can play (the API answers pcm only)
        if rate != REALTIME_OUTPUT_RATE:
            encoder = self._out_resamplers.get(rate)
            if encoder is None:
                encoder = AudioEncoder("pcm", in_rate=rate, out_rate=REALTIME_OUTPUT_RATE, provider=self._provider)
                self._out_resamplers[rate] = encoder
            data = encoder.encode(data)
        if data:
            await self._emit(RealtimeAudio(data, (await self._begin()).response_id))

    async def _tool_calls(self, calls: list[types.FunctionCall]) -> None:
        if self._swallow == "drop":
            return  # calls of an answer that was cancelled: never run (the next user turn withdraws them)
        turn = await self._begin()
        for index, call in enumerate(calls):
            call_id = call.id or f"{turn.response_id}_call_{index}"
            name = call.name or ""
            self._calls[call_id] = name
            await self._emit(RealtimeToolCall(call_id, name, json.dumps(call.args or {})))
        # The model now waits for the results, which start the next response: this one is over. A turnComplete
        # for it, if the vendor sends one before the results, is swallowed.
        self._turn = None
        self._swallow = "tool"
        await self._finish(turn, "completed")

    async def _interrupted(self) -> None:
        if self._swallow == "drop":
            return  # the answer was cancelled here already; this is the vendor catching up
        if not self._vendor_vad:  # else its ACTIVITY_START said so (and a text turn interrupts too: no speech)
            await self._speech_started()
        turn = self._turn
        if turn is None and self._requested:
            turn = self._open()
        if turn is not None:
            turn.status = "interrupted"
            self._swallow = "drop"  # its leftovers, until the turnComplete that ends it

    async def _turn_complete(self) -> None:
        swallowed, self._swallow = self._swallow, None
        turn, self._turn = self._turn, None
        if turn is None and self._requested and swallowed is None:
            turn = await self._begin()  # the model answered with nothing
            self._turn = None
        if turn is None:
            return
        await self._finish(turn, turn.status)

    def _open(self) -> _Turn:
        """The response in progress, begun now if none is."""
        if self._turn is None:
            self._responses += 1
            self._turn = _Turn(f"resp_{self._responses}")
            self._requested = False
            if self._swallow == "tool":
                self._swallow = None
        return self._turn

    async def _begin(self) -> _Turn:
        """The response in progress; one that begins now first ends what the user said before it."""
        if self._turn is None:
            await self._heard_final()
        return self._open()

    def _carry(self, units: Units) -> None:
        self._carried = units if self._carried is None else self._carried + units

    async def _finish(self, turn: _Turn, status: TurnStatus) -> None:
        """End ``turn``: its whole transcript, then its ``RealtimeTurnDone`` (with usage carried from before). The
        user's words heard during a completed answer are ended too (Gemini's transcription may lag the answer)."""
        if status == "completed":
            await self._heard_final()
        if turn.text:
            await self._emit(RealtimeTranscript("assistant", "".join(turn.text), final=True, item_id=turn.response_id))
        usage = turn.usage
        if self._carried is not None:
            usage = self._carried if usage is None else usage + self._carried
            self._carried = None
        await self._emit(RealtimeTurnDone(turn.response_id, status, usage))

    async def _speech_started(self) -> None:
        if not self._speech_signalled:
            self._speech_signalled = True
            await self._emit(RealtimeSpeechStarted())

    async def _speech_stopped(self) -> None:
        """The vendor's VAD heard the end of the speech it signalled (an end without its start is not passed on)."""
        if self._speech_signalled:
            self._speech_signalled = False
            await self._emit(RealtimeSpeechStopped())

    async def _heard_final(self) -> None:
        if not self._vendor_vad:  # without the vendor's end of speech, the user's next words are a new utterance
            self._speech_signalled = False
        if self._heard:
            text, item_id = "".join(self._heard).strip(), self._heard_item
            self._heard = []
            self._heard_items += 1
            await self._emit(RealtimeTranscript("user", text, final=True, item_id=item_id))

    @property
    def _heard_item(self) -> str:
        return f"item_user_{self._heard_items + 1}"

    async def _emit(self, event: RealtimeEvent) -> None:
        await self._queue.put(event)


class GeminiRealtimeProvider:
    """``RealtimeProvider`` over the vendor's shared ``genai.Client`` (its ``aio`` side; not closed here).
    ``open_timeout_s`` bounds the WebSocket handshake and the setup together."""

    def __init__(self, client: genai.Client, *, name: str = "gemini", open_timeout_s: float = 10.0) -> None:
        self._client = client
        self._name = name
        self._open_timeout_s = open_timeout_s

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def open(self, model: ModelSpec, config: RealtimeConfig) -> GeminiRealtimeSession:
        """Connect, send the setup and wait for ``setupComplete``."""
        live_config = connect_config(model, config)
        stack = contextlib.AsyncExitStack()
        try:
            async with asyncio.timeout(self._open_timeout_s):
                connecting = self._client.aio.live.connect(model=model.wire_name, config=live_config)
                session = await stack.enter_async_context(connecting)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await stack.aclose()
            raise map_live_error(self._name, exc) from exc
        if session.setup_complete is None:  # the first message was something else: not a session we can trust
            with contextlib.suppress(Exception):
                await stack.aclose()
            raise ProviderError(self._name, f"{self._name} did not confirm the live session's setup", retryable=True)
        return GeminiRealtimeSession(session, stack, self._name, config)
