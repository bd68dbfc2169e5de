"""Voiced chat through the StreamingManager: text and audio from one generation, done only after the last segment,
speech failures that spare the text, LLM failures and cancels that stop the voice, and nothing left running."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from adapters.memory.stream_log import InMemoryStreamLog
from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Message
from domain.errors import CapabilityError, NotFoundError, ProviderError, ValidationError
from domain.speech import SpeechOptions
from domain.streaming import StreamEvent
from domain.types import CustomerId, StreamId
from ports.metrics import Metrics, NullMetrics
from ports.speech import TTS_PORT, SpeechProvider
from ports.text import TEXT_PORT, TextProvider
from services.attempts import AttemptRunner, RetryPolicy
from services.chat import ChatCaller, ChatService
from services.registry import ProviderRegistry
from services.speech import SpeechService
from services.speech_segments import SegmentRules
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig
from services.voiced_chat import VoiceConfig, VoicePipeline
from tests.fakes.clock import no_sleep
from tests.fakes.providers import vendors_with
from tests.fakes.speech import ScriptedCall, ScriptedSpeechProvider
from tests.fakes.text import ScriptedTextProvider, answer
from tests.fakes.usage import InMemoryUsageLedger
from tests.fakes.voice import RemoteSpeechProvider, RemoteTextProvider

ALICE = CustomerId("alice")
CALLER = ChatCaller(ALICE, "req-1")
CATALOG = [
    ModelSpec("chat", "words", frozenset({"text"})),
    ModelSpec("voice", "tts", frozenset({"tts"}), voices=("amy", "bob"), character_price_per_m=20.0),
    ModelSpec("plain", "words", frozenset({"text"}), aliases=("no-tts",)),
]
SPEECH = SpeechOptions("tts/voice", voice="amy", format="opus")  # not mp3: no ID3 tag to drop from these bytes


class Harness:
    """A chat service with a voice over one runner, both vendors fakes; the usage ledger records every attempt."""

    def __init__(
        self,
        manager: StreamingManager,
        text: TextProvider,
        speech: SpeechProvider,
        *,
        max_chars: int = 40,
        max_wait_s: float = 3600.0,
        parallelism: int = 2,
        max_chunk_bytes: int = 1024,
        metrics: Metrics | None = None,
    ) -> None:
        self.manager = manager
        metrics = metrics or NullMetrics()
        self.usage = InMemoryUsageLedger()
        vendors = vendors_with(TEXT_PORT, {"words": text}) | vendors_with(TTS_PORT, {"tts": speech})
        runner = AttemptRunner(
            ProviderRegistry(CATALOG, vendors), self.usage, metrics, RetryPolicy(max_retries=0), sleep=no_sleep
        )
        config = VoiceConfig(SegmentRules(max_chars, max_wait_s), parallelism, max_chunk_bytes)
        self.chat = ChatService(runner, manager, voice=VoicePipeline(SpeechService(runner), config, metrics))

    async def start(self, speech: SpeechOptions = SPEECH, **fields: Any) -> StreamId:
        fields.setdefault("stream", True)
        request = ChatRequest("words/chat", [Message("user", "hi")], speech=speech, **fields)
        return await self.chat.start_stream(request, CALLER)

    async def events(self, stream_id: StreamId) -> list[StreamEvent]:
        return [event async for event in self.manager.subscribe(stream_id, owner=ALICE)]

    async def logged(self, stream_id: StreamId) -> list[StreamEvent]:
        """What the stream holds so far (read without becoming one of its clients)."""
        return [event async for event in _read_now(self.manager, stream_id)]


async def _read_now(manager: StreamingManager, stream_id: StreamId) -> Any:
    log = manager._log  # the test reads the log itself, so it counts as no client of the stream
    for event in (await log.read(stream_id, 0, 10_000)).events:
        yield event


def audio(events: Sequence[StreamEvent]) -> list[tuple[object, bytes, object]]:
    return [(e.payload["segment"], e.data or b"", e.payload["final_chunk"]) for e in events if e.type == "audio"]


def types(events: Sequence[StreamEvent]) -> list[str]:
    return [event.type for event in events]


async def settle(rounds: int = 50) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def no_task_left() -> None:
    """Every task of a voiced stream (the dispatcher, the voice, its calls) ends soon after the stream did."""
    mine = [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith(("voice", "stream-producer")) and task is not asyncio.current_task()
    ]
    if mine:
        await asyncio.wait(mine, timeout=2.0)
    assert [task.get_name() for task in mine if not task.done()] == []


async def test_done_follows_the_last_segment_and_carries_text_and_speech_usage(manager: StreamingManager) -> None:
    """Three sentences, three segments voiced in order, each ending with ``final_chunk``; ``done`` comes after the
    last audio and carries the text's usage and the speech's characters, cost and time to first audio; each segment's
    usage record names the stream."""
    text = ScriptedTextProvider(answer("Hello there. ", "How are ", "you? ", "Fine."), name="words")
    speech = ScriptedSpeechProvider(name="tts", script=[ScriptedCall(chunks=(b"ab", b"cd"))])
    harness = Harness(manager, text, speech)
    stream_id = await harness.start()
    events = await harness.events(stream_id)
    assert types(events)[-1] == "done"
    assert audio(events) == [
        (0, b"ab", False), (0, b"cd", True), (1, b"ab", False), (1, b"cd", True), (2, b"ab", False), (2, b"cd", True)
    ]  # fmt: skip
    spoken = [str(e.payload["text"]) for e in events if e.type == "audio" and e.payload["final_chunk"]]
    assert spoken == ["Hello there.", "How are you?", "Fine."]
    assert [r.input for r in speech.requests] == spoken
    assert {e.payload["format"] for e in events if e.type == "audio"} == {"opus"}
    done: Any = events[-1].payload
    assert done["usage"] == {"input_tokens": 3, "output_tokens": 4, "cached_tokens": 0, "reasoning_tokens": 0}
    characters = sum(map(len, spoken))
    assert done["speech"] == {
        "model": "tts/voice",
        "voice": "amy",
        "format": "opus",
        "status": "ok",
        "segments": 3,
        "characters": characters,
        "cost_usd": pytest.approx(characters * 20.0 / 1e6),
        "ttfa_ms": done["speech"]["ttfa_ms"],
    }
    assert isinstance(done["speech"]["ttfa_ms"], float)
    tts = [r for r in harness.usage.records if r.capability == "tts"]
    assert [(r.characters, r.stream_id) for r in tts] == [(len(s), stream_id) for s in spoken]
    await no_task_left()


async def test_text_is_never_delayed_by_speech_and_done_waits_for_it(manager: StreamingManager) -> None:
    """A speech vendor that has not answered holds nothing back: all the text and its usage are in the stream, but
    no ``done`` until the last segment is voiced."""
    speech = RemoteSpeechProvider(name="tts")
    harness = Harness(manager, ScriptedTextProvider(answer("One. ", "Two."), name="words"), speech)
    stream_id = await harness.start()
    await settle()
    held = await harness.logged(stream_id)
    assert types(held) == ["start", "text", "text", "usage"]
    assert [call.request.input for call in speech.calls] == ["One.", "Two."]
    for call in speech.calls:
        call.chunk(b"x")
    await settle()
    assert "done" not in types(await harness.logged(stream_id))
    speech.calls[0].end()
    await settle()
    assert "done" not in types(await harness.logged(stream_id))  # segment 1 is not voiced to the end yet
    speech.calls[1].end()
    events = await harness.events(stream_id)
    assert types(events)[-1] == "done"
    assert audio(events) == [(0, b"x", False), (0, b"", True), (1, b"x", False), (1, b"", True)]
    await no_task_left()


async def test_segments_finished_out_of_order_are_published_in_order(manager: StreamingManager) -> None:
    """The third call finishes first, then the second, then the first: the audio still goes out 0, 1, 2, each once,
    and a chunk whose end is already known carries ``final_chunk`` itself."""
    speech = RemoteSpeechProvider(name="tts")
    harness = Harness(manager, ScriptedTextProvider(answer("A. ", "B. ", "C."), name="words"), speech, parallelism=3)
    stream_id = await harness.start()
    await settle()
    assert len(speech.calls) == 3
    for index in (2, 1, 0):
        speech.calls[index].chunk(f"s{index}".encode())
        speech.calls[index].end()
        await settle()
    events = await harness.events(stream_id)
    assert audio(events) == [(0, b"s0", True), (1, b"s1", True), (2, b"s2", True)]
    assert types(events)[-1] == "done"


async def test_at_most_parallelism_calls_run_at_once(manager: StreamingManager) -> None:
    """With ``parallelism`` 2, the third segment's call starts only once one of the first two has ended."""
    speech = RemoteSpeechProvider(name="tts")
    text = ScriptedTextProvider(answer("A. ", "B. ", "C. ", "D."), name="words")
    harness = Harness(manager, text, speech, parallelism=2)
    stream_id = await harness.start()
    await settle()
    assert [call.request.input for call in speech.calls] == ["A.", "B."]
    speech.calls[1].chunk(b"b")
    speech.calls[1].end()
    await settle()
    assert [call.request.input for call in speech.calls] == ["A.", "B.", "C."]
    for call in speech.calls[:1] + speech.calls[2:]:
        call.chunk(b"z")
        call.end()
    await settle()
    speech.calls[3].chunk(b"d")
    speech.calls[3].end()
    events = await harness.events(stream_id)
    assert [segment for segment, _, final in audio(events) if final] == [0, 1, 2, 3]
    assert speech.most_at_once == 2


async def test_a_speech_failure_is_a_speech_error_and_the_stream_still_ends_done(manager: StreamingManager) -> None:
    """The second segment's vendor fails: one ``speech_error`` at its turn, no audio after it, the other calls
    stop, and ``done`` still carries the text, with speech marked failed."""
    broke = ProviderError("tts", "tts broke")
    speech = ScriptedSpeechProvider(
        name="tts", script=[ScriptedCall(chunks=(b"a",)), ScriptedCall(chunks=(b"b",), error=broke), ScriptedCall()]
    )
    text = ScriptedTextProvider(answer("One. ", "Two. ", "Three. ", "Four."), name="words")
    harness = Harness(manager, text, speech, parallelism=1)
    events = await harness.events(await harness.start())
    assert types(events).count("speech_error") == 1
    failed_at = types(events).index("speech_error")
    assert events[failed_at].payload == {
        "segment": 1, "code": "provider_error", "message": "tts broke", "retryable": False
    }  # fmt: skip
    assert "audio" not in types(events)[failed_at:]
    assert audio(events) == [(0, b"a", True), (1, b"b", False)]
    assert [e.payload["text"] for e in events if e.type == "text"] == ["One. ", "Two. ", "Three. ", "Four."]
    done = events[-1]
    assert done.type == "done"
    assert done.payload["finish_reason"] == "stop"
    speech_done: Any = done.payload["speech"]
    assert (speech_done["status"], speech_done["segments"], speech_done["error"]["segment"]) == ("failed", 1, 1)
    assert speech.calls <= 3  # the calls after the failure were stopped, never all made
    await no_task_left()


async def test_an_llm_failure_ends_with_one_error_and_stops_the_voice(manager: StreamingManager) -> None:
    """The text vendor fails mid-answer while a segment is being voiced: one ``error``, the speech call is closed,
    nothing is left running."""
    text, speech = RemoteTextProvider(name="words"), RemoteSpeechProvider(name="tts")
    harness = Harness(manager, text, speech)
    stream_id = await harness.start()
    text.say("Hello there. ")
    text.say("And")
    await settle()
    assert [call.request.input for call in speech.calls] == ["Hello there."]
    speech.calls[0].chunk(b"half")
    text.fail(ProviderError("words", "the model broke"))
    events = await harness.events(stream_id)
    assert types(events)[-1] == "error"
    assert events[-1].payload["code"] == "provider_error"
    assert types(events).count("error") == 1
    await no_task_left()
    assert speech.open_calls == []
    assert not text.open


@pytest.mark.parametrize("how", ["owner", "grace"])
async def test_a_cancel_stops_the_text_and_the_voice(how: str) -> None:
    """The owner's cancel, or the last client leaving (no grace period here), ends the stream ``cancelled`` and
    stops both vendors' calls."""
    manager = StreamingManager(InMemoryStreamLog(), config=StreamingConfig(resume_grace_s=0))
    try:
        text, speech = RemoteTextProvider(name="words"), RemoteSpeechProvider(name="tts")
        harness = Harness(manager, text, speech)
        stream_id = await harness.start()
        text.say("Hello there. ")
        text.say("More")
        await settle()
        speech.calls[0].chunk(b"a")
        await settle()
        if how == "owner":
            await manager.cancel(stream_id, owner=ALICE)
        else:
            async for event in manager.subscribe(stream_id, owner=ALICE):
                if event.type == "audio":
                    break  # the only client leaves: the grace period (0 s) is over at once
        await no_task_left()
        events = await harness.logged(stream_id)
        assert types(events)[-1] == "cancelled"
        assert events[-1].payload["reason"] == ("client" if how == "owner" else "grace")
        assert speech.open_calls == []
        assert not text.open
    finally:
        await manager.aclose()


async def test_audio_is_split_to_the_attachment_bound(manager: StreamingManager) -> None:
    """A vendor chunk longer than ``max_chunk_bytes`` goes out in pieces; only the last piece is final."""
    speech = ScriptedSpeechProvider(name="tts", script=[ScriptedCall(chunks=(b"0123456789",))])
    harness = Harness(manager, ScriptedTextProvider(answer("Hi."), name="words"), speech, max_chunk_bytes=4)
    events = await harness.events(await harness.start())
    assert audio(events) == [(0, b"0123", False), (0, b"4567", False), (0, b"89", True)]


async def test_later_mp3_segments_drop_their_id3_tag_so_the_audio_joins(manager: StreamingManager) -> None:
    """MP3: the first segment keeps its ID3 tag, later ones lose it (even split over chunks); raw PCM says its
    rate."""
    tag = b"ID3\x04\x00\x00\x00\x00\x00\x02TT"
    speech = ScriptedSpeechProvider(name="tts", script=[ScriptedCall(chunks=(tag[:4], tag[4:] + b"\xff\xf3mp3"))])
    harness = Harness(manager, ScriptedTextProvider(answer("One. ", "Two."), name="words"), speech)
    events = await harness.events(await harness.start(SpeechOptions("tts/voice", voice="amy")))
    by_segment: dict[object, bytes] = {}
    for segment, data, _ in audio(events):
        by_segment[segment] = by_segment.get(segment, b"") + data
    assert by_segment == {0: tag + b"\xff\xf3mp3", 1: b"\xff\xf3mp3"}
    pcm = await harness.events(await harness.start(SpeechOptions("tts/voice", voice="amy", format="pcm")))
    assert {e.payload["sample_rate"] for e in pcm if e.type == "audio"} == {24000}


async def test_a_long_sentence_starts_speaking_before_it_ends(manager: StreamingManager) -> None:
    """The model writes on without a sentence end: after ``max_wait_s`` the words so far are spoken."""
    text, speech = RemoteTextProvider(name="words"), RemoteSpeechProvider(name="tts")
    harness = Harness(manager, text, speech, max_wait_s=0.05)
    stream_id = await harness.start()
    text.say("Once upon a ti")
    await settle()
    assert speech.calls == []
    await asyncio.sleep(0.12)
    assert [call.request.input for call in speech.calls] == ["Once upon a"]
    await manager.cancel(stream_id, owner=ALICE)
    await no_task_left()


async def test_speech_is_checked_before_anything_starts(manager: StreamingManager) -> None:
    """``stream: false``, an unknown voice, a model without ``tts``, an unknown model: each refused up front, naming
    the field, and no stream is opened."""
    harness = Harness(manager, ScriptedTextProvider(name="words"), ScriptedSpeechProvider(name="tts"))
    with pytest.raises(ValidationError) as refused:
        await harness.chat.complete(ChatRequest("words/chat", [Message("user", "hi")], speech=SPEECH), CALLER)
    assert refused.value.field == "speech"
    with pytest.raises(ValidationError) as voice:
        await harness.start(SpeechOptions("tts/voice", voice="zed"))
    assert voice.value.field == "speech.voice"
    with pytest.raises(ValidationError) as speed:
        await harness.start(SpeechOptions("tts/voice", voice="amy", speed=9.0))
    assert speed.value.field == "speech.speed"
    with pytest.raises(CapabilityError) as capability:
        await harness.start(SpeechOptions("no-tts"))
    assert capability.value.context["field"] == "speech.model"
    with pytest.raises(NotFoundError):
        await harness.start(SpeechOptions("tts/nothing"))
    assert manager.active_streams == 0


async def test_without_a_voice_pipeline_speech_is_refused(manager: StreamingManager) -> None:
    """A chat service built without a voice says so, naming ``speech``."""
    harness = Harness(manager, ScriptedTextProvider(name="words"), ScriptedSpeechProvider(name="tts"))
    bare = ChatService(harness.chat.runner, manager)
    with pytest.raises(ValidationError) as refused:
        await bare.start_stream(ChatRequest("words/chat", [Message("user", "hi")], stream=True, speech=SPEECH), CALLER)
    assert refused.value.field == "speech"
