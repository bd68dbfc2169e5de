"""Test double (vendor emulator): the Quart app serving OpenAI, Anthropic and Gemini wire formats on loopback.

The scenario for a request is chosen by the ``x-emulator-scenario`` header, else by the model name (see
``scenario.SCENARIOS``; tests add their own with ``EmulatorState.add``). ``EmulatorState.script`` queues several
scenarios for one name, served in order (the last repeats): "429, then success" for retry tests. Every request body
is recorded so adapter tests can check the translation of messages, tools and options.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from attrs import define, field, frozen
from quart import Quart, Response, request

from tests.emulator import images  # images
from tests.emulator import render_anthropic as anthropic
from tests.emulator import render_gemini as gemini
from tests.emulator import render_openai as openai
from tests.emulator.embeddings import register_embedding_routes
from tests.emulator.live_transcription import register_live_transcription_routes  # live stt
from tests.emulator.realtime_gemini import register_gemini_live_routes  # realtime voice: Gemini Live
from tests.emulator.scenario import SCENARIOS, Fault, Scenario
from tests.emulator.speech import gemini_speech, register_speech_routes, wants_audio  # text-to-speech
from tests.emulator.transcription import gemini_transcript, register_transcription_routes, wants_transcript  # stt
from tests.emulator.video import register_video_routes  # video: Veo long-running operations
from tests.emulator.wire import MALFORMED_FRAME, ErrorReply, Rendered

__all__ = ["EmulatorState", "RecordedRequest", "create_emulator_app"]

_SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}


@frozen
class RecordedRequest:
    """One request the emulator received: which API, the model asked for and the JSON body."""

    api: str
    model: str
    body: dict[str, Any]
    headers: dict[str, str]
    path: str = ""


@define
class EmulatorState:
    """Mutable, shared with the test thread: scenarios by name, scripted sequences, and the request log."""

    scenarios: dict[str, Scenario] = field(factory=lambda: dict(SCENARIOS))
    sequences: dict[str, list[Scenario]] = field(factory=dict)
    requests: list[RecordedRequest] = field(factory=list)
    #: Served for unknown model names when set (standalone runs point real catalog models here); tests keep it unset,
    #: so a misspelt scenario is a 404 rather than a silent success.
    default_scenario: str | None = None

    def add(self, name: str, scenario: Scenario) -> str:
        """Register ``scenario`` under ``name`` (used as the model name) and return the name."""
        self.scenarios[name] = scenario
        return name

    def script(self, name: str, *scenarios: Scenario) -> str:
        """Serve ``scenarios`` in order to successive requests for ``name``; the last one repeats."""
        self.sequences[name] = list(scenarios)
        return name

    def last(self, api: str | None = None) -> RecordedRequest:
        """The most recent request (for ``api`` when given)."""
        matching = [r for r in self.requests if api is None or r.api == api]
        if not matching:
            raise LookupError(f"no request recorded for {api or 'any api'}")
        return matching[-1]

    def resolve(self, name: str) -> Scenario | None:
        """The scenario for ``name``: the next of a scripted sequence, else the registered one."""
        queue = self.sequences.get(name)
        if queue:
            return queue.pop(0) if len(queue) > 1 else queue[0]
        found = self.scenarios.get(name)
        if found is None and self.default_scenario is not None:
            return self.scenarios.get(self.default_scenario)
        return found


def _authenticated() -> bool:
    headers = request.headers
    return bool(headers.get("authorization") or headers.get("x-api-key") or headers.get("x-goog-api-key"))


def _json(reply: ErrorReply) -> Response:
    return Response(json.dumps(reply.body), status=reply.status, headers=reply.headers, mimetype="application/json")


async def _trickle(
    frames: list[bytes], delay_s: float, tail: Callable[[], AsyncIterator[bytes]] | None
) -> AsyncIterator[bytes]:
    for frame in frames:
        if delay_s:
            await asyncio.sleep(delay_s)
        yield frame
    if tail is not None:
        async for frame in tail():
            yield frame


def _stream(
    scenario: Scenario, rendered: Rendered, error_frame: Callable[[], bytes], malformed: bytes = MALFORMED_FRAME
) -> Response:
    """The SSE response, with a mid-stream fault injected after the first content frame when scripted."""
    fault = scenario.fault
    frames = rendered.frames
    tail: Callable[[], AsyncIterator[bytes]] | None = None
    if fault is not None and not fault.is_status:
        frames = frames[: rendered.cut]
        stall_s = fault.stall_s

        async def fault_tail() -> AsyncIterator[bytes]:
            if fault.kind == "stall":
                await asyncio.sleep(stall_s)
                return
            if fault.kind == "truncated":
                return
            yield error_frame() if fault.kind == "mid_stream_error" else malformed

        tail = fault_tail
    return Response(_trickle(frames, scenario.chunk_delay_s, tail), headers=_SSE_HEADERS)


async def _whole(scenario: Scenario, body: dict[str, Any], error: Callable[[Fault], ErrorReply]) -> Response:
    """A non-streaming answer; mid-stream faults become their closest whole-response equivalent."""
    fault = scenario.fault
    if fault is not None:
        if fault.kind == "stall":
            await asyncio.sleep(fault.stall_s)
        elif fault.kind in ("malformed_chunk", "truncated"):
            return Response('{"id": "truncated', mimetype="application/json")
        elif fault.kind == "mid_stream_error":
            return _json(error(Fault("server_error")))
    if scenario.chunk_delay_s:
        await asyncio.sleep(scenario.chunk_delay_s)
    return Response(json.dumps(body), mimetype="application/json")


def create_emulator_app(state: EmulatorState) -> Quart:
    """The emulator app over ``state``."""
    app = Quart("switchyard_vendor_emulator")

    async def prepare(
        api: str, model: str, error: Callable[[Fault], ErrorReply]
    ) -> tuple[Scenario, dict[str, Any]] | Response:
        body = await request.get_json(force=True, silent=True) or {}
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS}
        state.requests.append(RecordedRequest(api, model, body, headers, request.path))
        if not _authenticated():
            return _json(error(Fault("unauthorized")))
        name = request.headers.get("x-emulator-scenario") or model
        scenario = state.resolve(name)
        if scenario is None:
            return _json(ErrorReply(404, {"error": {"message": f"model {name!r} not found", "type": "not_found"}}))
        if scenario.fault is not None and scenario.fault.is_status:
            return _json(error(scenario.fault))
        return scenario, body

    @app.post("/v1/chat/completions")
    async def chat_completions() -> Response:
        body = await request.get_json(force=True, silent=True) or {}
        model = str(body.get("model", ""))
        prepared = await prepare("openai_chat", model, openai.openai_error)
        if isinstance(prepared, Response):
            return prepared
        scenario, body = prepared
        if not body.get("stream"):
            if body.get("stream_options") is not None:  # as OpenAI: a 400 naming the parameter
                return _json(openai.stream_options_refused())
            return await _whole(scenario, openai.chat_completion(scenario, model), openai.openai_error)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        rendered = openai.chat_stream(scenario, model, include_usage=include_usage)
        return _stream(scenario, rendered, openai.chat_error_event)

    @app.post("/v1/responses")
    async def responses() -> Response:
        body = await request.get_json(force=True, silent=True) or {}
        model = str(body.get("model", ""))
        prepared = await prepare("openai_responses", model, openai.openai_error)
        if isinstance(prepared, Response):
            return prepared
        scenario, body = prepared
        if not body.get("stream"):
            return await _whole(scenario, openai.response_object(scenario, model), openai.openai_error)
        rendered = openai.responses_stream(scenario, model)
        return _stream(scenario, rendered, lambda: openai.responses_error_event(rendered.cut))

    @app.post("/v1/messages")
    async def messages() -> Response:
        body = await request.get_json(force=True, silent=True) or {}
        model = str(body.get("model", ""))
        prepared = await prepare("anthropic", model, anthropic.anthropic_error)
        if isinstance(prepared, Response):
            return prepared
        scenario, body = prepared
        if not body.get("stream"):
            return await _whole(scenario, anthropic.message_object(scenario, model), anthropic.anthropic_error)
        rendered = anthropic.messages_stream(scenario, model)
        return _stream(scenario, rendered, anthropic.anthropic_error_event, anthropic.MALFORMED_FRAME)

    @app.post("/<version>/models/<target>")
    async def generate_content(version: str, target: str) -> Response:
        model, _, method = target.partition(":")
        if (wrong := gemini.wrong_version(version)) is not None:  # google-genai's default /v1 is the bug to catch
            return _json(wrong)
        prepared = await prepare("gemini", model, gemini.gemini_error)
        if isinstance(prepared, Response):
            return prepared
        scenario, _body = prepared
        if method == "generateContent" and images.wants_image(_body):  # images: Gemini image models
            return await images.gemini_image_content(scenario, model, _body)
        if wants_audio(_body):  # text-to-speech: Gemini TTS models (streamed or whole)
            return await gemini_speech(scenario, model, method, _body)
        if method == "generateContent" and wants_transcript(_body):  # speech-to-text: inline audio in
            return await gemini_transcript(scenario, model, _body)
        if method == "generateContent":
            return await _whole(scenario, gemini.gemini_response(scenario, model), gemini.gemini_error)
        if method == "streamGenerateContent":
            return _stream(scenario, gemini.gemini_stream(scenario, model), gemini.gemini_error_event)
        return _json(
            ErrorReply(404, {"error": {"code": 404, "message": f"no method {method!r}", "status": "NOT_FOUND"}})
        )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    register_embedding_routes(app, state)
    images.register_image_routes(app, state)  # images: OpenAI Images API, Imagen :predict
    register_speech_routes(app, state)  # text-to-speech: OpenAI audio/speech, ElevenLabs stream and voices
    register_transcription_routes(app, state)  # speech-to-text: OpenAI audio/transcriptions, ElevenLabs
    register_live_transcription_routes(app, state)  # live speech-to-text: OpenAI Realtime, ElevenLabs realtime
    register_gemini_live_routes(app, state)  # realtime voice: Gemini Live BidiGenerateContent
    register_video_routes(app, state)  # video: Veo :predictLongRunning and :fetchPredictOperation (Vertex)
    return app


#: Never recorded: the emulator's request log must not hold credentials, even fake ones.
_SECRET_HEADERS = frozenset(("authorization", "x-api-key", "x-goog-api-key"))
