"""LiveTranscriptionService: refusals before any vendor call, opening as the one retried and fallen-back attempt,
exactly one terminal update however a session ends (the client's end, a vendor failure mid-session, the client
leaving, a silent client, a session past its length, a protocol error), back-pressure on a client faster than the
vendor, the usage record in audio seconds with its cost, and the transcription metrics."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any

import pytest

from adapters.fake.live_transcription import FakeLiveTranscriptionProvider
from adapters.memory.quotas import InMemoryQuotaStore
from domain.catalog import ModelSpec
from domain.errors import CapabilityError, NotFoundError, ProviderError, ValidationError
from domain.live_transcription import LiveConfig, LiveTranscript
from domain.quotas import Limits, QuotaExceededError
from domain.types import CustomerId
from ports.live_transcription import LIVE_STT_PORT, LiveTranscriptionProvider
from ports.providers import VendorProviders
from ports.transcription import STT_PORT
from services.attempts import AttemptRunner, Caller, RetryPolicy
from services.live_transcription import (
    LiveCancelled,
    LiveDone,
    LiveFailed,
    LiveRun,
    LiveStarted,
    LiveTranscriptionService,
    LiveUpdate,
)
from services.quotas import MeteredLedger, QuotaGate, QuotaPolicy
from services.registry import ProviderRegistry
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.usage import InMemoryUsageLedger
from tests.support.live_audio import frames, tone_pcm

CALLER = Caller(CustomerId("alice"), "req-live")
TERMINALS = (LiveDone, LiveFailed, LiveCancelled)


def spec(model_id: str, provider: str = "alpha", **kwargs: Any) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider=provider,
        capabilities=frozenset({"stt"}),
        audio_price_per_minute=kwargs.pop("audio_price_per_minute", 0.006),
        **kwargs,
    )


class Harness:
    """A service over a real runner and registry, with fakes for the vendor, the ledger and the metrics."""

    def __init__(
        self,
        catalog: list[ModelSpec],
        live: Mapping[str, LiveTranscriptionProvider],
        *,
        files_only: tuple[str, ...] = (),
        **service: Any,
    ) -> None:
        vendors = {name: VendorProviders(name, {LIVE_STT_PORT: provider}) for name, provider in live.items()}
        for name in files_only:
            vendors[name] = VendorProviders(name, {STT_PORT: object()})
        self.usage = InMemoryUsageLedger()
        self.metrics = RecordingMetrics()
        gate = service.get("quotas")
        ledger = MeteredLedger(self.usage, gate) if isinstance(gate, QuotaGate) else self.usage

        async def no_sleep(_seconds: float) -> None:
            return None

        policy = RetryPolicy(max_retries=2, base_delay_s=0.0, idle_timeout_s=5.0)
        runner = AttemptRunner(ProviderRegistry(catalog, vendors), ledger, self.metrics, policy, sleep=no_sleep)
        self.service = LiveTranscriptionService(runner, self.metrics, **service)

    async def start(self, model: str = "alpha/live", **config: Any) -> LiveRun:
        return await self.service.start(model, LiveConfig(**config), CALLER)


async def collect(
    opened: LiveRun | Awaitable[LiveRun], pcm: bytes, *, end: bool = True, after: float = 0.0
) -> list[LiveUpdate]:
    """Feed ``pcm`` in 100 ms frames (then ``end``) while reading every update."""
    run = await opened if inspect.isawaitable(opened) else opened
    updates: list[LiveUpdate] = []

    async def read() -> None:
        async for update in run.updates():
            updates.append(update)

    reader = asyncio.create_task(read())
    for frame in frames(pcm):
        if not await run.feed(frame):
            break
    if after:
        await asyncio.sleep(after)
    if end:
        await run.end()
    await asyncio.wait_for(reader, 5.0)
    return updates


def terminal_of(updates: list[LiveUpdate]) -> LiveUpdate:
    """The one terminal update, which is the last one."""
    terminals = [u for u in updates if isinstance(u, TERMINALS)]
    assert len(terminals) == 1, updates
    assert updates[-1] is terminals[0]
    return terminals[0]


def transcripts(updates: list[LiveUpdate], kind: str) -> list[LiveTranscript]:
    return [u for u in updates if isinstance(u, LiveTranscript) and u.kind == kind]


@pytest.fixture
def fake() -> FakeLiveTranscriptionProvider:
    return FakeLiveTranscriptionProvider(name="alpha")


async def test_a_clip_ends_with_done_after_partials_and_finals(fake: FakeLiveTranscriptionProvider) -> None:
    """4 s of audio: started, a partial per word, a final per eight words, then done with totals and usage."""
    harness = Harness([spec("live")], {"alpha": fake})
    updates = await collect(harness.start(), tone_pcm(4.0))
    assert isinstance(updates[0], LiveStarted)
    assert updates[0].meta == {"model": "alpha/live", "provider": "alpha", "fallback_used": None, "retries": 0}
    done = terminal_of(updates)
    assert isinstance(done, LiveDone)
    assert len(transcripts(updates, "partial")) == 10  # a word per 400 ms
    finals = transcripts(updates, "final")
    assert [f.segment for f in finals] == [0, 1]
    assert done.summary.text == " ".join(f.text for f in finals)
    assert (done.summary.words, done.summary.segments) == (10, 2)
    assert done.summary.audio_seconds == pytest.approx(4.0)
    assert done.summary.cost_usd == pytest.approx(4.0 / 60 * 0.006)
    [record] = harness.usage.records
    assert (record.capability, record.outcome, record.model) == ("stt", "done", "alpha/live")
    assert record.audio_seconds == pytest.approx(4.0)
    assert record.cost_usd == pytest.approx(done.summary.cost_usd)


async def test_a_session_ended_without_audio_is_done_and_empty(fake: FakeLiveTranscriptionProvider) -> None:
    """``end`` before any audio: started, then done with nothing transcribed and nothing billed."""
    harness = Harness([spec("live")], {"alpha": fake})
    updates = await collect(harness.start(), b"")
    assert [type(u) for u in updates] == [LiveStarted, LiveDone]
    done = terminal_of(updates)
    assert isinstance(done, LiveDone)
    assert (done.summary.text, done.summary.audio_seconds, done.summary.words) == ("", 0.0, 0)
    [record] = harness.usage.records
    assert (record.outcome, record.audio_seconds) == ("done", 0.0)


async def test_metrics_of_a_finished_session(fake: FakeLiveTranscriptionProvider) -> None:
    """Audio seconds, words, processing time, real-time factor, first partial and end-to-final latencies."""
    harness = Harness([spec("live")], {"alpha": fake})
    await collect(harness.start(), tone_pcm(2.0))
    labels = (("model", "alpha/live"), ("provider", "alpha"))
    metrics = harness.metrics
    assert metrics.counters[("transcription_audio_seconds_total", labels)] == pytest.approx(2.0)
    assert metrics.counters[("transcription_words_total", labels)] == 5
    for name in (
        "transcription_processing_seconds",
        "transcription_realtime_factor",
        "transcription_live_first_partial_seconds",
        "transcription_live_final_seconds",
    ):
        assert len(metrics.observations[(name, labels)]) == 1, name
    processing = metrics.observations[("transcription_processing_seconds", labels)][0]
    factor = metrics.observations[("transcription_realtime_factor", labels)][0]
    assert factor == pytest.approx(processing / 2.0)


async def test_a_vendor_failure_mid_session_is_the_one_terminal_and_is_not_retried(
    fake: FakeLiveTranscriptionProvider,
) -> None:
    """After the session opened, a vendor error ends it: the partials that went out, then one error."""
    harness = Harness([spec("live")], {"alpha": fake})
    metadata = {"fake_error": "overloaded", "fake_fail_after": "2"}
    updates = await collect(harness.start(metadata=metadata), tone_pcm(2.0))
    failed = terminal_of(updates)
    assert isinstance(failed, LiveFailed)
    assert isinstance(failed.error, ProviderError)
    assert len(transcripts(updates, "partial")) == 2
    assert len(fake.sessions) == 1  # opened once: a retry after transcripts went out would repeat them
    assert [r.outcome for r in harness.usage.records] == ["provider_error"]


async def test_opening_is_retried_then_served(fake: FakeLiveTranscriptionProvider) -> None:
    """A 429 at open is retried; the session that opens serves, and says it took a retry."""
    harness = Harness([spec("live")], {"alpha": fake})
    metadata = {"fake_error": "rate_limited", "fake_fail_times": "1", "fake_retry_after": "0"}
    updates = await collect(harness.start(metadata=metadata), tone_pcm(1.0))
    assert isinstance(updates[0], LiveStarted)
    assert updates[0].meta["retries"] == 1
    assert isinstance(terminal_of(updates), LiveDone)
    assert [r.outcome for r in harness.usage.records] == ["rate_limited", "done"]


async def test_a_fallback_with_a_live_api_serves_when_the_primary_cannot_open() -> None:
    """The primary's vendor keeps failing at open: its catalog fallback opens instead; a file-only one is skipped."""
    broken = FakeLiveTranscriptionProvider(name="alpha")
    beta = FakeLiveTranscriptionProvider(name="beta")
    catalog = [
        spec("live", default_params={"fake_error": "overloaded"}, fallbacks=("gamma/files", "beta/live")),
        spec("live", provider="beta"),
        spec("files", provider="gamma"),
    ]
    harness = Harness(catalog, {"alpha": broken, "beta": beta}, files_only=("gamma",))
    updates = await collect(harness.start(), tone_pcm(1.0))
    assert isinstance(updates[0], LiveStarted)
    assert updates[0].meta["model"] == "beta/live"
    assert updates[0].meta["fallback_used"] == "beta/live"
    assert isinstance(terminal_of(updates), LiveDone)


async def test_every_model_failing_to_open_is_one_error() -> None:
    """No model opens: one error update (the last model's), nothing else."""
    fake = FakeLiveTranscriptionProvider(name="alpha")
    harness = Harness([spec("live", default_params={"fake_error": "auth"})], {"alpha": fake})
    updates = await collect(harness.start(), b"")
    assert len(updates) == 1
    failed = terminal_of(updates)
    assert isinstance(failed, LiveFailed)
    assert "credentials" in str(failed.error)


async def test_the_client_leaving_ends_the_session_as_cancelled(fake: FakeLiveTranscriptionProvider) -> None:
    """``abort()`` mid-session: one cancelled update; the audio forwarded so far is billed."""
    harness = Harness([spec("live")], {"alpha": fake})
    run = await harness.start()
    updates: list[LiveUpdate] = []

    async def read() -> None:
        async for update in run.updates():
            updates.append(update)
            if isinstance(update, LiveTranscript):
                run.abort()

    reader = asyncio.create_task(read())
    for frame in frames(tone_pcm(1.0)):
        await run.feed(frame)
    await asyncio.wait_for(reader, 5.0)
    assert isinstance(terminal_of(updates), LiveCancelled)
    [record] = harness.usage.records
    assert record.outcome == "cancelled"
    assert record.audio_seconds > 0
    assert not await run.feed(b"\x00\x00")  # the session takes no more audio


async def test_the_client_leaving_while_the_vendor_connects_is_cancelled_at_once() -> None:
    """An abort during a slow open ends the session without waiting for the vendor."""
    slow = FakeLiveTranscriptionProvider(name="alpha")
    harness = Harness([spec("live", default_params={"fake_delay_ms": "30000"})], {"alpha": slow})
    run = await harness.start()
    updates: list[LiveUpdate] = []

    async def read() -> None:
        async for update in run.updates():
            updates.append(update)

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.05)
    run.abort()
    await asyncio.wait_for(reader, 2.0)
    assert [type(u) for u in updates] == [LiveCancelled]


async def test_a_protocol_error_from_the_client_is_the_terminal_error(fake: FakeLiveTranscriptionProvider) -> None:
    """``abort(error)`` ends the session with that error."""
    harness = Harness([spec("live")], {"alpha": fake})
    run = await harness.start()
    error = ValidationError("type", "bad frame")
    updates: list[LiveUpdate] = []

    async def read() -> None:
        async for update in run.updates():
            updates.append(update)
            if isinstance(update, LiveStarted):
                run.abort(error)

    await asyncio.wait_for(read(), 5.0)
    failed = terminal_of(updates)
    assert isinstance(failed, LiveFailed)
    assert failed.error is error


async def test_a_silent_client_is_closed_after_the_idle_timeout(fake: FakeLiveTranscriptionProvider) -> None:
    """No audio and no end for ``idle_timeout_s``: one error naming ``audio``."""
    harness = Harness([spec("live")], {"alpha": fake}, idle_timeout_s=0.1)
    updates = await asyncio.wait_for(collect(harness.start(), tone_pcm(0.5), end=False), 5.0)
    failed = terminal_of(updates)
    assert isinstance(failed, LiveFailed)
    assert isinstance(failed.error, ValidationError)
    assert failed.error.field == "audio"
    assert "no audio for 0.1 s" in failed.error.message
    [record] = harness.usage.records
    assert record.audio_seconds == pytest.approx(0.5)


async def test_a_session_past_its_length_is_cut(fake: FakeLiveTranscriptionProvider) -> None:
    """Audio beyond ``max_seconds`` is not forwarded: one error, and only the allowed audio is billed."""
    harness = Harness([spec("live")], {"alpha": fake}, max_seconds=1.0)
    updates = await collect(harness.start(), tone_pcm(3.0))
    failed = terminal_of(updates)
    assert isinstance(failed, LiveFailed)
    assert "at most 1 s" in str(failed.error)
    [record] = harness.usage.records
    assert record.audio_seconds <= 1.0


class GatedSession:
    """A vendor session that takes audio only when the test opens its gate (a slow vendor)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.received = 0
        self._done = asyncio.Event()

    async def send_audio(self, chunk: bytes) -> None:
        await self.gate.wait()
        self.received += len(chunk)

    async def end(self) -> None:
        self._done.set()

    async def events(self) -> AsyncIterator[LiveTranscript]:
        await self._done.wait()
        yield LiveTranscript("final", "slow words", 0)

    async def aclose(self) -> None:
        self._done.set()


class GatedProvider:
    def __init__(self) -> None:
        self.session = GatedSession()

    @property
    def name(self) -> str:
        return "alpha"

    async def open(self, model: ModelSpec, config: LiveConfig) -> GatedSession:
        return self.session


async def test_a_client_faster_than_the_vendor_waits_instead_of_filling_memory() -> None:
    """While the vendor takes nothing, ``feed`` stops returning once ``queue_seconds`` of audio wait."""
    provider = GatedProvider()
    harness = Harness([spec("live")], {"alpha": provider}, queue_seconds=0.5)
    run = await harness.start()
    updates: list[LiveUpdate] = []

    async def read() -> None:
        async for update in run.updates():
            updates.append(update)

    reader = asyncio.create_task(read())
    accepted = 0

    async def feed_all() -> None:
        nonlocal accepted
        for frame in frames(tone_pcm(3.0)):
            await run.feed(frame)
            accepted += len(frame)
        await run.end()

    feeder = asyncio.create_task(feed_all())
    await asyncio.sleep(0.1)
    # 0.5 s queued (16 000 bytes), plus the one frame the vendor holds in its (blocked) send
    assert 16_000 <= accepted <= 16_000 + 3_200
    assert not feeder.done()
    provider.session.gate.set()
    await asyncio.wait_for(feeder, 5.0)
    await asyncio.wait_for(reader, 5.0)
    assert provider.session.received == len(tone_pcm(3.0))
    assert isinstance(terminal_of(updates), LiveDone)


async def test_frames_must_hold_whole_samples(fake: FakeLiveTranscriptionProvider) -> None:
    """An odd-length binary frame is a ValidationError naming ``audio``."""
    harness = Harness([spec("live")], {"alpha": fake})
    with pytest.raises(ValidationError) as caught:
        await (await harness.start()).feed(b"\x00\x00\x00")
    assert caught.value.field == "audio"


@pytest.mark.parametrize(
    ("model", "config", "error", "field"),
    [
        ("alpha/live", {"encoding": "opus"}, ValidationError, "encoding"),
        ("alpha/live", {"sample_rate": 11_025}, ValidationError, "sample_rate"),
        ("alpha/live", {"language": "English"}, ValidationError, "language"),
        ("", {}, ValidationError, "model"),
        ("alpha/nope", {}, NotFoundError, None),
        ("gamma/files", {}, CapabilityError, None),
    ],
)
async def test_refusals_before_any_vendor_call(
    fake: FakeLiveTranscriptionProvider, model: str, config: dict[str, Any], error: type[Exception], field: str | None
) -> None:
    """Bad framing, an unknown model, or a model whose vendor has no live API: refused at ``start``."""
    harness = Harness([spec("live"), spec("files", provider="gamma")], {"alpha": fake}, files_only=("gamma",))
    with pytest.raises(error) as caught:
        await harness.start(model, **config)
    if field is not None:
        assert isinstance(caught.value, ValidationError)
        assert caught.value.field == field
    assert fake.sessions == []


async def test_a_session_holds_a_slot_and_a_whole_sessions_price_until_it_ends(
    fake: FakeLiveTranscriptionProvider,
) -> None:
    """Sessions of at most 60 s at $0.006/min hold $0.006 each: under one slot in flight a second session is a 429
    before any vendor call; under a $0.01 budget a second concurrent one would pass it and is refused; once the first
    ends its hold is back and what it cost (2 s of audio) is counted."""
    gate = QuotaGate(InMemoryQuotaStore(), None, QuotaPolicy(Limits(concurrent_streams=1, daily_budget_usd=0.01)))
    harness = Harness([spec("live")], {"alpha": fake}, max_seconds=60.0, quotas=gate)
    run = await harness.start()
    during = await gate.usage("alice")
    assert (during.in_flight, during.held_usd) == (1, 0.006)
    with pytest.raises(QuotaExceededError) as caught:
        await harness.start()
    assert caught.value.context["limit"] == "concurrent_streams"
    assert len(fake.sessions) == 0
    assert isinstance(terminal_of(await collect(run, tone_pcm(2.0))), LiveDone)
    after = await gate.usage("alice")
    assert (after.in_flight, after.held_usd) == (0, 0.0)
    assert after.spent_today_usd == pytest.approx(0.0002)
    gate_two = QuotaGate(InMemoryQuotaStore(), None, QuotaPolicy(Limits(daily_budget_usd=0.01)))
    harness_two = Harness([spec("live")], {"alpha": fake}, max_seconds=60.0, quotas=gate_two)
    held = await harness_two.start()
    with pytest.raises(QuotaExceededError) as budget:
        await harness_two.start()
    assert budget.value.code == "daily_budget_exceeded"
    held.abort()
    assert isinstance(terminal_of(await collect(held, b"", end=False)), LiveCancelled)
    assert (await gate_two.usage("alice")).in_flight == 0
    await gate.aclose()
    await gate_two.aclose()
