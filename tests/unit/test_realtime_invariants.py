"""Realtime sessions' invariant, checked by hypothesis over interleavings of the client's actions and the vendor's
faults: whatever the client does (speech, silence, commits, texts, cancels, tool results, end, leaving) and whenever
the vendor fails, the run's updates end with exactly one terminal update, last; ``RealtimeStarted`` comes first when
a session opened; the vendor session is closed; and exactly one usage record is written per opened session."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.fake.realtime import FakeRealtimeProvider
from domain.errors import ServiceError
from domain.realtime import RealtimeTool
from services.realtime import RealtimeStarted
from tests.support.live_audio import silence, tone_pcm
from tests.support.realtime import Driver, RealtimeHarness, realtime_spec, terminal_of

SPEECH = tone_pcm(0.2, rate=16_000)
QUIET = silence(0.5, rate=16_000)
ACTIONS = st.sampled_from(["speech", "silence", "commit", "text", "cancel", "tool_result", "pause", "end", "abort"])
FAULTS = st.sampled_from(
    [
        {},
        {},
        {"fake_error": "overloaded", "fake_fail_after": "2"},
        {"fake_drop_after": "1"},
        {"fake_error": "auth"},
        {"fake_error": "rate_limited", "fake_fail_times": "1", "fake_retry_after": "0", "fake_key": "k"},
    ]
)


async def _act(driver: Driver, action: str, calls: list[str]) -> None:
    run = driver.run
    try:
        match action:
            case "speech":
                await run.feed(SPEECH)
            case "silence":
                await run.feed(QUIET)
            case "commit":
                await run.commit()
            case "text":
                await run.send_text("what is the weather?")
            case "cancel":
                await run.cancel()
            case "tool_result":
                await run.tool_result(calls[-1] if calls else "call_unknown", '{"ok": true}')
            case "pause":
                await asyncio.sleep(0.01)
            case "end":
                await run.end()
            case "abort":
                run.abort()
    except ServiceError:
        run.abort()


async def _play(actions: list[str], faults: dict[str, str], detection: str, tools: bool, finish: str) -> None:
    fake = FakeRealtimeProvider(name="alpha", chunk_pause_s=0.002)
    harness = RealtimeHarness([realtime_spec()], {"alpha": fake}, idle_timeout_s=2.0, outbound_queue_events=64)
    config: dict[str, Any] = {"input_sample_rate": 16_000, "turn_detection": detection, "metadata": dict(faults)}
    if tools:
        config["tools"] = (RealtimeTool("get_weather"),)
        config["metadata"]["fake_tool"] = "get_weather"
    driver = Driver(await harness.start(**config))
    calls: list[str] = []
    for action in actions:
        calls.extend(u.call_id for u in driver.updates if hasattr(u, "call_id"))
        await _act(driver, action, calls)
    await _act(driver, finish, calls)
    await driver.finish(timeout=10.0)
    terminal_of(driver.updates)
    opened = any(isinstance(u, RealtimeStarted) for u in driver.updates)
    if opened:
        assert isinstance(driver.updates[0], RealtimeStarted)
        assert all(session._closed for session in fake.sessions)
        assert len([r for r in harness.usage.records if r.outcome != "rate_limited"]) == 1
    else:
        assert len(driver.updates) == 1


@settings(max_examples=60, deadline=None)
@given(
    actions=st.lists(ACTIONS, max_size=10),
    faults=FAULTS,
    detection=st.sampled_from(["server_vad", "none"]),
    tools=st.booleans(),
    finish=st.sampled_from(["end", "abort"]),
)
def test_any_interleaving_ends_with_exactly_one_terminal(
    actions: list[str], faults: dict[str, str], detection: str, tools: bool, finish: str
) -> None:
    """Exactly one terminal update, last, for every interleaving of client actions and vendor faults."""
    asyncio.run(_play(actions, faults, detection, tools, finish))
