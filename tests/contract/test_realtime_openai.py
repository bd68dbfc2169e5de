"""The OpenAI Realtime adapter (``OpenAIRealtimeProvider``) through the official SDK at the vendor emulator: what
reaches the vendor (the ``session.update``, resampled audio, the events each call sends) and the domain events and
errors it makes of what comes back. The behaviour every realtime provider shares is the realtime contract suite's;
these pin the OpenAI wire.

The emulator picks the scenario from the ``x-emulator-scenario`` header (the SDK sends the client's default headers
on the WebSocket handshake).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from openai import AsyncOpenAI

from adapters.openai.realtime import INPUT_TRANSCRIPTION_MODEL, OpenAIRealtimeProvider, OpenAIRealtimeSession
from domain.catalog import ModelSpec
from domain.errors import ProviderError, RateLimitError, ValidationError
from domain.realtime import (
    RealtimeAudio,
    RealtimeConfig,
    RealtimeEvent,
    RealtimeSpeechStarted,
    RealtimeSpeechStopped,
    RealtimeTool,
    RealtimeToolCall,
    RealtimeTranscript,
    RealtimeTurnDone,
)
from tests.emulator import SCENARIOS, RunningEmulator, Scenario
from tests.emulator.render_realtime import RATE
from tests.emulator.speech import render_audio
from tests.support.live_audio import frames, silence, tone_pcm

EVENTS_API = "openai_realtime_conversation_event"
TEXT = SCENARIOS["text"].text
WEATHER = RealtimeTool("get_weather", "The weather in a city", {"type": "object", "properties": {}})
SLOW = "realtime-slow"  # a long answer, paced, so there is time to cancel or interrupt it


def spec(model: str = "gpt-realtime") -> ModelSpec:
    return ModelSpec(id=model, provider="openai", capabilities=frozenset({"realtime"}))


def answer_bytes(scenario: Scenario) -> int:
    """The bytes of audio the emulator speaks for ``scenario``'s answer."""
    return sum(len(render_audio(chunk, "pcm", RATE)) for chunk in scenario.text_chunks)


class Conversation:
    """An open session whose events are read into a list as they come."""

    def __init__(self, session: OpenAIRealtimeSession) -> None:
        self.session = session
        self.events: list[RealtimeEvent] = []
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for event in self.session.events():
                self.events.append(event)
                self._changed.set()
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self._changed.set()

    async def until(self, done: Callable[[list[RealtimeEvent]], bool]) -> list[RealtimeEvent]:
        """The events so far, once ``done`` holds for them (a generous guard, not a timing assertion)."""

        async def wait() -> None:
            while not done(self.events):
                if self.reader.done():
                    raise AssertionError(f"the session ended first: {self.error!r}; events {self.events}")
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), 10.0)
        return self.events

    async def turns(self, count: int) -> list[RealtimeTurnDone]:
        await self.until(lambda events: len(done_turns(events)) >= count)
        return done_turns(self.events)

    async def send(self, pcm: bytes, *, rate: int) -> None:
        for frame in frames(pcm, rate=rate):
            await self.session.send_audio(frame)

    async def close(self) -> None:
        await self.session.aclose()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(self.reader, 5.0)


def done_turns(events: list[RealtimeEvent]) -> list[RealtimeTurnDone]:
    return [event for event in events if isinstance(event, RealtimeTurnDone)]


def transcripts(events: list[RealtimeEvent], speaker: str, *, final: bool) -> list[str]:
    return [e.text for e in events if isinstance(e, RealtimeTranscript) and e.speaker == speaker and e.final == final]


def audio_bytes(events: list[RealtimeEvent]) -> int:
    return sum(len(event.data) for event in events if isinstance(event, RealtimeAudio))


def sent(emulator: RunningEmulator, since: int, kind: str | None = None) -> list[dict[str, Any]]:
    """The client events the emulator received since request ``since`` (of type ``kind``)."""
    bodies = [r.body for r in emulator.state.requests[since:] if r.api == EVENTS_API]
    return [body for body in bodies if kind is None or body.get("type") == kind]


@pytest.fixture(scope="module", autouse=True)
def _slow_scenario(emulator: RunningEmulator) -> None:
    emulator.state.add(SLOW, Scenario(text_chunks=tuple(f"word{i} " for i in range(12)), chunk_delay_s=0.05))


@pytest.fixture
async def connect(emulator: RunningEmulator) -> AsyncIterator[Callable[..., Any]]:
    """Opens conversations (``scenario``, config changes); closes them and their clients after the test."""
    opened: list[Conversation] = []
    clients: list[AsyncOpenAI] = []

    async def open_conversation(scenario: str = "text", model: str = "gpt-realtime", **config: Any) -> Conversation:
        client = AsyncOpenAI(
            api_key="sk-test-key",
            base_url=emulator.openai_base_url,
            max_retries=0,
            default_headers={"x-emulator-scenario": scenario},
        )
        clients.append(client)
        session = await OpenAIRealtimeProvider(client).open(spec(model), RealtimeConfig(**config))
        conversation = Conversation(session)
        opened.append(conversation)
        return conversation

    yield open_conversation
    for conversation in opened:
        await conversation.close()
    for client in clients:
        await client.close()


# --- what reaches the vendor ---------------------------------------------------------------------------------------


async def test_the_session_update_carries_the_config(connect: Any, emulator: RunningEmulator) -> None:
    """``session.update`` makes a ``realtime`` session: 24 kHz pcm both ways, the voice, instructions, input
    transcription, no turn detection when the client commits, and the tools as function tools."""
    since = len(emulator.state.requests)
    await connect(voice="marin", instructions="Be brief.", turn_detection="none", tools=(WEATHER,))
    (update,) = sent(emulator, since, "session.update")
    session = update["session"]
    assert session["type"] == "realtime"
    assert session["instructions"] == "Be brief."
    assert session["output_modalities"] == ["audio"]
    pcm = {"type": "audio/pcm", "rate": 24_000}
    assert session["audio"]["input"] == {
        "format": pcm,
        "turn_detection": None,
        "transcription": {"model": INPUT_TRANSCRIPTION_MODEL},
    }
    assert session["audio"]["output"] == {"format": pcm, "voice": "marin"}
    assert session["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": WEATHER.description,
            "parameters": WEATHER.parameters,
        }
    ]
    assert "temperature" not in session


async def test_a_temperature_is_refused_before_connecting(connect: Any, emulator: RunningEmulator) -> None:
    """GA realtime sessions have no temperature: asking for one is the client's ValidationError on
    ``session.temperature``, and no connection is made (never a session silently without it)."""
    since = len(emulator.state.requests)
    with pytest.raises(ValidationError) as refused:
        await connect(temperature=0.6)
    assert refused.value.context["field"] == "session.temperature"
    assert [r for r in emulator.state.requests[since:] if r.api.startswith("openai_realtime")] == []


async def test_speech_stopped_is_the_end_of_the_users_speech(connect: Any) -> None:
    """Server VAD: ``input_audio_buffer.speech_stopped`` is ``RealtimeSpeechStopped``, after the speech started and
    before the answer's audio."""
    conversation = await connect()
    await conversation.send(tone_pcm(0.8, rate=24_000) + silence(1.0, rate=24_000), rate=24_000)
    events = await conversation.until(lambda events: bool(done_turns(events)))
    kinds = [type(event) for event in events]
    assert kinds.count(RealtimeSpeechStopped) == 1
    assert kinds.index(RealtimeSpeechStarted) < kinds.index(RealtimeSpeechStopped) < kinds.index(RealtimeAudio)


async def test_server_vad_asks_the_vendor_to_answer_and_to_be_interrupted(
    connect: Any, emulator: RunningEmulator
) -> None:
    """Server VAD is asked with ``create_response`` and ``interrupt_response``; no transcription when not asked."""
    since = len(emulator.state.requests)
    await connect(input_transcription=False)
    (update,) = sent(emulator, since, "session.update")
    audio_input = update["session"]["audio"]["input"]
    assert audio_input["turn_detection"] == {"type": "server_vad", "create_response": True, "interrupt_response": True}
    assert "transcription" not in audio_input


async def test_16_khz_audio_reaches_the_vendor_at_24_khz(connect: Any, emulator: RunningEmulator) -> None:
    """Client audio at 16 kHz is resampled: the vendor receives half as many samples again, as appends."""
    conversation = await connect("echo", input_sample_rate=16_000)
    since = len(emulator.state.requests)
    pcm = tone_pcm(1.0, rate=16_000)
    await conversation.send(pcm, rate=16_000)
    await conversation.until(lambda events: audio_bytes(events) >= 47_000)
    received = audio_bytes(conversation.events)  # the echo answers each append with as many bytes as it took
    assert abs(received - len(pcm) * 3 // 2) <= 2 * 64  # the resampler holds back a few samples at most
    assert len(sent(emulator, since, "input_audio_buffer.append")) == 10


async def test_24_khz_audio_passes_untouched(connect: Any) -> None:
    """At the vendor's rate, every byte goes through as it came, each frame answered by its echo."""
    conversation = await connect("echo", input_sample_rate=24_000)
    pcm = tone_pcm(0.5, rate=24_000)
    await conversation.send(pcm, rate=24_000)
    events = await conversation.until(lambda events: audio_bytes(events) >= len(pcm))
    assert b"".join(e.data for e in events if isinstance(e, RealtimeAudio)) == pcm


async def test_commit_commits_then_asks_for_a_response(connect: Any, emulator: RunningEmulator) -> None:
    """Without turn detection, ``commit`` is ``input_audio_buffer.commit`` then ``response.create``."""
    conversation = await connect(turn_detection="none", input_sample_rate=24_000)
    since = len(emulator.state.requests)
    await conversation.send(tone_pcm(0.5, rate=24_000), rate=24_000)
    await conversation.session.commit()
    await conversation.turns(1)
    kinds = [body["type"] for body in sent(emulator, since) if body["type"] != "input_audio_buffer.append"]
    assert kinds == ["input_audio_buffer.commit", "response.create"]


async def test_text_and_tool_results_are_items_then_a_response(connect: Any, emulator: RunningEmulator) -> None:
    """A user text is a ``message`` item of ``input_text``, a tool result a ``function_call_output`` item, each
    followed by ``response.create``."""
    conversation = await connect("tool", turn_detection="none", tools=(WEATHER,))
    since = len(emulator.state.requests)
    await conversation.session.send_text("Weather in Paris?")
    (turn,) = await conversation.turns(1)
    (call,) = [e for e in conversation.events if isinstance(e, RealtimeToolCall)]
    await conversation.session.send_tool_result(call.call_id, json.dumps({"sky": "clear"}))
    await conversation.turns(2)
    items = [body["item"] for body in sent(emulator, since, "conversation.item.create")]
    assert items == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {"type": "function_call_output", "call_id": "call_weather_1", "output": '{"sky": "clear"}'},
    ]
    assert len(sent(emulator, since, "response.create")) == 2
    assert turn.status == "completed"


# --- what comes back -----------------------------------------------------------------------------------------------


async def test_a_spoken_turn_is_transcribed_and_answered(connect: Any) -> None:
    """Server VAD: speech then a pause gives the user's transcript, the answer's audio and transcript, and one
    completed turn with the vendor's token usage."""
    conversation = await connect(input_sample_rate=16_000)
    await conversation.send(tone_pcm(1.0) + silence(1.0), rate=16_000)
    (turn,) = await conversation.turns(1)
    events = conversation.events
    assert transcripts(events, "user", final=True) == [TEXT]
    assert "".join(transcripts(events, "user", final=False)) == TEXT
    assert transcripts(events, "assistant", final=True) == [TEXT]
    assert "".join(transcripts(events, "assistant", final=False)) == TEXT
    assert audio_bytes(events) == answer_bytes(SCENARIOS["text"])
    assert {e.response_id for e in events if isinstance(e, RealtimeAudio)} == {turn.response_id}
    assert turn.status == "completed"
    assert turn.usage is not None
    assert turn.usage.input_tokens > SCENARIOS["text"].usage.input_tokens  # the audio's tokens count in
    assert turn.usage.output_tokens > 0
    user_final = next(i for i, e in enumerate(events) if isinstance(e, RealtimeTranscript) and e.speaker == "user")
    first_audio = next(i for i, e in enumerate(events) if isinstance(e, RealtimeAudio))
    assert user_final < first_audio < events.index(turn)


async def test_a_tool_call_is_answered_after_its_result(connect: Any) -> None:
    """The model calls the tool (a whole call, its arguments joined); its result is answered with speech."""
    conversation = await connect("tool", turn_detection="none", tools=(WEATHER,))
    await conversation.session.send_text("Weather in Paris?")
    (first,) = await conversation.turns(1)
    calls = [e for e in conversation.events if isinstance(e, RealtimeToolCall)]
    assert calls == [RealtimeToolCall("call_weather_1", "get_weather", '{"city": "Paris"}')]
    assert audio_bytes(conversation.events) == 0
    await conversation.session.send_tool_result("call_weather_1", '{"sky": "clear"}')
    _, second = await conversation.turns(2)
    assert first.status == second.status == "completed"
    assert transcripts(conversation.events, "assistant", final=True) == [SCENARIOS["tool"].text]


async def test_a_tool_result_sent_before_its_turn_ended_is_still_answered(connect: Any) -> None:
    """The result of a call that arrives while its response is still open is answered once that response is done
    (one response at a time), not refused."""
    conversation = await connect("tool", turn_detection="none", tools=(WEATHER,))
    await conversation.session.send_text("Weather in Paris?")
    await conversation.until(lambda events: any(isinstance(e, RealtimeToolCall) for e in events))
    await conversation.session.send_tool_result("call_weather_1", '{"sky": "clear"}')
    turns = await conversation.turns(2)
    assert [turn.status for turn in turns] == ["completed", "completed"]


async def test_cancel_ends_the_answer_cancelled(connect: Any, emulator: RunningEmulator) -> None:
    """``cancel`` during an answer ends it ``cancelled`` with what it said so far; with nothing to cancel it sends
    nothing; the conversation goes on."""
    conversation = await connect(SLOW, turn_detection="none")
    since = len(emulator.state.requests)
    await conversation.session.send_text("Tell me a story.")
    await conversation.until(lambda events: audio_bytes(events) > 0)
    await conversation.session.cancel()
    (turn,) = await conversation.turns(1)
    assert turn.status == "cancelled"
    assert 0 < audio_bytes(conversation.events) < answer_bytes(emulator.state.scenarios[SLOW])
    await conversation.session.cancel()
    assert len(sent(emulator, since, "response.cancel")) == 1
    await conversation.session.send_text("Shorter, please.")
    _, after = await conversation.turns(2)
    assert after.status == "completed"


async def test_speech_over_the_answer_interrupts_it(connect: Any) -> None:
    """Server VAD: the user talking over an answer gives ``speech_started`` and ends the answer ``interrupted``."""
    conversation = await connect(SLOW, input_sample_rate=24_000)
    await conversation.session.send_text("Tell me a story.")
    await conversation.until(lambda events: audio_bytes(events) > 0)
    await conversation.send(tone_pcm(0.5, rate=24_000), rate=24_000)
    (turn,) = await conversation.turns(1)
    events = conversation.events
    started = next(i for i, e in enumerate(events) if isinstance(e, RealtimeSpeechStarted))
    assert started < events.index(turn)
    assert turn.status == "interrupted"


async def test_text_sent_during_an_answer_is_answered_after_it(connect: Any) -> None:
    """A second user message while the model speaks is answered once the first answer is done."""
    conversation = await connect(turn_detection="none")
    await conversation.session.send_text("Hello?")
    await conversation.until(lambda events: audio_bytes(events) > 0)
    await conversation.session.send_text("And again?")
    turns = await conversation.turns(2)
    assert [turn.status for turn in turns] == ["completed", "completed"]
    assert transcripts(conversation.events, "assistant", final=True) == [TEXT, TEXT]


async def test_an_empty_commit_is_no_error(connect: Any, emulator: RunningEmulator) -> None:
    """A commit with no audio is refused by the vendor (``input_audio_buffer_commit_empty``) without ending the
    session: the model answers the conversation so far."""
    conversation = await connect(turn_detection="none")
    since = len(emulator.state.requests)
    await conversation.session.commit()
    (turn,) = await conversation.turns(1)
    assert turn.status == "completed"
    assert [body["type"] for body in sent(emulator, since)] == ["input_audio_buffer.commit", "response.create"]
    assert transcripts(conversation.events, "user", final=True) == []


async def test_aclose_ends_the_events_without_an_error(connect: Any) -> None:
    """Closing the session ends its events cleanly (the close is ours, not a lost connection)."""
    conversation = await connect()
    await conversation.session.aclose()
    await asyncio.wait_for(conversation.reader, 5.0)
    assert conversation.error is None
    await conversation.session.aclose()  # idempotent


# --- errors --------------------------------------------------------------------------------------------------------


async def test_a_refused_key_is_a_provider_error(connect: Any) -> None:
    """A 401 on the handshake is a non-retryable ``ProviderError``, never the vendor's body."""
    with pytest.raises(ProviderError) as caught:
        await connect("fault-401")
    assert not caught.value.retryable
    assert "sk-" not in str(caught.value)


async def test_a_rate_limited_handshake_is_a_rate_limit_error(connect: Any) -> None:
    """A 429 on the handshake is a ``RateLimitError``."""
    with pytest.raises(RateLimitError):
        await connect("fault-429")


async def test_a_non_realtime_model_is_refused_naming_the_model(connect: Any) -> None:
    """The vendor's ``invalid_model`` for the URL's model is the client's ``ValidationError`` on ``model``."""
    with pytest.raises(ValidationError) as caught:
        await connect(model="gpt-4o")
    assert caught.value.field == "model"


async def test_an_unknown_voice_is_refused_naming_the_voice(connect: Any) -> None:
    """A voice the vendor refuses in ``session.update`` is the client's ``ValidationError`` on ``voice``."""
    with pytest.raises(ValidationError) as caught:
        await connect(voice="robot")
    assert caught.value.field == "voice"


@pytest.mark.parametrize(
    ("scenario", "close_code"), [("fault-mid-stream", None), ("fault-truncated", 1011), ("fault-malformed", None)]
)
async def test_a_session_failing_mid_answer_is_a_retryable_provider_error(
    connect: Any, scenario: str, close_code: int | None
) -> None:
    """A vendor ``server_error`` event, a dropped connection or a message that is not JSON after the first audio ends
    the events with a retryable ``ProviderError`` (the audio before it went out)."""
    conversation = await connect(scenario, turn_detection="none")
    await conversation.session.send_text("Hello?")
    with contextlib.suppress(AssertionError):
        await conversation.until(lambda events: False)
    error = conversation.error
    assert isinstance(error, ProviderError)
    assert error.retryable
    assert error.context.get("close_code") == close_code
    assert audio_bytes(conversation.events) > 0
