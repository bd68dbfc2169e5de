"""RealtimeService: refusals before any vendor call, opening as the one retried and fallen-back attempt, exactly one
terminal update however a session ends (the client's end, a vendor failure, the client leaving, an idle or too long
session, a client too slow to read, a stalled vendor, a protocol error), back-pressure on a client faster than the
vendor, one usage record per session with its tokens, audio seconds and cost, the quota admission, the realtime
metrics and the one log line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from adapters.fake.realtime import FakeRealtimeProvider
from adapters.memory.quotas import InMemoryQuotaStore
from domain.catalog import ModelSpec
from domain.errors import (
    CapabilityError,
    ClientTooSlowError,
    NotFoundError,
    ProviderError,
    ProviderTimeoutError,
    ServiceError,
    ValidationError,
)
from domain.metering import Units
from domain.quotas import Limits, QuotaExceededError
from domain.realtime import (
    RealtimeAudio,
    RealtimeConfig,
    RealtimeEvent,
    RealtimeTool,
    RealtimeToolCall,
    RealtimeTranscript,
    RealtimeTurnDone,
)
from services.attempts import RetryPolicy
from services.quotas import QuotaGate, QuotaPolicy
from services.realtime import RealtimeCancelled, RealtimeDone, RealtimeFailed, RealtimeStarted
from settings.catalog import load_catalog
from tests.support.live_audio import frames, silence, tone_pcm
from tests.support.realtime import Driver, RealtimeHarness, realtime_spec, terminal_of

WEATHER = RealtimeTool("get_weather", "Weather", {"type": "object", "properties": {}})


@pytest.fixture
def fake() -> FakeRealtimeProvider:
    return FakeRealtimeProvider(name="alpha", chunk_pause_s=0.005)


def harness_for(fake: FakeRealtimeProvider, **service: object) -> RealtimeHarness:
    return RealtimeHarness([realtime_spec()], {"alpha": fake}, **service)  # type: ignore[arg-type]


def failure(update: object) -> BaseException:
    assert isinstance(update, RealtimeFailed), update
    return update.error


# --- refusals -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (RealtimeConfig(input_sample_rate=44_100), "session.input_audio.sample_rate"),
        (RealtimeConfig(turn_detection="semantic"), "session.turn_detection"),  # type: ignore[arg-type]
        (RealtimeConfig(temperature=2.5), "session.temperature"),
        (RealtimeConfig(tools=(RealtimeTool("get weather"),)), "session.tools[0].name"),
        (RealtimeConfig(tools=(WEATHER, WEATHER)), "session.tools[1].name"),
        (RealtimeConfig(tools=(RealtimeTool("x", parameters={"type": "string"}),)), "session.tools[0].parameters"),
        (RealtimeConfig(voice="nobody"), "session.voice"),
    ],
)
async def test_a_bad_session_field_is_refused_before_any_vendor_call(
    fake: FakeRealtimeProvider, config: RealtimeConfig, field: str
) -> None:
    """Each bad ``session.update`` field is a ValidationError naming it; no vendor session is opened."""
    harness = RealtimeHarness([realtime_spec(voices=("alloy",))], {"alpha": fake})
    with pytest.raises(ValidationError) as refused:
        harness.service.plan("alpha/voice", config)
    assert refused.value.context["field"] == field
    assert fake.sessions == []


async def test_models_are_refused_by_name_and_capability(fake: FakeRealtimeProvider) -> None:
    """Unknown: 404; without ``realtime``: a 422; a vendor without a realtime API: CapabilityError naming the model."""
    text_only = ModelSpec(id="chat", provider="alpha", capabilities=frozenset({"text"}))
    harness = RealtimeHarness(
        [realtime_spec(), text_only, realtime_spec("voice", provider="beta")], {"alpha": fake, "beta": None}
    )
    with pytest.raises(NotFoundError):
        harness.service.plan("alpha/nope", RealtimeConfig())
    with pytest.raises(ServiceError) as lacking:
        harness.service.plan("alpha/chat", RealtimeConfig())
    assert lacking.value.code in ("capability_error", "validation_error")
    with pytest.raises(CapabilityError) as no_api:
        harness.service.plan("beta/voice", RealtimeConfig())
    assert "beta/voice" in no_api.value.message
    with pytest.raises(ValidationError):
        harness.service.plan(" ", RealtimeConfig())


async def test_fallbacks_without_a_realtime_api_or_the_voice_are_dropped(fake: FakeRealtimeProvider) -> None:
    """The plan keeps catalog fallbacks that can serve the session (a realtime API here, the voice asked for)."""
    catalog = [
        realtime_spec("voice", fallbacks=("beta/voice", "alpha/other", "alpha/third")),
        realtime_spec("voice", provider="beta"),
        realtime_spec("other", voices=("echo",)),
        realtime_spec("third", voices=("alloy",)),
    ]
    harness = RealtimeHarness(catalog, {"alpha": fake, "beta": None})
    planned = harness.service.plan("alpha/voice", RealtimeConfig(voice="alloy"))
    assert [spec.qualified_id for spec in planned.models] == ["alpha/voice", "alpha/third"]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (RealtimeConfig(temperature=0.7), "session.temperature"),
        (RealtimeConfig(instructions="Be brief."), "session.instructions"),
        (RealtimeConfig(tools=(WEATHER,)), "session.tools"),
    ],
)
async def test_a_field_the_model_cannot_honour_is_refused_not_dropped(
    fake: FakeRealtimeProvider, config: RealtimeConfig, field: str
) -> None:
    """A session field the model's catalog entry lists in ``unsupported_params``: a ValidationError naming
    ``session.<field>`` and the model, before any vendor call; the same session without it is planned."""
    unsupported = frozenset({"temperature", "instructions", "tools"})
    harness = RealtimeHarness([realtime_spec(unsupported_params=unsupported)], {"alpha": fake})
    with pytest.raises(ValidationError) as refused:
        harness.service.plan("alpha/voice", config)
    assert refused.value.context["field"] == field
    assert "alpha/voice" in refused.value.message
    assert fake.sessions == []
    assert harness.service.plan("alpha/voice", RealtimeConfig()).primary.qualified_id == "alpha/voice"


async def test_fallbacks_that_cannot_honour_a_field_are_dropped(fake: FakeRealtimeProvider) -> None:
    """A session with a temperature keeps only the fallbacks that take one; without it, every fallback stays."""
    catalog = [
        realtime_spec("voice", fallbacks=("alpha/cold", "alpha/warm")),
        realtime_spec("cold", unsupported_params=frozenset({"temperature"})),
        realtime_spec("warm"),
    ]
    harness = RealtimeHarness(catalog, {"alpha": fake})
    warm = harness.service.plan("alpha/voice", RealtimeConfig(temperature=0.5))
    assert [spec.qualified_id for spec in warm.models] == ["alpha/voice", "alpha/warm"]
    plain = harness.service.plan("alpha/voice", RealtimeConfig())
    assert [spec.qualified_id for spec in plain.models] == ["alpha/voice", "alpha/cold", "alpha/warm"]


@pytest.mark.parametrize("model", ["gpt-realtime", "gpt-realtime-mini"])
async def test_the_built_in_openai_realtime_models_refuse_a_temperature(model: str) -> None:
    """OpenAI's GA realtime sessions have no temperature: the shipped catalog says so, so a session asking for one
    is a 422 on ``session.temperature`` (Gemini Live takes one)."""
    catalog = load_catalog()
    vendors = {"openai": FakeRealtimeProvider(name="openai"), "gemini": FakeRealtimeProvider(name="gemini")}
    harness = RealtimeHarness(catalog, vendors)
    with pytest.raises(ValidationError) as refused:
        harness.service.plan(f"openai/{model}", RealtimeConfig(temperature=0.8))
    assert refused.value.context["field"] == "session.temperature"
    planned = harness.service.plan("gemini-live", RealtimeConfig(temperature=0.8))
    assert planned.primary.provider == "gemini"


# --- sessions that end well -------------------------------------------------------------------------------------------


async def test_a_conversation_ends_with_done_and_one_usage_record(fake: FakeRealtimeProvider) -> None:
    """Started, a spoken turn and a text turn answered, then ``end``: done with the totals; one usage record bills
    the tokens the turns reported and the audio both ways, at the entry's prices."""
    harness = harness_for(fake)
    driver = Driver(await harness.start(turn_detection="none", input_sample_rate=16_000))
    for frame in frames(tone_pcm(1.0)):
        await driver.run.feed(frame)
    await driver.run.commit()
    await driver.wait_for(RealtimeTurnDone)
    await driver.run.send_text("hello there")
    await driver.wait_for(RealtimeTurnDone, 2)
    await driver.run.end()
    done = await driver.finish()
    assert isinstance(done, RealtimeDone)
    started = driver.updates[0]
    assert isinstance(started, RealtimeStarted)
    assert started.meta == {
        "model": "alpha/voice",
        "provider": "alpha",
        "fallback_used": None,
        "retries": 0,
        "output_sample_rate": 24_000,
    }
    turns = [u for u in driver.updates if isinstance(u, RealtimeTurnDone)]
    assert [t.status for t in turns] == ["completed", "completed"]
    tokens = sum((t.usage for t in turns if t.usage is not None), Units())
    out_bytes = sum(len(u.data) for u in driver.updates if isinstance(u, RealtimeAudio))
    summary = done.summary
    assert summary.turns == 2
    assert summary.input_audio_seconds == pytest.approx(1.0)
    assert summary.output_audio_seconds == pytest.approx(out_bytes / 48_000)
    assert summary.units.input_tokens == tokens.input_tokens > 0
    assert summary.units.output_tokens == tokens.output_tokens > 0
    assert summary.units.audio_seconds == pytest.approx(1.0 + out_bytes / 48_000, abs=1e-3)
    expected_cost = summary.units.audio_seconds / 60 * 0.06 + tokens.input_tokens * 1e-5 + tokens.output_tokens * 2e-5
    assert summary.cost_usd == pytest.approx(expected_cost)
    [record] = harness.usage.records
    assert (record.capability, record.outcome, record.model) == ("realtime", "done", "alpha/voice")
    assert (record.input_tokens, record.output_tokens) == (tokens.input_tokens, tokens.output_tokens)
    assert record.audio_seconds == pytest.approx(summary.units.audio_seconds)
    assert record.cost_usd == pytest.approx(expected_cost)


async def test_a_tool_call_goes_out_and_its_result_is_answered(fake: FakeRealtimeProvider) -> None:
    """The model's tool call reaches the client; the client's result reaches the vendor and is answered."""
    harness = harness_for(fake)
    driver = Driver(await harness.start(tools=(WEATHER,), metadata={"fake_tool": "get_weather"}))
    await driver.run.send_text("weather in Paris?")
    await driver.wait_for(RealtimeToolCall)
    [call] = [u for u in driver.updates if isinstance(u, RealtimeToolCall)]
    await driver.run.tool_result(call.call_id, '{"temperature_c": 21}')
    await driver.wait_for(RealtimeTurnDone, 2)
    await driver.run.end()
    assert isinstance(await driver.finish(), RealtimeDone)
    answer = [u for u in driver.updates if isinstance(u, RealtimeTranscript) and u.final][-1]
    assert answer.text == 'The get_weather tool says: {"temperature_c": 21}'
    assert fake.sessions[0].tool_results == [(call.call_id, '{"temperature_c": 21}')]


async def test_opening_is_retried_then_falls_back(fake: FakeRealtimeProvider) -> None:
    """A 429 at open is retried on the same model; a refused key falls back to the next model; meta says so."""
    harness = RealtimeHarness([realtime_spec(fallbacks=("alpha/backup",)), realtime_spec("backup")], {"alpha": fake})
    retried = Driver(
        await harness.start(metadata={"fake_error": "rate_limited", "fake_fail_times": "1", "fake_retry_after": "0"})
    )
    await retried.wait_for(RealtimeStarted)
    retried.run.abort()
    assert isinstance(await retried.finish(), RealtimeCancelled)
    assert retried.updates[0] == RealtimeStarted(
        {"model": "alpha/voice", "provider": "alpha", "fallback_used": None, "retries": 1, "output_sample_rate": 24_000}
    )
    fallen = Driver(await harness.start(metadata={"fake_error": "auth", "fake_key": "x", "fake_fail_times": "1"}))
    await fallen.wait_for(RealtimeStarted)
    fallen.run.abort()
    await fallen.finish()
    started = fallen.updates[0]
    assert isinstance(started, RealtimeStarted)
    assert started.meta["fallback_used"] == "alpha/backup"


# --- sessions that end badly ------------------------------------------------------------------------------------------


async def test_a_refused_open_is_the_one_terminal(fake: FakeRealtimeProvider) -> None:
    """Every model refuses: one ``RealtimeFailed`` with the vendor's error, nothing before it."""
    harness = harness_for(fake)
    driver = Driver(await harness.start(metadata={"fake_error": "auth"}))
    error = failure(await driver.finish())
    assert isinstance(error, ProviderError)
    assert len(driver.updates) == 1


async def test_a_vendor_failure_mid_session_fails_it_after_what_was_said(fake: FakeRealtimeProvider) -> None:
    """An error after the first audio: what came before went out, then one ``RealtimeFailed``; the usage record
    carries the error's code and the audio that went through."""
    harness = harness_for(fake)
    driver = Driver(await harness.start(metadata={"fake_error": "overloaded", "fake_fail_after": "2"}))
    await driver.run.send_text("hello")
    error = failure(await driver.finish())
    assert isinstance(error, ProviderError)
    assert sum(isinstance(u, RealtimeAudio) for u in driver.updates) == 2
    [record] = harness.usage.records
    assert record.outcome == "provider_error"
    assert record.audio_seconds == pytest.approx(0.2)


async def test_a_client_that_leaves_cancels_the_session(fake: FakeRealtimeProvider) -> None:
    """``abort()`` mid-answer: ``RealtimeCancelled``; the vendor session is closed; the usage record says cancelled."""
    harness = harness_for(fake)
    driver = Driver(await harness.start(metadata={"fake_audio_ms": "5000"}))
    await driver.run.send_text("tell me a story")
    await driver.wait_for(RealtimeAudio)
    driver.run.abort()
    assert isinstance(await driver.finish(), RealtimeCancelled)
    assert harness.usage.records[0].outcome == "cancelled"
    assert fake.sessions[0]._closed


async def test_a_protocol_error_fails_the_session_with_it(fake: FakeRealtimeProvider) -> None:
    """``abort(error)``: the session fails with that error."""
    harness = harness_for(fake)
    driver = Driver(await harness.start())
    await driver.wait_for(RealtimeStarted)
    driver.run.abort(ValidationError("type", "nonsense"))
    error = failure(await driver.finish())
    assert isinstance(error, ValidationError)
    assert error.context["field"] == "type"


async def test_a_client_leaving_while_the_session_opens_cancels_it(fake: FakeRealtimeProvider) -> None:
    """An abort while the vendor is still connecting: cancelled at once, no session left open."""
    harness = harness_for(fake)
    driver = Driver(await harness.start(metadata={"fake_delay_ms": "60000"}))
    await asyncio.sleep(0.01)
    driver.run.abort()
    assert isinstance(await driver.finish(), RealtimeCancelled)
    assert fake.sessions == []


class Backoff:
    """The runner's wait before a retry: it records the delay and waits until cancelled (a long ``Retry-After``)."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.waiting = asyncio.Event()
        self.cancelled = False

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.waiting.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def test_a_client_leaving_during_a_retry_backoff_cancels_it_at_once(fake: FakeRealtimeProvider) -> None:
    """A rate limit with ``Retry-After: 20`` at open: the client leaving while the runner waits to retry ends the
    session as cancelled now (the wait is cancelled, no second open), with the failed attempt accounted."""
    backoff = Backoff()
    harness = RealtimeHarness([realtime_spec()], {"alpha": fake}, sleep=backoff)
    metadata = {"fake_error": "rate_limited", "fake_fail_times": "1", "fake_retry_after": "20"}
    driver = Driver(await harness.start(metadata=metadata))
    await asyncio.wait_for(backoff.waiting.wait(), 5.0)
    driver.run.abort()
    assert isinstance(await driver.finish(timeout=5.0), RealtimeCancelled)
    assert backoff.delays == [20.0]
    assert backoff.cancelled
    assert fake.sessions == []
    assert [record.outcome for record in harness.usage.records] == ["rate_limited"]
    assert (
        harness.metrics.counters[
            ("realtime_sessions_total", (("model", "alpha/voice"), ("outcome", "cancelled"), ("provider", "alpha")))
        ]
        == 1
    )


async def test_a_protocol_error_during_a_retry_backoff_fails_the_session_with_it(
    fake: FakeRealtimeProvider,
) -> None:
    """``abort(error)`` while the runner waits to retry: the session fails with that error at once."""
    backoff = Backoff()
    harness = RealtimeHarness([realtime_spec()], {"alpha": fake}, sleep=backoff)
    metadata = {"fake_error": "rate_limited", "fake_fail_times": "1", "fake_retry_after": "20"}
    driver = Driver(await harness.start(metadata=metadata))
    await asyncio.wait_for(backoff.waiting.wait(), 5.0)
    driver.run.abort(ValidationError("type", "nonsense"))
    error = failure(await driver.finish(timeout=5.0))
    assert isinstance(error, ValidationError)
    assert backoff.cancelled


async def test_the_reader_cancelled_by_someone_else_stays_cancelled(fake: FakeRealtimeProvider) -> None:
    """A cancellation of the reading task that is not the client's abort (the server shutting down) is not
    swallowed as a terminal update: the task ends cancelled."""
    backoff = Backoff()
    harness = RealtimeHarness([realtime_spec()], {"alpha": fake}, sleep=backoff)
    metadata = {"fake_error": "rate_limited", "fake_fail_times": "1", "fake_retry_after": "20"}
    driver = Driver(await harness.start(metadata=metadata))
    await asyncio.wait_for(backoff.waiting.wait(), 5.0)
    driver.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await driver.task
    assert backoff.cancelled
    assert driver.updates == []


async def test_a_quiet_session_ends_after_the_idle_timeout(fake: FakeRealtimeProvider) -> None:
    """Nothing either way for ``idle_timeout_s``: a ValidationError on ``session``."""
    harness = harness_for(fake, idle_timeout_s=0.1)
    driver = Driver(await harness.start())
    error = failure(await driver.finish())
    assert isinstance(error, ValidationError)
    assert error.context["field"] == "session"
    assert "nothing was said" in error.message


async def test_a_session_is_cut_at_its_maximum_length(fake: FakeRealtimeProvider) -> None:
    """Audio still flowing at ``max_seconds``: the session fails on ``session`` (however busy it is)."""
    harness = harness_for(fake, max_seconds=0.3, idle_timeout_s=10.0)
    driver = Driver(await harness.start(input_sample_rate=16_000))

    async def talk() -> None:
        for frame in frames(silence(60.0)):
            if not await driver.run.feed(frame):
                return
            await asyncio.sleep(0.01)

    talker = asyncio.create_task(talk())
    error = failure(await driver.finish())
    talker.cancel()
    assert isinstance(error, ValidationError)
    assert "at most 0.3 s" in error.message


async def test_a_client_too_slow_to_read_is_cut_off(fake: FakeRealtimeProvider) -> None:
    """Updates not read while the model talks: past ``outbound_queue_events`` waiting, the session fails with
    ClientTooSlowError instead of buffering the answer."""
    harness = harness_for(fake, outbound_queue_events=8)
    run = await harness.start(metadata={"fake_audio_ms": "60000", "fake_chunk_pause_ms": "0"})
    updates = run.updates()
    started = await anext(updates)
    assert isinstance(started, RealtimeStarted)
    await run.send_text("talk to me")
    await asyncio.sleep(0.05)  # the reader stalls here, as a socket whose client does not read
    rest = [update async for update in updates]
    error = failure(terminal_of(rest))
    assert isinstance(error, ClientTooSlowError)
    assert len(rest) <= 8 + 1
    assert fake.sessions[0]._closed


async def test_a_client_faster_than_the_vendor_waits(fake: FakeRealtimeProvider) -> None:
    """While the vendor takes no audio, ``feed`` stops returning once ``inbound_queue_seconds`` of it wait."""
    harness = harness_for(StallingProvider(), inbound_queue_seconds=0.5)  # type: ignore[arg-type]
    driver = Driver(await harness.start(input_sample_rate=16_000))
    await driver.wait_for(RealtimeStarted)
    accepted = 0

    async def feed_all() -> None:
        nonlocal accepted
        for frame in frames(tone_pcm(3.0)):
            await driver.run.feed(frame)
            accepted += len(frame)

    feeder = asyncio.create_task(feed_all())
    for _ in range(50):
        await asyncio.sleep(0)
    assert not feeder.done()
    # The pump holds one chunk at the vendor; the queue holds 0.5 s more.
    assert accepted <= int(0.6 * 32_000)
    driver.run.abort()
    await driver.finish()
    feeder.cancel()
    await asyncio.gather(feeder, return_exceptions=True)


async def test_a_stalled_vendor_ends_the_session_with_a_timeout() -> None:
    """A vendor that neither takes audio nor says anything: the runner's silence bound fails the session."""
    harness = RealtimeHarness(
        [realtime_spec()],
        {"alpha": StallingProvider()},
        policy=RetryPolicy(max_retries=0, idle_timeout_s=0.1),
        idle_timeout_s=30.0,
    )
    driver = Driver(await harness.start())
    await driver.wait_for(RealtimeStarted)
    await driver.run.feed(b"\x01\x00" * 100)
    error = failure(await driver.finish())
    assert isinstance(error, ProviderTimeoutError)


async def test_audio_that_is_not_whole_samples_is_refused(fake: FakeRealtimeProvider) -> None:
    """An odd number of bytes is a ValidationError naming ``audio``; empty text and call ids name their field."""
    harness = harness_for(fake)
    run = await harness.start()
    with pytest.raises(ValidationError) as odd:
        await run.feed(b"\x00\x00\x00")
    assert odd.value.context["field"] == "audio"
    with pytest.raises(ValidationError) as empty:
        await run.send_text("  ")
    assert empty.value.context["field"] == "text"
    with pytest.raises(ValidationError) as no_call:
        await run.tool_result("", "x")
    assert no_call.value.context["field"] == "call_id"
    run.abort()
    assert isinstance(terminal_of([u async for u in run.updates()]), RealtimeCancelled)


# --- interruption, quotas, metrics, logs ----------------------------------------------------------------------------


async def test_speech_over_the_answer_interrupts_it(fake: FakeRealtimeProvider) -> None:
    """Server VAD: the user talking over an answer ends it ``interrupted``; the new turn is answered after a pause."""
    harness = harness_for(fake)
    driver = Driver(await harness.start(input_sample_rate=16_000, metadata={"fake_audio_ms": "5000"}))
    await driver.run.send_text("tell me a story")
    await driver.wait_for(RealtimeAudio)
    for frame in frames(tone_pcm(0.8) + silence(0.6)):
        await driver.run.feed(frame)
    await driver.wait_for(RealtimeTurnDone, 2)
    statuses = [u.status for u in driver.updates if isinstance(u, RealtimeTurnDone)]
    assert statuses[0] == "interrupted"
    driver.run.abort()
    await driver.finish()
    assert (
        harness.metrics.counters[
            ("realtime_turns_total", (("model", "alpha/voice"), ("provider", "alpha"), ("status", "interrupted")))
        ]
        == 1
    )


async def test_a_session_holds_a_slot_until_it_ends(fake: FakeRealtimeProvider) -> None:
    """Under one slot in flight a second session is a 429 before any vendor call; once the first ends it is back."""
    gate = QuotaGate(InMemoryQuotaStore(), None, QuotaPolicy(Limits(concurrent_streams=1)))
    harness = harness_for(fake, quotas=gate)
    first = Driver(await harness.start())
    with pytest.raises(QuotaExceededError):
        await harness.start()
    await first.wait_for(RealtimeStarted)
    await first.run.end()
    assert isinstance(await first.finish(), RealtimeDone)
    assert (await gate.usage("alice")).in_flight == 0
    second = await harness.start()
    second.abort()
    assert isinstance(terminal_of([u async for u in second.updates()]), RealtimeCancelled)
    await gate.aclose()


async def test_the_metrics_and_the_one_log_line(fake: FakeRealtimeProvider, caplog: pytest.LogCaptureFixture) -> None:
    """Sessions by outcome, audio seconds each way, turns, time to first audio per turn; one log line with the
    session's totals and no audio."""
    harness = harness_for(fake)
    caplog.set_level(logging.INFO, logger="switchyard.realtime")
    driver = Driver(await harness.start(turn_detection="none", input_sample_rate=16_000))
    for frame in frames(tone_pcm(0.5)):
        await driver.run.feed(frame)
    await driver.run.commit()
    await driver.wait_for(RealtimeTurnDone)
    await driver.run.send_text("again")
    await driver.wait_for(RealtimeTurnDone, 2)
    await driver.run.end()
    done = await driver.finish()
    assert isinstance(done, RealtimeDone)
    labels = (("model", "alpha/voice"), ("provider", "alpha"))
    metrics = harness.metrics
    assert metrics.counters[("realtime_sessions_total", (*labels[:1], ("outcome", "done"), *labels[1:]))] == 1
    assert metrics.counters[("realtime_audio_seconds_total", (("direction", "in"), *labels))] == pytest.approx(0.5)
    assert metrics.counters[("realtime_audio_seconds_total", (("direction", "out"), *labels))] == pytest.approx(
        done.summary.output_audio_seconds
    )
    assert metrics.total("realtime_turns_total") == 2
    waits = metrics.observations[("realtime_first_audio_seconds", labels)]
    assert len(waits) == 2
    assert all(wait >= 0 for wait in waits)
    lines = [r for r in caplog.records if r.getMessage() == "realtime_session_ended"]
    assert len(lines) == 1
    line = lines[0].__dict__
    assert (line["outcome"], line["turns"], line["model"]) == ("done", 2, "alpha/voice")
    assert line["input_audio_seconds"] == pytest.approx(0.5)
    assert "bytes" not in repr(line)


# --- a vendor that takes nothing and says nothing -------------------------------------------------------------------


class StallingSession:
    """A vendor session whose ``send_audio`` never returns and which says nothing."""

    def __init__(self) -> None:
        self._closed = asyncio.Event()

    async def send_audio(self, chunk: bytes) -> None:
        await asyncio.Event().wait()

    async def commit(self) -> None:
        await asyncio.Event().wait()

    async def send_text(self, text: str) -> None:
        await asyncio.Event().wait()

    async def send_tool_result(self, call_id: str, output: str) -> None:
        await asyncio.Event().wait()

    async def cancel(self) -> None:
        return None

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        await self._closed.wait()
        return
        yield

    async def aclose(self) -> None:
        self._closed.set()


class StallingProvider:
    name = "alpha"

    async def open(self, model: ModelSpec, config: RealtimeConfig) -> StallingSession:
        return StallingSession()
