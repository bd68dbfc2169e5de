"""Test double (vendor emulator): Gemini Live (``BidiGenerateContent``) over WebSocket, as google-genai speaks it.

``WS /ws/google.ai.generativelanguage.<version>.GenerativeService.BidiGenerateContent`` (``v1beta`` or ``v1alpha``;
another version is refused with a 404 at the handshake). The key comes in ``x-goog-api-key`` (or ``?key=``). The
first message must be the ``setup`` (``models/<a live model>``, audio answers, a prebuilt voice; see
``gemini_live_setup`` for the fields it takes); the server answers ``setupComplete``. As the real API does, every
refusal after the handshake is a close frame with a reason: 1007 for a payload it cannot take, 1008 for a policy (a
missing or refused key, an unknown model), 1011 for an internal error or an exhausted quota.

A user turn ends at ``activityEnd`` (automatic activity detection disabled: audio must come between
``activityStart`` and ``activityEnd``), at a pause the emulator's VAD hears (enabled: ``activityStart``/``End`` are
refused), at ``audioStreamEnd`` during speech, or with ``clientContent`` whose ``turnComplete`` is true. Each is
answered with ``inputTranscription`` (when asked for and speech was heard: the scenario's text, as OpenAI's emulator
"hears" it), then per text chunk of the scenario ``modelTurn`` audio (24 kHz pcm16 tone, 40 ms per message, paced by
the scenario's ``chunk_delay_s`` or 10 ms) and its ``outputTranscription``, then ``generationComplete``, then
``turnComplete`` with ``usageMetadata``. A scenario with tool calls first answers with a ``toolCall`` (no
``turnComplete``: the turn goes on once every call has its ``toolResponse``), then speaks. Speech, ``activityStart``
or a ``clientContent`` turn during an answer interrupts it: ``interrupted: true``, then ``turnComplete``. A scenario
with ``voice_activity`` also says what the VAD hears, as some live models do: ``voiceActivity`` (``type``
``ACTIVITY_START``/``ACTIVITY_END``, ``audioOffset`` a protobuf duration) at the start and the end of speech (the end
of the speech an ``audioStreamEnd`` closes too), before the answer or interruption it causes.

The scenario comes from the ``x-emulator-scenario`` header (google-genai sends its client's headers on the
handshake), else a sequence scripted for the model's name, else ``text``. Status faults end the session after its
setup: 401 as an invalid key (1008), 500/503 as an internal error (1011), 429 as an exhausted quota (1011) when the
scenario is scripted for the model, or, named in the header, as the HTTP 429 (``RESOURCE_EXHAUSTED`` with a
``RetryInfo``) that refuses the upgrade. ``mid_stream_error`` closes with 1011 after the first audio, ``truncated``
closes normally (1000) there, ``stall`` goes silent there. Every connection and client message is recorded (audio as
its size only).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import math
import re
from array import array
from typing import TYPE_CHECKING, Any, Final

from quart import Quart, Response, websocket

from tests.emulator.gemini_live_setup import LiveRefused, LiveSetup, fields, read_setup
from tests.emulator.render_gemini import gemini_error
from tests.emulator.render_live import Vad, has_speech, reply
from tests.emulator.scenario import SCENARIOS, Fault, Scenario
from tests.emulator.wire import ErrorReply

if TYPE_CHECKING:
    from tests.emulator.app import EmulatorState

__all__ = ["OUTPUT_RATE", "register_gemini_live_routes"]

OUTPUT_RATE: Final = 24_000
_VERSIONS: Final = frozenset(("v1beta", "v1alpha"))
_RPC: Final = re.compile(r"google\.ai\.generativelanguage\.(?P<version>[^.]+)\.GenerativeService\.(?P<method>\w+)")
_PIECE_MS: Final = 40
_DEFAULT_PACE_S: Final = 0.01
_TOKENS_PER_SECOND: Final = 25  # Gemini counts audio at 25 tokens a second
_SECRET: Final = frozenset(("x-goog-api-key", "authorization"))
_MESSAGES: Final = frozenset(("setup", "clientContent", "realtimeInput", "toolResponse"))
_REALTIME: Final = frozenset(
    ("audio", "mediaChunks", "video", "text", "activityStart", "activityEnd", "audioStreamEnd")
)
_BLOB: Final = frozenset(("data", "mimeType"))
_RATE: Final = re.compile(r"^audio/pcm(?:;\s*rate=(\d+))?$")
_CLOSES: Final[dict[str, tuple[int, str]]] = {
    "unauthorized": (1008, "API key not valid. Please pass a valid API key."),
    "rate_limited": (
        1011,
        "You exceeded your current quota, please check your plan and billing details. For more information on this "
        "error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    "context_too_long": (1007, "Request contains an invalid argument."),
    "server_error": (1011, "Internal error encountered."),
    "overloaded": (1011, "The service is currently unavailable."),
}


def _tone(seconds: float, pitch: float) -> bytes:
    samples = round(seconds * OUTPUT_RATE)
    return array("h", (round(6000 * math.sin(2 * math.pi * pitch * i / OUTPUT_RATE)) for i in range(samples))).tobytes()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _bytes(value: object, where: str) -> bytes:
    """A protobuf JSON ``bytes`` field: base64 in either alphabet (google-genai sends the URL-safe one)."""
    if not isinstance(value, str):
        raise LiveRefused(f"Invalid value at '{where}' (TYPE_BYTES): expected a base64 string.")
    try:
        return base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise LiveRefused(f"Invalid value at '{where}' (TYPE_BYTES): invalid base64.") from None


class _Closed(Exception):
    """The emulator closed the connection (a fault or a refusal): the session is over."""


class _GeminiLiveSession:
    """One ``BidiGenerateContent`` connection after its setup."""

    def __init__(self, state: EmulatorState, scenario: Scenario, setup: LiveSetup) -> None:
        self.state = state
        self.scenario = scenario
        self.setup = setup
        self.lock = asyncio.Lock()
        self.vad: Vad | None = None
        self.rate = 16_000
        self.in_activity = False
        self.heard = bytearray()
        self.heard_seconds = 0.0
        self.answer: asyncio.Task[None] | None = None
        self.answering = False
        self.out_seconds = 0.0
        self.pending: dict[str, str] = {}  # call id -> function name, until its toolResponse
        self.after_tools = False
        self.closed = False

    async def send(self, message: dict[str, Any]) -> None:
        async with self.lock:
            if not self.closed:
                await websocket.send(json.dumps(message))

    async def close(self, code: int, reason: str) -> None:
        async with self.lock:
            if not self.closed:
                self.closed = True
                await websocket.close(code, reason)

    async def run(self) -> None:
        while not self.closed:
            raw = await websocket.receive()
            try:
                message = json.loads(raw)
                if not isinstance(message, dict):
                    raise LiveRefused("Invalid JSON payload received. Expected an object.")
                self._record(message)
                await self._handle(fields(message, _MESSAGES, "message"))
            except ValueError:
                await self.close(1007, "Invalid JSON payload received.")
            except LiveRefused as refused:
                await self.close(refused.code, refused.reason)
        await self._stop_answer()

    def _record(self, message: dict[str, Any]) -> None:
        from tests.emulator.app import RecordedRequest

        body = json.loads(json.dumps(message))
        realtime = body.get("realtimeInput") or body.get("realtime_input") or {}
        audio = realtime.get("audio") if isinstance(realtime, dict) else None
        if isinstance(audio, dict) and isinstance(audio.get("data"), str):
            audio["data"] = f"<{len(audio['data'])} base64 characters>"
        self.state.requests.append(RecordedRequest("gemini_live_message", self.setup.model, body, {}))

    async def _handle(self, message: dict[str, Any]) -> None:
        if "setup" in message:
            raise LiveRefused("Request contains an invalid argument: setup may only be sent once.")
        if "realtimeInput" in message:
            await self._realtime(fields(message["realtimeInput"], _REALTIME, "realtime_input"))
        if "clientContent" in message:
            await self._client_content(fields(message["clientContent"], frozenset(("turns", "turnComplete")), "c"))
        if "toolResponse" in message:
            await self._tool_response(fields(message["toolResponse"], frozenset(("functionResponses",)), "t"))

    # --- what the client sends ------------------------------------------------------------------------------------

    async def _realtime(self, message: dict[str, Any]) -> None:
        if len(message) != 1:
            raise LiveRefused("Request contains an invalid argument: one realtime input per message.")
        [(kind, value)] = message.items()
        automatic = self.setup.automatic_activity
        if kind in ("activityStart", "activityEnd") and automatic:
            raise LiveRefused(f"{kind} is only allowed when automatic activity detection is disabled.")
        if kind == "activityStart":
            if self.in_activity:
                raise LiveRefused("activityStart received while an activity is already in progress.")
            await self._interrupt()
            self.in_activity = True
        elif kind == "activityEnd":
            if not self.in_activity:
                raise LiveRefused("activityEnd received without a preceding activityStart.")
            self.in_activity = False
            await self._user_turn(spoken=True)
        elif kind == "audio":
            await self._audio(fields(value, _BLOB, "realtime_input.audio"))
        elif kind == "audioStreamEnd":
            if automatic and self.vad is not None and self.vad.speaking:
                self.vad.reset()
                await self._voice_activity("ACTIVITY_END", self.vad.heard_ms)
                await self._user_turn(spoken=True)
        elif kind == "text":
            await self._interrupt()
            await self._user_turn(spoken=False)
        else:
            raise LiveRefused(f"The emulator takes audio realtime input only, not {kind}.")

    async def _audio(self, blob: dict[str, Any]) -> None:
        match = _RATE.match(str(blob.get("mimeType", "")))
        if match is None:
            raise LiveRefused(f"Unsupported mime type for audio: {blob.get('mimeType')!r}; use audio/pcm;rate=16000.")
        rate = int(match.group(1) or 16_000)
        pcm = _bytes(blob.get("data"), "realtime_input.audio.data")
        if len(pcm) % 2:
            raise LiveRefused("Audio data must be whole 16-bit samples.")
        self.heard_seconds += len(pcm) / (2 * rate)
        if not self.setup.automatic_activity:
            if not self.in_activity:
                raise LiveRefused("Audio received outside an activity: send activityStart first.")
            self.rate = rate
            self.heard += pcm
            return
        if self.vad is None or self.rate != rate:
            self.rate = rate
            self.vad = Vad(rate, self.setup.silence_ms)
        speaking = self.vad.speaking
        events = self.vad.feed(pcm)
        if speaking or events:
            self.heard += pcm
        for kind, at_ms in events:
            if kind == "start":
                await self._voice_activity("ACTIVITY_START", at_ms)
                await self._interrupt()
            else:
                await self._voice_activity("ACTIVITY_END", at_ms)
                await self._user_turn(spoken=True)

    async def _voice_activity(self, kind: str, at_ms: int) -> None:
        if self.scenario.voice_activity:
            await self.send({"voiceActivity": {"type": kind, "audioOffset": f"{at_ms / 1000:.3f}s"}})

    async def _client_content(self, message: dict[str, Any]) -> None:
        for index, turn in enumerate(message.get("turns") or []):
            content = fields(turn, frozenset(("parts", "role")), f"client_content.turns[{index}]")
            if content.get("role", "user") not in ("user", "model"):
                raise LiveRefused(f"Please use a valid role: user, model (got {content.get('role')!r}).")
            for number, part in enumerate(content.get("parts") or []):
                fields(part, frozenset(("text",)), f"client_content.turns[{index}].parts[{number}]")
        if message.get("turnComplete"):
            await self._interrupt()
            await self._user_turn(spoken=False)

    async def _tool_response(self, message: dict[str, Any]) -> None:
        responses = message.get("functionResponses")
        if not isinstance(responses, list) or not responses:
            raise LiveRefused("tool_response.function_responses must hold at least one response.")
        for index, response in enumerate(responses):
            read = fields(response, frozenset(("id", "name", "response", "willContinue", "scheduling")), f"r{index}")
            call = str(read.get("id"))
            if call not in self.pending:
                raise LiveRefused(f"Function response id {call!r} does not match any pending function call.")
            if read.get("name") != self.pending[call]:
                raise LiveRefused(f"Function response name {read.get('name')!r} does not match its call.")
            if not isinstance(read.get("response"), dict):
                raise LiveRefused("tool_response.function_responses.response must be an object.")
            del self.pending[call]
        if not self.pending:
            self.after_tools = True
            self._start_answer(spoken=False)

    # --- what the model says --------------------------------------------------------------------------------------

    async def _user_turn(self, *, spoken: bool) -> None:
        await self._interrupt()
        self._start_answer(spoken=spoken)

    def _start_answer(self, *, spoken: bool) -> None:
        heard, self.heard = bytes(self.heard), bytearray()
        speech = spoken and has_speech(heard, self.rate)
        self.answering = True
        self.answer = asyncio.create_task(self._answer(speech), name="gemini-live-answer")

    async def _answer(self, speech: bool) -> None:
        try:
            await self._speak(speech)
        except _Closed:
            return

    async def _speak(self, speech: bool) -> None:
        scenario = self.scenario
        if speech and self.setup.input_transcription:
            for heard in scenario.text_chunks:  # speech is "heard" as the scenario's text, as OpenAI's emulator does
                await self.send({"serverContent": {"inputTranscription": {"text": heard}}})
        if scenario.tool_calls and not self.after_tools:
            calls = [{"id": c.id, "name": c.name, "args": json.loads(c.arguments)} for c in scenario.tool_calls]
            self.pending = {c.id: c.name for c in scenario.tool_calls}
            self.answering = False
            await self.send({"toolCall": {"functionCalls": calls}})
            return
        self.after_tools = False
        pace = scenario.chunk_delay_s or _DEFAULT_PACE_S
        first = True
        for index, text in enumerate(scenario.text_chunks):
            pcm = _tone(max(0.08, 0.02 * len(text)), 220.0 + 20.0 * index)
            step = OUTPUT_RATE * 2 * _PIECE_MS // 1000
            for offset in range(0, len(pcm), step):
                piece = pcm[offset : offset + step]
                part = {"inlineData": {"mimeType": f"audio/pcm;rate={OUTPUT_RATE}", "data": _b64(piece)}}
                await self.send({"serverContent": {"modelTurn": {"parts": [part]}}})
                self.out_seconds += len(piece) / (2 * OUTPUT_RATE)
                if first:
                    first = False
                    await self._fault()
                await asyncio.sleep(pace)
            if self.setup.output_transcription:
                await self.send({"serverContent": {"outputTranscription": {"text": text}}})
        await self.send({"serverContent": {"generationComplete": True}})
        self.answering = False
        await self.send({"serverContent": {"turnComplete": True}, "usageMetadata": self._usage()})

    async def _fault(self) -> None:
        fault = self.scenario.fault
        if fault is None or fault.is_status:
            return
        if fault.kind == "stall":
            await asyncio.sleep(fault.stall_s)
            raise _Closed
        if fault.kind == "truncated":
            await self.close(1000, "")
            raise _Closed
        await self.close(1011, "Internal error encountered.")
        raise _Closed

    def _usage(self) -> dict[str, Any]:
        audio_in = max(0, round(self.heard_seconds * _TOKENS_PER_SECOND))
        audio_out = max(1, round(self.out_seconds * _TOKENS_PER_SECOND))
        prompt = audio_in + self.scenario.usage.input_tokens
        return {
            "promptTokenCount": prompt,
            "responseTokenCount": audio_out,
            "totalTokenCount": prompt + audio_out,
            "promptTokensDetails": [
                {"modality": "TEXT", "tokenCount": self.scenario.usage.input_tokens},
                {"modality": "AUDIO", "tokenCount": audio_in},
            ],
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": audio_out}],
        }

    async def _interrupt(self) -> None:
        """Stop the answer in progress: ``interrupted``, then its ``turnComplete``."""
        if not self.answering:
            return
        await self._stop_answer()
        self.answering = False
        await self.send({"serverContent": {"interrupted": True}})
        await self.send({"serverContent": {"turnComplete": True}, "usageMetadata": self._usage()})

    async def _stop_answer(self) -> None:
        task, self.answer = self.answer, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _gemini_live(state: EmulatorState, rpc: str) -> Response | None:
    from tests.emulator.app import RecordedRequest

    args = {key: websocket.args.get(key, "") for key in websocket.args}
    headers = {k.lower(): v for k, v in websocket.headers.items() if k.lower() not in _SECRET}
    state.requests.append(RecordedRequest("gemini_live", "", {"rpc": rpc, "query": sorted(args)}, headers))
    match = _RPC.fullmatch(rpc)
    if match is None or match["version"] not in _VERSIONS or match["method"] != "BidiGenerateContent":
        message = f"The requested URL /ws/{rpc} was not found on this server."
        return reply(ErrorReply(404, {"error": {"code": 404, "message": message, "status": "NOT_FOUND"}}))
    named = websocket.headers.get("x-emulator-scenario")
    scenario = state.resolve(named) if named else None
    if scenario is not None and scenario.fault is not None and scenario.fault.kind == "rate_limited":
        return reply(gemini_error(scenario.fault))  # a quota is checked before the upgrade: 429 with RetryInfo
    await websocket.accept()
    keyed = bool(websocket.headers.get("x-goog-api-key") or args.get("key"))
    session = await _setup(state, match["version"], keyed, named, scenario)
    if session is not None:
        await session.run()
    return None


async def _setup(
    state: EmulatorState, version: str, keyed: bool, named: str | None, scenario: Scenario | None
) -> _GeminiLiveSession | None:
    """Read and check the setup; ``None`` when the session was refused (and closed). ``scenario``: the one ``named``
    in the handshake's header, if any."""
    from tests.emulator.app import RecordedRequest

    try:
        message = json.loads(await websocket.receive())
        if not isinstance(message, dict):
            raise LiveRefused("Invalid JSON payload received. Expected an object.")
        state.requests.append(RecordedRequest("gemini_live_message", "", message, {}))
        if not keyed:
            raise LiveRefused(
                "Method doesn't allow unregistered callers (callers without established identity). Please use API "
                "Key or other form of API consumer identity to call this API.",
                code=1008,
            )
        setup = read_setup(fields(message, frozenset(("setup",)), "message"), version)
        if not named:  # a sequence scripted for the model's name, else the plain answer
            scenario = state.resolve(setup.model) if setup.model in state.sequences else SCENARIOS["text"]
        if scenario is None:
            raise LiveRefused(f"no emulator scenario {named!r}", code=1008)
        fault: Fault | None = scenario.fault
        if fault is not None and fault.is_status:
            code, reason = _CLOSES[fault.kind]
            raise LiveRefused(reason, code=code)
    except ValueError:
        await websocket.close(1007, "Invalid JSON payload received.")
        return None
    except LiveRefused as refused:
        await websocket.close(refused.code, refused.reason)
        return None
    await websocket.send(json.dumps({"setupComplete": {}}))
    return _GeminiLiveSession(state, scenario, setup)


def register_gemini_live_routes(app: Quart, state: EmulatorState) -> None:
    """Add Gemini Live's ``BidiGenerateContent`` WebSocket to the emulator ``app``."""

    @app.websocket("/ws/<rpc>")
    async def gemini_live(rpc: str) -> Response | None:
        return await _gemini_live(state, rpc)
