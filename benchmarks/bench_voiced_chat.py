"""Benchmark: what voicing a chat costs the stream, in-process (the chat service, the streaming manager and the voice
as the container wires them, over the in-memory log), with a paced fake LLM and a fake TTS vendor that answers after
a fixed delay, as a network call would.

- first text token → first audio byte: how long after a client got the text that completes the first segment it
  gets that segment's first audio, minus the TTS call itself (from the call to its first chunk, as the fake saw
  it). That is the pipeline's own overhead: tapping the text, cutting the segment, the attempt runner, publishing
  the audio. Target ≤ 5 ms at the median.
- text inter-token gap with speech on vs off: the mean gap between a client's ``text`` events for a paced answer
  (tokens 5 ms apart, a sentence every 8 tokens), voiced and not. Target ratio ≤ 1.05: speech never delays text.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import AsyncIterator

from adapters.memory.stream_log import InMemoryStreamLog
from benchmarks.harness import Result
from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Finish, Message, ProviderEvent, TextDelta, Usage, UsageReport
from domain.completion import Completion
from domain.speech import AudioChunk, SpeechOptions, SpeechRequest, Voice
from domain.types import CustomerId
from ports.metrics import NullMetrics
from ports.speech import TTS_PORT
from ports.text import TEXT_PORT
from services.attempts import AttemptRunner, RetryPolicy
from services.chat import ChatCaller, ChatService
from services.registry import ProviderRegistry
from services.speech import SpeechService
from services.streaming.manager import StreamingManager
from services.voiced_chat import VoicePipeline
from tests.fakes.providers import vendors_with
from tests.fakes.usage import InMemoryUsageLedger

SUITE = "voiced_chat"
OWNER = CustomerId("bench")
CATALOG = [
    ModelSpec("paced", "bench", frozenset({"text"})),
    ModelSpec("voice", "benchtts", frozenset({"tts"}), voices=("alloy",)),
]
TOKEN_GAP_S = 0.005
TTS_DELAY_S = 0.020
CHUNK = b"\xff\xf3" + bytes(400)


class _PacedText:
    """A text vendor: ``tokens`` words ``TOKEN_GAP_S`` apart, a sentence end every 8th."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens

    @property
    def name(self) -> str:
        return "bench"

    def stream(self, request: ChatRequest, model: ModelSpec) -> AsyncIterator[ProviderEvent]:
        return self._play()

    async def complete(self, request: ChatRequest, model: ModelSpec, *, timeout_s: float | None = None) -> Completion:
        return Completion.of([event async for event in self._play()])

    async def _play(self) -> AsyncIterator[ProviderEvent]:
        for index in range(self.tokens):
            if index:
                await asyncio.sleep(TOKEN_GAP_S)
            yield TextDelta(f"word{index}{'.' if index % 8 == 7 else ''} ")
        yield UsageReport(Usage(1, self.tokens))
        yield Finish("stop")


class _DelayedSpeech:
    """A TTS vendor that answers after ``TTS_DELAY_S`` (a network round trip), three chunks; it records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float]] = []  # (called, first chunk out), perf_counter seconds

    @property
    def name(self) -> str:
        return "benchtts"

    async def voices(self, model: ModelSpec) -> list[Voice]:
        return []

    def synthesize(self, request: SpeechRequest, model: ModelSpec) -> AsyncIterator[AudioChunk]:
        return self._play(time.perf_counter())

    async def _play(self, called: float) -> AsyncIterator[AudioChunk]:
        await asyncio.sleep(TTS_DELAY_S)
        self.calls.append((called, time.perf_counter()))
        for _ in range(3):
            yield CHUNK
            await asyncio.sleep(0.002)


def _service(manager: StreamingManager, tokens: int, speech: _DelayedSpeech) -> ChatService:
    vendors = vendors_with(TEXT_PORT, {"bench": _PacedText(tokens)}) | vendors_with(TTS_PORT, {"benchtts": speech})
    runner = AttemptRunner(ProviderRegistry(CATALOG, vendors), InMemoryUsageLedger(), NullMetrics(), RetryPolicy())
    return ChatService(runner, manager, voice=VoicePipeline(SpeechService(runner)))


async def _one(manager: StreamingManager, tokens: int, voiced: bool) -> tuple[list[float], float | None]:
    """A client's arrival times of the text events, and the pipeline overhead to the first audio (voiced)."""
    speech = _DelayedSpeech()
    service = _service(manager, tokens, speech)
    options = SpeechOptions("benchtts/voice", "alloy") if voiced else None
    request = ChatRequest("bench/paced", [Message("user", "go")], stream=True, speech=options)
    stream_id = await service.start_stream(request, ChatCaller(OWNER, "bench"))
    text_at: list[float] = []
    first_segment_done: float | None = None
    first_audio: float | None = None
    async for event in manager.subscribe(stream_id, owner=OWNER):
        now = time.perf_counter()
        if event.type == "text":
            text_at.append(now)
            # The 8th token ends the first sentence, with the space that proves it: the first segment is cut.
            if len(text_at) == 8:
                first_segment_done = now
        elif event.type == "audio" and event.data and first_audio is None:
            first_audio = now
    overhead = None
    if voiced and first_audio is not None and first_segment_done is not None and speech.calls:
        called, answered = speech.calls[0]
        overhead = (first_audio - first_segment_done - (answered - called)) * 1000
    return text_at, overhead


async def _measure(runs: int, tokens: int) -> dict[str, float]:
    manager = StreamingManager(InMemoryStreamLog())
    try:
        for voiced in (False, True):  # warm-up
            await _one(manager, tokens, voiced)
        gaps: dict[bool, list[float]] = {False: [], True: []}
        overheads: list[float] = []
        for _ in range(runs):
            for voiced in (False, True):
                text_at, overhead = await _one(manager, tokens, voiced)
                gaps[voiced].append(statistics.mean(b - a for a, b in itertools.pairwise(text_at)) * 1000)
                if overhead is not None:
                    overheads.append(overhead)
        return {
            "overhead": statistics.median(overheads),
            "gap_off": statistics.median(gaps[False]),
            "gap_on": statistics.median(gaps[True]),
        }
    finally:
        await manager.aclose()


def run(quick: bool = False) -> list[Result]:
    runs, tokens = (5, 24) if quick else (30, 40)
    figures = asyncio.run(_measure(runs, tokens))
    return [
        Result(
            SUITE,
            "first text token → first audio byte, beyond the TTS call (median)",
            figures["overhead"],
            "ms",
            note="target ≤ 5 ms: tap, segmenter, runner, publish",
        ),
        Result(
            SUITE,
            "text inter-token gap, speech on (median of means)",
            figures["gap_on"],
            "ms",
            baseline=figures["gap_off"],
            baseline_name="speech off",
            note=f"paced {TOKEN_GAP_S * 1000:g} ms; target ratio ≤ 1.05",
        ),
    ]
