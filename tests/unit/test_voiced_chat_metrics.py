"""Voiced chat's metrics: streams by speech status, segments by outcome, characters voiced, and the time from the
first text to the first audio, counted however the stream ended (voiced, speech failed, text failed)."""

from __future__ import annotations

from typing import Any

from adapters.prometheus.metrics import PrometheusMetrics
from domain.errors import ProviderError
from services.streaming.manager import StreamingManager
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.speech import ScriptedCall, ScriptedSpeechProvider
from tests.fakes.text import ScriptedTextProvider, answer
from tests.fakes.voice import RemoteSpeechProvider, RemoteTextProvider
from tests.unit.test_voiced_chat import Harness, no_task_left, settle, types

TTS = {"provider": "tts", "model": "tts/voice"}


def counted(metrics: RecordingMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """A counter's values by label set."""
    return {labels: value for (n, labels), value in metrics.counters.items() if n == name}


def labels(**extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({**TTS, **extra}.items()))


async def test_a_voiced_stream_counts_its_segments_characters_and_first_audio(manager: StreamingManager) -> None:
    """Three segments voiced: one ``ok`` stream, three ``done`` segments, their characters, and one first-audio
    time, no longer than the stream's own ``ttfa_ms`` (which starts earlier: when the stream starts)."""
    metrics = RecordingMetrics()
    text = ScriptedTextProvider(answer("Hello there. ", "How are ", "you? ", "Fine."), name="words")
    speech = ScriptedSpeechProvider(name="tts", script=[ScriptedCall(chunks=(b"ab", b"cd"))])
    harness = Harness(manager, text, speech, metrics=metrics)
    events = await harness.events(await harness.start())
    done: Any = events[-1].payload
    assert done["speech"]["status"] == "ok"
    await no_task_left()
    assert counted(metrics, "voiced_chat_streams_total") == {labels(status="ok"): 1.0}
    assert counted(metrics, "voiced_chat_segments_total") == {labels(outcome="done"): 3.0}
    assert counted(metrics, "voiced_chat_characters_total") == {labels(): float(done["speech"]["characters"])}
    (first,) = metrics.observations[("voiced_chat_first_audio_seconds", labels())]
    assert 0.0 <= first <= done["speech"]["ttfa_ms"] / 1000 + 1e-6


async def test_a_speech_failure_counts_a_failed_stream_and_the_segment_by_its_error(
    manager: StreamingManager,
) -> None:
    """The second segment fails: the stream is ``failed``, one segment ``done``, one ``provider_error``, any other
    started one ``cancelled``; only the voiced segment's characters count."""
    metrics = RecordingMetrics()
    broke = ProviderError("tts", "tts broke")
    speech = ScriptedSpeechProvider(
        name="tts", script=[ScriptedCall(chunks=(b"a",)), ScriptedCall(chunks=(b"b",), error=broke), ScriptedCall()]
    )
    text = ScriptedTextProvider(answer("One. ", "Two. ", "Three. ", "Four."), name="words")
    harness = Harness(manager, text, speech, parallelism=1, metrics=metrics)
    events = await harness.events(await harness.start())
    assert "speech_error" in types(events)
    await no_task_left()
    assert counted(metrics, "voiced_chat_streams_total") == {labels(status="failed"): 1.0}
    segments = counted(metrics, "voiced_chat_segments_total")
    assert segments[labels(outcome="done")] == 1.0
    assert segments[labels(outcome="provider_error")] == 1.0
    assert set(segments) <= {labels(outcome="done"), labels(outcome="provider_error"), labels(outcome="cancelled")}
    assert counted(metrics, "voiced_chat_characters_total") == {labels(): float(len("One."))}


async def test_a_text_failure_counts_a_stopped_stream_and_a_cancelled_segment(manager: StreamingManager) -> None:
    """The text vendor fails while the first segment is being voiced: the stream is ``stopped``, its segment
    ``cancelled``, nothing voiced and no first audio counted for a listener who heard only half."""
    metrics = RecordingMetrics()
    text, speech = RemoteTextProvider(name="words"), RemoteSpeechProvider(name="tts")
    harness = Harness(manager, text, speech, metrics=metrics)
    stream_id = await harness.start()
    text.say("Hello there. ")
    text.say("And")
    await settle()
    assert len(speech.calls) == 1
    text.fail(ProviderError("words", "the model broke"))
    events = await harness.events(stream_id)
    assert types(events)[-1] == "error"
    await no_task_left()
    assert counted(metrics, "voiced_chat_streams_total") == {labels(status="stopped"): 1.0}
    assert counted(metrics, "voiced_chat_segments_total") == {labels(outcome="cancelled"): 1.0}
    assert counted(metrics, "voiced_chat_characters_total") == {}
    assert ("voiced_chat_first_audio_seconds", labels()) not in metrics.observations


async def test_a_text_failure_before_any_text_still_counts_the_stream(manager: StreamingManager) -> None:
    """The text vendor fails at once (the voice may never have run): the stream is still counted ``stopped``."""
    metrics = RecordingMetrics()
    text = ScriptedTextProvider([ProviderError("words", "down")], name="words")
    harness = Harness(manager, text, RemoteSpeechProvider(name="tts"), metrics=metrics)
    events = await harness.events(await harness.start())
    assert types(events)[-1] == "error"
    await no_task_left()
    assert counted(metrics, "voiced_chat_streams_total") == {labels(status="stopped"): 1.0}
    assert counted(metrics, "voiced_chat_segments_total") == {}


async def test_the_names_and_labels_are_declared_for_prometheus(manager: StreamingManager) -> None:
    """Through the Prometheus adapter (which refuses an undeclared name or label set), the values reach the page."""
    metrics = PrometheusMetrics()
    speech = ScriptedSpeechProvider(name="tts", script=[ScriptedCall(chunks=(b"ab",))])
    harness = Harness(manager, ScriptedTextProvider(answer("Hi there."), name="words"), speech, metrics=metrics)
    events = await harness.events(await harness.start())
    assert types(events)[-1] == "done"
    await no_task_left()
    page = metrics.render().body.decode()
    assert 'voiced_chat_streams_total{model="tts/voice",provider="tts",status="ok"} 1.0' in page
    assert 'voiced_chat_segments_total{model="tts/voice",outcome="done",provider="tts"} 1.0' in page
    assert 'voiced_chat_characters_total{model="tts/voice",provider="tts"} 9.0' in page
    assert 'voiced_chat_first_audio_seconds_count{model="tts/voice",provider="tts"} 1.0' in page
