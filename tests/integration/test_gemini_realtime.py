"""The Gemini vendor serves realtime voice through Gemini Live as the container builds it: google-genai connects to
``wss://<base>/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent`` with the key in a
header, sends the session's setup in the API's own shape, and a refusal of that setup names the setting at fault.
The emulator listens on TLS for it (google-genai opens Gemini Live as ``wss://`` only), trusted here through
``SSL_CERT_FILE``, which google-genai reads when it builds the client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import attrs
import pytest

from container import _vendor_table
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
from ports.providers import VendorProviders
from ports.realtime import REALTIME_PORT, RealtimeProvider, RealtimeSession
from settings import Secret, load_settings
from tests.emulator import SCENARIOS, RunningEmulator, Scenario
from tests.emulator.tls import certificate
from tests.support.live_audio import frames, silence, tone_pcm

MODEL = ModelSpec(id="gemini-live-2.5-flash-preview", provider="gemini", capabilities=frozenset({"realtime"}))
RPC = "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """google-genai trusts the emulator's certificate (read when the client is built)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate().certfile))


@pytest.fixture(autouse=True)
def unscripted(emulator: RunningEmulator) -> Iterator[None]:
    """What a test scripts for the model's sessions ends with the test."""
    yield
    emulator.state.sequences.pop(MODEL.id, None)


@pytest.fixture
async def vendor(emulator: RunningEmulator, trusted: None) -> AsyncIterator[VendorProviders]:
    """The Gemini vendor exactly as the container builds it from settings, pointed at the emulator's TLS port."""
    built = await _built(emulator)
    yield built
    await built.close()


async def _built(emulator: RunningEmulator, **changes: str) -> VendorProviders:
    environ = {"GEMINI_API_KEY": "AIza-test-key", "GOOGLE_GEMINI_BASE_URL": emulator.gemini_live_base_url}
    environ |= {f"SWITCHYARD_PROVIDERS_{key.upper()}": value for key, value in changes.items()}
    [(name, build, key, base_url)] = [
        row for row in _vendor_table(load_settings(environ).providers) if row[0] == "gemini"
    ]
    assert isinstance(key, Secret)
    built: VendorProviders = build(
        name=name, api_key=key.reveal(), base_url=base_url, timeout_s=10.0, connect_timeout_s=5.0
    )
    return built


def _realtime(vendor: VendorProviders) -> RealtimeProvider:
    provider = vendor.get(REALTIME_PORT)
    assert provider is not None, "the Gemini vendor registers no realtime provider"
    return provider


async def _answer(provider: RealtimeProvider, config: RealtimeConfig) -> list[RealtimeEvent]:
    """Open a session, send one text turn and read its events up to the turn's end."""
    session = await provider.open(MODEL, config)
    events: list[RealtimeEvent] = []
    try:
        await session.send_text("What is the weather like?")
        async with asyncio.timeout(10):
            async for event in session.events():
                events.append(event)
                if isinstance(event, RealtimeTurnDone):
                    break
    finally:
        await session.aclose()
    return events


def _setup(emulator: RunningEmulator) -> dict[str, Any]:
    setups = [r.body["setup"] for r in emulator.state.requests if r.api == "gemini_live_message" and "setup" in r.body]
    assert setups, "no setup reached the emulator"
    last: dict[str, Any] = setups[-1]
    return last


async def test_the_container_vendor_talks_to_gemini_live_on_v1beta(
    vendor: VendorProviders, emulator: RunningEmulator
) -> None:
    """The container's Gemini vendor opens Gemini Live at the v1beta RPC path, with the key in x-goog-api-key
    (never recorded), and a text turn is answered to its end."""
    events = await _answer(_realtime(vendor), RealtimeConfig())
    connection = [r for r in emulator.state.requests if r.api == "gemini_live"][-1]
    assert connection.body["rpc"] == RPC
    assert "x-goog-api-key" not in connection.headers  # sent, but never recorded by the emulator
    assert isinstance(events[-1], RealtimeTurnDone)
    assert events[-1].status == "completed"


async def test_the_setup_carries_the_session_in_the_apis_shape(
    vendor: VendorProviders, emulator: RunningEmulator
) -> None:
    """Voice, instructions, temperature, tools (as JSON schema), transcription and manual turns reach the setup."""
    tool = RealtimeTool("get_weather", "The weather in a city", {"type": "object", "properties": {"city": {}}})
    config = RealtimeConfig(
        voice="Kore", instructions="Be brief.", temperature=0.6, turn_detection="none", tools=(tool,)
    )
    await _answer(_realtime(vendor), config)
    setup = _setup(emulator)
    assert setup["model"] == f"models/{MODEL.id}"
    generation = setup["generationConfig"]
    assert generation["responseModalities"] == ["AUDIO"]
    assert generation["temperature"] == 0.6
    assert generation["speechConfig"]["voice_config"]["prebuilt_voice_config"]["voice_name"] == "Kore"
    assert setup["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    [declaration] = setup["tools"][0]["functionDeclarations"]
    assert declaration["name"] == "get_weather"
    assert declaration["parameters_json_schema"] == tool.parameters
    assert setup["realtimeInputConfig"] == {"automatic_activity_detection": {"disabled": True}}
    assert "inputAudioTranscription" in setup
    assert "outputAudioTranscription" in setup


async def test_a_voice_gemini_does_not_have_is_the_clients_error(vendor: VendorProviders) -> None:
    """The API closes the session (1007) over an unknown voice: a ValidationError naming the voice."""
    with pytest.raises(ValidationError) as caught:
        await _realtime(vendor).open(MODEL, RealtimeConfig(voice="nobody"))
    assert caught.value.field == "voice"
    assert caught.value.context["close_code"] == 1007


async def test_a_model_without_live_is_refused(vendor: VendorProviders) -> None:
    """A model that does not serve bidiGenerateContent is closed with 1008: a non-retryable ProviderError."""
    text_model = ModelSpec(id="gemini-2.5-flash", provider="gemini", capabilities=frozenset({"text"}))
    with pytest.raises(ProviderError) as caught:
        await _realtime(vendor).open(text_model, RealtimeConfig())
    assert not caught.value.retryable
    assert caught.value.context["close_code"] == 1008


async def test_the_sdk_default_v1_is_refused_at_the_handshake(emulator: RunningEmulator, trusted: None) -> None:
    """`providers.gemini_api_version = v1` is a 404 at the WebSocket handshake: a provider error."""
    vendor = await _built(emulator, gemini_api_version="v1")
    try:
        with pytest.raises(ProviderError) as caught:
            await _realtime(vendor).open(MODEL, RealtimeConfig())
    finally:
        await vendor.close()
    assert caught.value.context["status"] == 404


# --- the session's behaviour the shared contract leaves to each vendor ----------------------------------------------


class Reader:
    """The session's events, read by a task of their own as the service reads them."""

    def __init__(self, session: RealtimeSession) -> None:
        self.session = session
        self.events: list[RealtimeEvent] = []
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.session.events():
            self.events.append(event)
            self._arrived.set()

    async def until(self, found: Callable[[RealtimeEvent], bool], *, after: int = 0) -> int:
        """The index of the first event from ``after`` on that ``found`` accepts, waiting for it."""
        async with asyncio.timeout(10):
            while True:
                for index in range(after, len(self.events)):
                    if found(self.events[index]):
                        return index
                if self._task.done():
                    self._task.result()
                    raise AssertionError(f"the events ended without it: {self.events}")
                self._arrived.clear()
                await self._arrived.wait()

    async def close(self) -> None:
        await self.session.aclose()
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


def _done(status: str) -> Callable[[RealtimeEvent], bool]:
    return lambda event: isinstance(event, RealtimeTurnDone) and event.status == status


def _messages(emulator: RunningEmulator, key: str) -> list[dict[str, Any]]:
    """The client messages of the last session holding ``key`` (``realtime_input``, ``tool_response`` ...)."""
    bodies = [r.body for r in emulator.state.requests if r.api == "gemini_live_message"]
    last_setup = max(i for i, body in enumerate(bodies) if "setup" in body)
    return [body[key] for body in bodies[last_setup:] if key in body]


#: An answer that lasts about a second: long enough to be talked over or cancelled while it plays.
LONG_ANSWER = Scenario(text_chunks=tuple(f"word{i} " for i in range(12)), chunk_delay_s=0.02)


async def test_speech_during_an_answer_interrupts_it(vendor: VendorProviders, emulator: RunningEmulator) -> None:
    """Server VAD: the user talking over an answer is heard (speech started), the answer ends ``interrupted`` with
    nothing of it after, and the user's new turn is answered."""
    emulator.state.script(MODEL.id, LONG_ANSWER)
    reader = Reader(await _realtime(vendor).open(MODEL, RealtimeConfig()))
    try:
        await reader.session.send_text("Tell me a long story.")
        first_audio = await reader.until(lambda event: isinstance(event, RealtimeAudio))
        for frame in frames(tone_pcm(0.8, rate=24_000) + silence(1.0, rate=24_000), rate=24_000):
            await reader.session.send_audio(frame)
        interrupted = await reader.until(_done("interrupted"), after=first_audio)
        answered = await reader.until(_done("completed"), after=interrupted)
    finally:
        await reader.close()
    events = reader.events
    cut = events[interrupted]
    assert isinstance(cut, RealtimeTurnDone)
    assert any(isinstance(event, RealtimeSpeechStarted) for event in events[first_audio:interrupted])
    later = events[interrupted:answered]
    assert not [e for e in later if isinstance(e, RealtimeAudio) and e.response_id == cut.response_id]
    assert [e for e in later if isinstance(e, RealtimeTranscript) and e.speaker == "user" and e.final]


async def test_without_voice_activity_no_end_of_speech_is_made_up(
    vendor: VendorProviders, emulator: RunningEmulator
) -> None:
    """A live model that sends no ``voiceActivity``: the user's transcription stands for the start of speech, and no
    ``RealtimeSpeechStopped`` is invented for the end (the answer beginning is not it), so the turn is not timed."""
    reader = Reader(await _realtime(vendor).open(MODEL, RealtimeConfig()))
    try:
        for frame in frames(tone_pcm(0.8, rate=24_000) + silence(1.0, rate=24_000), rate=24_000):
            await reader.session.send_audio(frame)
        await reader.until(_done("completed"))
    finally:
        await reader.close()
    kinds = [type(event) for event in reader.events]
    assert RealtimeSpeechStarted in kinds
    assert RealtimeAudio in kinds
    assert RealtimeSpeechStopped not in kinds


async def test_voice_activity_signals_each_utterance_over_an_answer(
    vendor: VendorProviders, emulator: RunningEmulator
) -> None:
    """A live model that sends ``voiceActivity``: its start and end of speech, once each per utterance, also for
    speech that interrupts an answer (the ``interrupted`` adds no second start); the end comes before the answer to
    it."""
    emulator.state.script(MODEL.id, attrs.evolve(LONG_ANSWER, voice_activity=True))
    reader = Reader(await _realtime(vendor).open(MODEL, RealtimeConfig()))
    speech = tone_pcm(0.8, rate=24_000) + silence(1.0, rate=24_000)
    try:
        for frame in frames(speech, rate=24_000):
            await reader.session.send_audio(frame)
        first_audio = await reader.until(lambda event: isinstance(event, RealtimeAudio))
        for frame in frames(speech, rate=24_000):
            await reader.session.send_audio(frame)
        interrupted = await reader.until(_done("interrupted"), after=first_audio)
        answered = await reader.until(_done("completed"), after=interrupted)
    finally:
        await reader.close()
    signals = [type(e) for e in reader.events if isinstance(e, RealtimeSpeechStarted | RealtimeSpeechStopped)]
    assert signals == [RealtimeSpeechStarted, RealtimeSpeechStopped] * 2, reader.events
    second_stop = max(i for i, e in enumerate(reader.events) if isinstance(e, RealtimeSpeechStopped))
    assert first_audio < second_stop < answered
    assert not any(isinstance(e, RealtimeAudio) for e in reader.events[interrupted:second_stop])


async def test_cancel_with_client_turns_stops_the_vendors_answer(
    vendor: VendorProviders, emulator: RunningEmulator
) -> None:
    """Turn detection ``none``: ``cancel`` ends the answer ``cancelled`` and sends ``activityStart`` itself (Gemini
    stops generating at the start of user activity); the next turn is answered."""
    emulator.state.script(MODEL.id, LONG_ANSWER)
    reader = Reader(await _realtime(vendor).open(MODEL, RealtimeConfig(turn_detection="none")))
    try:
        await reader.session.send_text("Tell me a long story.")
        await reader.until(lambda event: isinstance(event, RealtimeAudio))
        await reader.session.cancel()
        cancelled = await reader.until(_done("cancelled"))
        await reader.session.send_text("Something short, then.")
        await reader.until(_done("completed"), after=cancelled)
    finally:
        await reader.close()
    bodies = [r.body for r in emulator.state.requests if r.api == "gemini_live_message"]
    session = bodies[max(i for i, body in enumerate(bodies) if "setup" in body) + 1 :]
    kinds = [next(iter(body.get("realtime_input") or body)) for body in session]
    assert kinds == ["client_content", "activityStart", "client_content"]


async def test_client_audio_at_24_khz_reaches_gemini_at_16_khz(
    vendor: VendorProviders, emulator: RunningEmulator
) -> None:
    """The adapter resamples 24 kHz client audio to the 16 kHz Gemini listens at (two thirds of the bytes)."""
    pcm = tone_pcm(1.0, rate=24_000)
    reader = Reader(await _realtime(vendor).open(MODEL, RealtimeConfig(turn_detection="none")))
    try:
        for frame in frames(pcm, rate=24_000):
            await reader.session.send_audio(frame)
        await reader.session.commit()
        await reader.until(_done("completed"))
    finally:
        await reader.close()
    audio = [message["audio"] for message in _messages(emulator, "realtime_input") if "audio" in message]
    assert {blob["mime_type"] for blob in audio} == {"audio/pcm;rate=16000"}
    sent = sum(int(blob["data"].split()[0].strip("<")) * 3 // 4 for blob in audio)
    assert abs(sent - len(pcm) * 2 // 3) < 16_000 * 2 // 10  # within the resampler's delay (well under 100 ms)


async def test_a_tool_result_in_text_is_sent_as_its_output(vendor: VendorProviders, emulator: RunningEmulator) -> None:
    """A tool result that is not a JSON object goes to Gemini as ``{"output": <text>}`` under the call's id and
    name; the model then speaks."""
    emulator.state.script(MODEL.id, SCENARIOS["tool"])
    tool = RealtimeTool("get_weather", "The weather", {"type": "object"})
    reader = Reader(await _realtime(vendor).open(MODEL, RealtimeConfig(tools=(tool,))))
    try:
        await reader.session.send_text("Weather in Paris?")
        called = await reader.until(lambda event: isinstance(event, RealtimeToolCall))
        call = reader.events[called]
        assert isinstance(call, RealtimeToolCall)
        await reader.session.send_tool_result(call.call_id, "sunny, 21 C")
        await reader.until(_done("completed"), after=called + 2)
    finally:
        await reader.close()
    [response] = _messages(emulator, "tool_response")
    assert response == {
        "functionResponses": [{"id": call.call_id, "name": "get_weather", "response": {"output": "sunny, 21 C"}}]
    }


async def test_a_quota_that_closes_the_session_is_a_rate_limit(
    vendor: VendorProviders, emulator: RunningEmulator
) -> None:
    """Gemini closing the session with 1011 over an exhausted quota is a RateLimitError, not an outage."""
    emulator.state.script(MODEL.id, SCENARIOS["fault-429"])
    with pytest.raises(RateLimitError) as limited:
        await _realtime(vendor).open(MODEL, RealtimeConfig())
    assert limited.value.context["close_code"] == 1011
