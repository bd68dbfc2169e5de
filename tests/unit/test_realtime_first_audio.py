"""RealtimeService's ``realtime_first_audio_seconds``: each turn is timed from the end of the user's turn to its
answer's first audio, and with server VAD the end of the user's turn is the vendor's ``RealtimeSpeechStopped``; an
end of speech heard while an answer's audio still comes starts no clock (that audio answers something else)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from domain.catalog import ModelSpec
from domain.realtime import (
    RealtimeAudio,
    RealtimeConfig,
    RealtimeEvent,
    RealtimeSpeechStarted,
    RealtimeSpeechStopped,
    RealtimeTurnDone,
)
from services.realtime import RealtimeDone
from tests.support.realtime import Driver, RealtimeHarness, realtime_spec

LABELS = (("model", "alpha/voice"), ("provider", "alpha"))
VOICE = b"\x00\x01" * 240


class Clock:
    """Time as the scripted vendor says it is."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ScriptedSession:
    """A vendor session that says ``script`` (each event at its time on ``clock``), then ends."""

    def __init__(self, clock: Clock, script: list[tuple[float, RealtimeEvent]]) -> None:
        self._clock = clock
        self._script = script

    async def send_audio(self, chunk: bytes) -> None:
        return None

    async def commit(self) -> None:
        return None

    async def send_text(self, text: str) -> None:
        return None

    async def send_tool_result(self, call_id: str, output: str) -> None:
        return None

    async def cancel(self) -> None:
        return None

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        for at, event in self._script:
            self._clock.now = 100.0 + at
            yield event
            await asyncio.sleep(0)

    async def aclose(self) -> None:
        return None


class ScriptedProvider:
    name = "alpha"

    def __init__(self, clock: Clock, script: list[tuple[float, RealtimeEvent]]) -> None:
        self._clock = clock
        self._script = script

    async def open(self, model: ModelSpec, config: RealtimeConfig) -> ScriptedSession:
        return ScriptedSession(self._clock, self._script)


async def first_audio_waits(script: list[tuple[float, RealtimeEvent]]) -> list[float]:
    """The ``realtime_first_audio_seconds`` a server-VAD session saying ``script`` records."""
    clock = Clock()
    harness = RealtimeHarness([realtime_spec()], {"alpha": ScriptedProvider(clock, script)}, clock=clock)
    driver = Driver(await harness.start())
    assert isinstance(await driver.finish(), RealtimeDone)
    return harness.metrics.observations[("realtime_first_audio_seconds", LABELS)]


async def test_a_server_vad_turn_is_timed_from_the_end_of_speech() -> None:
    """Speech started, speech stopped at 2.0 s, the answer's first audio at 2.25 s: one wait of 0.25 s (its later
    audio adds none)."""
    waits = await first_audio_waits(
        [
            (1.0, RealtimeSpeechStarted()),
            (2.0, RealtimeSpeechStopped()),
            (2.25, RealtimeAudio(VOICE, "resp_1")),
            (2.5, RealtimeAudio(VOICE, "resp_1")),
            (3.0, RealtimeTurnDone("resp_1", "completed")),
        ]
    )
    assert waits == [pytest.approx(0.25)]


async def test_a_late_end_of_speech_during_an_answer_starts_no_clock() -> None:
    """An end of speech heard after the answer's audio began is not timed against that audio; speech over an answer
    (it is interrupted) is timed from its own end to the next answer's first audio."""
    waits = await first_audio_waits(
        [
            (1.0, RealtimeSpeechStarted()),
            (2.0, RealtimeSpeechStopped()),
            (2.5, RealtimeAudio(VOICE, "resp_1")),
            (2.6, RealtimeSpeechStopped()),  # late: the answer is playing
            (2.7, RealtimeAudio(VOICE, "resp_1")),
            (3.0, RealtimeSpeechStarted()),  # the user talks over it
            (3.5, RealtimeTurnDone("resp_1", "interrupted")),
            (4.0, RealtimeSpeechStopped()),
            (4.3, RealtimeAudio(VOICE, "resp_2")),
            (5.0, RealtimeTurnDone("resp_2", "completed")),
        ]
    )
    assert waits == [pytest.approx(0.5), pytest.approx(0.3)]


async def test_no_end_of_speech_no_sample() -> None:
    """A vendor that never says the speech stopped (and no commit): its server-VAD answers are not timed at all,
    rather than timed from something that is not the end of the user's turn."""
    waits = await first_audio_waits(
        [
            (1.0, RealtimeSpeechStarted()),
            (2.5, RealtimeAudio(VOICE, "resp_1")),
            (3.0, RealtimeTurnDone("resp_1", "completed")),
        ]
    )
    assert waits == []
