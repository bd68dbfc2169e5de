"""Test double (vendor emulator): the OpenAI Realtime API's conversation session, as the SDK speaks it.

``WS /v1/realtime?model=<model>`` (``Authorization: Bearer``; the transcription-intent session on the same path is
``live_transcription``'s). A model that is not a realtime model is refused after the upgrade with an ``invalid_model``
error event and a close. The session opens with ``session.created`` (the vendor's defaults: server VAD, no input
transcription, voice ``alloy``), takes ``session.update`` (type ``realtime``; only known keys; 24 kHz ``audio/pcm``;
a known voice, not changed once audio went out; a known transcription model; ``server_vad``/``semantic_vad`` or
``null``; function tools with a name), ``input_audio_buffer.append``/``commit``/``clear``,
``conversation.item.create`` (a user or system ``message`` of ``input_text``, or a ``function_call_output`` for a call
the model made), ``response.create`` and ``response.cancel``, and refuses anything else with an ``error`` event, as
the vendor does (the session stays open).

A user turn is a committed buffer (the client's ``commit``, or the VAD's at a pause, which also creates the response)
or a user message; its audio is transcribed (when asked) to the scenario's text in ``…transcription.delta`` pieces
and a ``…transcription.completed``. A response (``response.create``, or the VAD's) answers in the scenario's text
chunks, each a transcript delta and the chunk's tone as 24 kHz pcm16 audio deltas, paced by ``chunk_delay_s`` (40 ms
by default), then the ``.done`` events and ``response.done`` with usage; with scripted tool calls, the first response
of a turn calls them instead and the one after their ``function_call_output`` speaks. A second ``response.create``
while one runs is the ``conversation_already_has_active_response`` error; ``response.cancel`` ends the running one
``cancelled`` (reason ``client_cancelled``), else is ``response_cancel_not_active``; speech heard by the VAD during a
response sends ``speech_started`` and ends it ``cancelled`` with reason ``turn_detected`` (``interrupt_response``).
The ``echo`` scenario answers every appended chunk at once with one audio delta of the same length (latency
benchmarks). Faults: status faults refuse the handshake; ``mid_stream_error`` sends a ``server_error`` event after
the first audio delta and ends the session, ``truncated`` closes there with 1011, ``malformed_chunk`` sends a message
that is not JSON there, ``stall`` goes silent there. Every connection and client event is recorded (audio as its
size only). Without the scenario header, a standalone emulator's ``--default-scenario`` plays (else ``text``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from itertools import count
from typing import TYPE_CHECKING, Any, Final

from attrs import define, field
from quart import Response, websocket

from tests.emulator.render_live import (
    Refused,
    Vad,
    after_first,
    decoded,
    has_speech,
    openai_error_event,
    recorded_headers,
    reply,
)
from tests.emulator.render_openai import openai_error
from tests.emulator.render_realtime import (
    OPENAI_REALTIME_MODELS,
    RATE,
    check_item,
    check_response,
    default_session,
    response_usage,
    updated_session,
)
from tests.emulator.scenario import SCENARIOS, Fault, Scenario
from tests.emulator.speech import render_audio
from tests.emulator.wire import ErrorReply

if TYPE_CHECKING:
    from tests.emulator.app import EmulatorState

__all__ = ["openai_conversation"]


_MIN_COMMIT_MS: Final = 100
_DEFAULT_PACE_S: Final = 0.04  # an answer lasts long enough to be cancelled or talked over
_CLIENT_EVENTS: Final = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "response.create",
    "response.cancel",
)
_ids = count(1)


def _new_id(prefix: str) -> str:
    return f"{prefix}_emu_{next(_ids)}"


@define
class _Response:
    """The response being generated: what went out so far, so a cancel can report it."""

    id: str
    task: asyncio.Task[None] | None = None
    item: dict[str, Any] | None = None
    transcript: str = ""
    audio_bytes: int = 0
    output: list[dict[str, Any]] = field(factory=list)


class _Conversation:
    """One ``?model=`` connection."""

    def __init__(self, state: EmulatorState, scenario: Scenario, model: str) -> None:
        self.state = state
        self.scenario = scenario
        self.model = model
        self.id = _new_id("sess")
        self.session = default_session(self.id, model)
        self.vad = Vad(RATE, 500)
        self.buffer = bytearray()
        self.item: str | None = None
        self.previous: str | None = None
        self.calls: set[str] = set()
        self.tool_turn = False
        self.spoke = False
        self.input_audio_tokens = 0
        self.response: _Response | None = None
        self.over = asyncio.Event()

    # --- the connection ------------------------------------------------------------------------------------------

    async def send(self, event: dict[str, Any]) -> None:
        await websocket.send(json.dumps({"event_id": _new_id("event"), **event}))

    async def run(self) -> None:
        await self.send({"type": "session.created", "session": self.session})
        reader = asyncio.create_task(self._read())
        over = asyncio.create_task(self.over.wait())
        try:
            await asyncio.wait({reader, over}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            tasks = [reader, over]
            if self.response is not None and self.response.task is not None:
                tasks.append(self.response.task)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task

    async def _read(self) -> None:
        while True:
            raw = await websocket.receive()
            try:
                event = json.loads(raw)
                if not isinstance(event, dict):
                    raise ValueError("not an object")
            except ValueError:
                await self.send(openai_error_event("We could not parse the JSON body of your request."))
                continue
            self._record(event)
            try:
                await self._handle(event)
            except Refused as refused:
                await self.send(
                    openai_error_event(
                        refused.message, code=refused.code, param=refused.param, event_id=event.get("event_id")
                    )
                )

    def _record(self, event: dict[str, Any]) -> None:
        from tests.emulator.app import RecordedRequest

        body = dict(event)
        if isinstance(body.get("audio"), str):
            body["audio"] = f"<{len(body['audio'])} base64 characters>"
        self.state.requests.append(RecordedRequest("openai_realtime_conversation_event", self.model, body, {}))

    async def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.update":
            if "session" not in event:
                raise Refused("Missing required parameter: 'session'.", code="missing_required_parameter")
            self.session = updated_session(self.session, event["session"], spoke=self.spoke)
            detection = self._detection
            if detection is not None:
                self.vad = Vad(RATE, int(detection.get("silence_duration_ms", 500)))
            await self.send({"type": "session.updated", "session": self.session})
        elif kind == "input_audio_buffer.append":
            await self._append(decoded(event.get("audio"), "audio"))
        elif kind == "input_audio_buffer.commit":
            await self._commit()
        elif kind == "input_audio_buffer.clear":
            self.buffer.clear()
            self.vad.reset()
            await self.send({"type": "input_audio_buffer.cleared"})
        elif kind == "conversation.item.create":
            await self._create_item(event.get("item"))
        elif kind == "response.create":
            if "response" in event:
                check_response(event["response"])
            if self.response is not None:
                raise Refused(
                    f"Conversation already has an active response in progress: {self.response.id}. Wait until the "
                    "response is finished before creating a new one.",
                    code="conversation_already_has_active_response",
                )
            self._start_response()
        elif kind == "response.cancel":
            if self.response is None:
                raise Refused("Cancellation failed: no active response found", code="response_cancel_not_active")
            await self._stop(self.response, "client_cancelled")
        else:
            supported = ", ".join(f"'{name}'" for name in _CLIENT_EVENTS)
            raise Refused(f"Invalid value: '{kind}'. Supported values are: {supported}.", param="type")

    # --- session.update --------------------------------------------------------------------------------------------

    # --- the user's turns ------------------------------------------------------------------------------------------

    @property
    def _detection(self) -> dict[str, Any] | None:
        detection: dict[str, Any] | None = self.session["audio"]["input"]["turn_detection"]
        return detection

    async def _append(self, pcm: bytes) -> None:
        if len(pcm) % 2:
            raise Refused("Invalid 'audio': 16-bit PCM needs an even number of bytes.", param="audio")
        if self.scenario.echo_audio:
            await self._echo(pcm)
            return
        self.buffer += pcm
        detection = self._detection
        if detection is None:
            return
        for kind, at_ms in self.vad.feed(pcm):
            if kind == "start":
                self.item = _new_id("item")
                started = {"audio_start_ms": max(0, at_ms - 300), "item_id": self.item}
                await self.send({"type": "input_audio_buffer.speech_started", **started})
                if self.response is not None and detection.get("interrupt_response", True):
                    await self._stop(self.response, "turn_detected")
            else:
                assert self.item is not None
                await self.send(
                    {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": at_ms, "item_id": self.item}
                )
                await self._committed(self.item)
                if detection.get("create_response", True) and self.response is None:
                    self._start_response()

    async def _echo(self, pcm: bytes) -> None:
        delta = {"response_id": "resp_emu_echo", "item_id": "item_emu_echo", "output_index": 0, "content_index": 0}
        await self.send({"type": "response.output_audio.delta", **delta, "delta": _b64(pcm)})

    async def _commit(self) -> None:
        ms = len(self.buffer) * 1000 // (2 * RATE)
        if ms < _MIN_COMMIT_MS:
            raise Refused(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but "
                f"buffer only has {ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        item = self.item if self.vad.speaking and self.item is not None else _new_id("item")
        self.vad.reset()
        await self._committed(item)

    async def _committed(self, item: str) -> None:
        """The buffer becomes a user audio item, transcribed when the session asks."""
        audio = bytes(self.buffer)
        self.buffer.clear()
        self.item = None
        seconds = len(audio) / (2 * RATE)
        self.input_audio_tokens += max(1, round(seconds * 10))
        await self.send({"type": "input_audio_buffer.committed", "item_id": item, "previous_item_id": self.previous})
        content = [{"type": "input_audio", "transcript": None}]
        await self._add_item({"id": item, "type": "message", "role": "user", "status": "completed", "content": content})
        self.tool_turn = bool(self.scenario.tool_calls)
        transcription = self.session["audio"]["input"]["transcription"]
        if transcription is None:
            return
        text = self.scenario.text if has_speech(audio, RATE) else ""
        for piece in self.scenario.text_chunks if text else ():
            delta = {"item_id": item, "content_index": 0, "delta": piece}
            await self.send({"type": "conversation.item.input_audio_transcription.delta", **delta})
        tokens = max(1, round(seconds * 10))
        output = max(1, len(text.split()))
        usage = {
            "type": "tokens",
            "input_tokens": tokens,
            "output_tokens": output,
            "total_tokens": tokens + output,
            "input_token_details": {"audio_tokens": tokens, "text_tokens": 0},
        }
        completed = {"item_id": item, "content_index": 0, "transcript": text, "usage": usage}
        await self.send({"type": "conversation.item.input_audio_transcription.completed", **completed})

    async def _create_item(self, value: object) -> None:
        item = check_item(value, self.calls)
        if item.get("role") == "user":
            self.tool_turn = bool(self.scenario.tool_calls)
        await self._add_item({"id": item.get("id") or _new_id("item"), **item, "status": "completed"})

    async def _add_item(self, item: dict[str, Any]) -> None:
        stored = {"object": "realtime.item", **item}
        await self.send({"type": "conversation.item.added", "previous_item_id": self.previous, "item": stored})
        await self.send({"type": "conversation.item.done", "previous_item_id": self.previous, "item": stored})
        self.previous = stored["id"]

    # --- the model's responses -------------------------------------------------------------------------------------

    def _start_response(self) -> None:
        response = _Response(_new_id("resp"))
        self.response = response
        response.task = asyncio.create_task(self._respond(response))

    def _response_object(self, response: _Response, status: str, details: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "object": "realtime.response",
            "id": response.id,
            "status": status,
            "status_details": details,
            "output": response.output,
            "conversation_id": f"conv_{self.id}",
            "output_modalities": self.session["output_modalities"],
            "max_output_tokens": self.session["max_output_tokens"],
            "audio": {"output": self.session["audio"]["output"]},
            "usage": None,
            "metadata": None,
        }
        if status != "in_progress":
            body["usage"] = self._usage(response)
        return body

    def _usage(self, response: _Response) -> dict[str, Any]:
        words = len(response.transcript.split())
        calls = sum(max(1, len(item.get("arguments", "")) // 4) for item in response.output if "arguments" in item)
        return response_usage(
            text_in=self.scenario.usage.input_tokens,
            audio_in=self.input_audio_tokens,
            text_out=words + calls,
            audio_out=round(response.audio_bytes / (2 * RATE) * 20),
        )

    async def _respond(self, response: _Response) -> None:
        await self.send({"type": "response.created", "response": self._response_object(response, "in_progress", None)})
        if self.tool_turn:
            self.tool_turn = False
            for index, call in enumerate(self.scenario.tool_calls):
                await self._call(response, index, call.id, call.name, call.argument_chunks)
        elif not await self._speak(response):
            return
        if self.response is response:
            self.response = None
        done = self._response_object(response, "completed", None)
        await self.send({"type": "response.done", "response": done})

    async def _call(self, response: _Response, index: int, call_id: str, name: str, chunks: tuple[str, ...]) -> None:
        item = {
            "id": _new_id("item"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
        where = {"response_id": response.id, "output_index": index}
        await self.send({"type": "response.output_item.added", **where, "item": item})
        await self.send({"type": "conversation.item.added", "previous_item_id": self.previous, "item": item})
        for chunk in chunks:
            await self._pace()
            delta = {**where, "item_id": item["id"], "call_id": call_id, "delta": chunk}
            await self.send({"type": "response.function_call_arguments.delta", **delta})
        arguments = "".join(chunks)
        done = {**where, "item_id": item["id"], "call_id": call_id, "name": name, "arguments": arguments}
        await self.send({"type": "response.function_call_arguments.done", **done})
        item = {**item, "status": "completed", "arguments": arguments}
        response.output.append(item)
        self.calls.add(call_id)
        await self.send({"type": "response.output_item.done", **where, "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": self.previous, "item": item})
        self.previous = item["id"]

    async def _speak(self, response: _Response) -> bool:
        """The spoken answer; ``False`` when a fault ended the session."""
        item: dict[str, Any] = {
            "id": _new_id("item"),
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        response.item = item
        where = {"response_id": response.id, "output_index": 0}
        part = {**where, "item_id": item["id"], "content_index": 0}
        await self.send({"type": "response.output_item.added", **where, "item": item})
        await self.send({"type": "conversation.item.added", "previous_item_id": self.previous, "item": item})
        await self.send({"type": "response.content_part.added", **part, "part": {"type": "audio", "transcript": ""}})
        first = True
        for chunk in self.scenario.text_chunks:
            await self._pace()
            await self.send({"type": "response.output_audio_transcript.delta", **part, "delta": chunk})
            response.transcript += chunk
            pcm = render_audio(chunk, "pcm", RATE)
            self.spoke = True
            await self.send({"type": "response.output_audio.delta", **part, "delta": _b64(pcm)})
            response.audio_bytes += len(pcm)
            if first and self.scenario.fault is not None and self.scenario.fault.kind == "malformed_chunk":
                await websocket.send('{"type": "response.output_audio.delta", "delta": "unterminated')
                self.over.set()
                return False
            if first and await after_first(self.scenario, self._server_error):
                self.over.set()
                return False
            first = False
        await self.send({"type": "response.output_audio.done", **part})
        await self.send({"type": "response.output_audio_transcript.done", **part, "transcript": response.transcript})
        await self._finish_item(response, "completed")
        return True

    async def _finish_item(self, response: _Response, status: str) -> None:
        item = response.item
        if item is None:
            return
        response.item = None
        where = {"response_id": response.id, "output_index": 0}
        audio = {"type": "output_audio", "transcript": response.transcript}
        part = {**where, "item_id": item["id"], "content_index": 0}
        await self.send({"type": "response.content_part.done", **part, "part": {"type": "audio", **audio}})
        item = {**item, "status": status, "content": [audio]}
        response.output.append(item)
        await self.send({"type": "response.output_item.done", **where, "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": self.previous, "item": item})
        self.previous = item["id"]

    async def _stop(self, response: _Response, reason: str) -> None:
        """End the running response ``cancelled``: what it said so far stays, marked incomplete."""
        self.response = None
        if response.task is not None:
            response.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await response.task
        await self._finish_item(response, "incomplete")
        details = {"type": "cancelled", "reason": reason}
        await self.send({"type": "response.done", "response": self._response_object(response, "cancelled", details)})

    async def _pace(self) -> None:
        await asyncio.sleep(self.scenario.chunk_delay_s or _DEFAULT_PACE_S)

    async def _server_error(self) -> None:
        await self.send(
            openai_error_event(
                "The server had an error while processing your request.", type_="server_error", code="server_error"
            )
        )


def _b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode("ascii")


async def openai_conversation(state: EmulatorState) -> Response | None:
    """Serve one ``/v1/realtime?model=`` connection."""
    from tests.emulator.app import RecordedRequest

    args = {key: websocket.args.get(key, "") for key in websocket.args}
    model = args.get("model", "")
    state.requests.append(RecordedRequest("openai_realtime_conversation", model, {"query": args}, recorded_headers()))
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return reply(openai_error(Fault("unauthorized")))
    unknown = sorted(set(args) - {"model"})
    if unknown:
        message = f"Unknown parameter: '{unknown[0]}'."
        body: dict[str, Any] = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
        return reply(ErrorReply(400, body))
    # No header: the standalone emulator's ``--default-scenario`` (benches run ``echo`` behind a real server).
    named = websocket.headers.get("x-emulator-scenario") or state.default_scenario
    scenario = state.resolve(named) if named else SCENARIOS["text"]
    if scenario is None:
        body = {"error": {"message": f"no scenario {named!r}", "type": "invalid_request_error", "code": None}}
        return reply(ErrorReply(404, body))
    if scenario.fault is not None and scenario.fault.is_status:
        return reply(openai_error(scenario.fault))
    await websocket.accept()
    if model not in OPENAI_REALTIME_MODELS:
        # The vendor upgrades first, then refuses the model with an error event and closes.
        message = f'Model "{model}" is not supported in realtime mode.'
        await websocket.send(json.dumps(openai_error_event(message, code="invalid_model")))
        await websocket.close(1008, "invalid model")
        return None
    await _Conversation(state, scenario, model).run()
    return None
