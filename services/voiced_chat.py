"""Use case: voiced chat. One chat generation is read at once by its client and by a text-to-speech pipeline that
voices the text as it arrives, and the stream ends under one completion token.

Roles (the seed's ownership rule). The chat producer (the LLM side) and the voice (the TTS side) publish through the
stream's publisher and can never complete it. The dispatcher, the producer function handed to ``streams.start`` (the
manager runs it and ends the stream with what it returns or raises), returns only once the text is finished *and*
the last segment is voiced, so ``done`` cannot precede the last ``audio`` event.

How the voice reads the text. The chat producer's publisher is tapped: each ``text`` event, once the log took it, is
put in the voice's inbox, in seq order. That is the voice's cursor over the stream's own text events, without a log
reader: a ``subscribe`` reader would count as a client (so the grace period after the last client left could never
begin), and would read back from Redis what this process has just written. The put never waits (the inbox is
unbounded; it holds text, bounded by the answer), so text is never delayed by speech.

The voice. A segmenter (``services/speech_segments.py``) cuts the text at sentence ends, or earlier on length or
waiting time. Each segment is one provider call through the attempt runner (``SpeechService.run``: retries and
fallbacks before its first byte, a usage record per attempt with the chat's stream id), at most ``parallelism`` at
once. The deliverer publishes the segments' audio in segment order: the segment being delivered chunk by chunk as it
arrives, later ones (already synthesizing) kept in memory until their turn. Each ``audio`` event is ``{segment,
text, format, sample_rate?, final_chunk}`` with at most ``max_chunk_bytes`` of the segment's audio as its
attachment; a segment's last event says ``final_chunk: true`` (an empty attachment when the vendor's last chunk had
already gone out). Each segment is a whole clip in the asked format.

Endings. A speech failure publishes one non-terminal ``speech_error`` ``{segment, code, message, retryable}`` when
its turn comes, stops the other calls, and the stream still ends ``done`` with the text (``speech.status``
``failed``). An LLM failure stops the voice and the manager writes one ``error``; a cancel (owner, grace, shutdown)
cancels the dispatcher, which stops the voice, and the manager writes ``cancelled``. Every task the voice starts is
cancelled and awaited before the dispatcher returns or raises (a cancelled call is billed as the runner bills any).

Metrics (``ports/metrics.py``), counted once the voice has stopped, however the stream ended:
``voiced_chat_streams_total[status]`` (``ok``, ``failed``: a ``speech_error``, ``stopped``: the text failed or the
stream was cancelled first) under the requested speech model; ``voiced_chat_segments_total[outcome]`` per segment
sent to the vendor (``done``: voiced to the end, the error code of its ``speech_error``, ``cancelled``: stopped
before its turn ended) and ``voiced_chat_characters_total`` of the voiced ones, under the model that served each;
``voiced_chat_first_audio_seconds``, the first text published to the first audio byte published (segmentation wait
plus the vendor's time to first byte: what a listener waits for beyond the text).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from contextlib import aclosing
from typing import Any, Final

import attrs
from attrs import frozen

from domain.catalog import ModelSpec
from domain.errors import CapabilityError, NotFoundError, ServiceError, ValidationError
from domain.speech import SpeechOptions, output_rate
from domain.streaming import DEFAULT_MAX_ATTACHMENT_BYTES
from domain.types import JsonValue, StreamId
from ports.metrics import Metrics, NullMetrics
from services.attempts import Bill, Caller, Finished
from services.quotas import Admission
from services.speech import SpeechPlan, SpeechService
from services.speech_segments import LeadingTagSkipper, Segmenter, SegmentRules
from services.streaming.publisher import Producer, StreamPublisher

__all__ = ["VoiceConfig", "VoicePipeline", "Voicing"]

_log = logging.getLogger("switchyard.voiced_chat")
_PROBE: Final = "Hello."  # what the up-front check speaks: the request's own rules need some text
_CHARACTERS_PER_TOKEN: Final = 4  # the speech held for a quota is guessed from the answer's token bound


@frozen
class VoiceConfig:
    """Plain values from ``settings.audio`` (``voiced_*``) and ``streaming.max_attachment_bytes``."""

    rules: SegmentRules = attrs.field(factory=SegmentRules)
    parallelism: int = 2
    """Segments synthesized at once (later ones wait their turn before calling the vendor)."""
    max_chunk_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES

    def __attrs_post_init__(self) -> None:
        if self.parallelism < 1 or self.max_chunk_bytes < 1:
            raise ValueError("parallelism and max_chunk_bytes must be at least 1")


class VoicePipeline:
    """Checks a chat's ``speech`` up front, admits it, and makes the dispatcher that voices the chat's stream."""

    def __init__(
        self, speech: SpeechService, config: VoiceConfig | None = None, metrics: Metrics | None = None
    ) -> None:
        self.speech = speech
        self.config = config or VoiceConfig()
        self.metrics: Metrics = metrics or NullMetrics()

    def plan(self, options: SpeechOptions) -> SpeechPlan:
        """The speech models to try for ``options``: a 422 naming ``speech.<field>``, 404 an unknown ``speech.model``,
        422 one without ``tts`` (before anything starts)."""
        try:
            return self.speech.plan(options.request(_PROBE))
        except ValidationError as exc:
            context = {k: v for k, v in exc.context.items() if k != "field"}
            raise ValidationError(f"speech.{exc.field}", exc.reason, context=context) from exc
        except (NotFoundError, CapabilityError) as exc:
            exc.context.setdefault("field", "speech.model")
            raise

    async def admit(self, plan: SpeechPlan, caller: Caller, *, max_tokens: int | None = None) -> Voicing:
        """``plan`` as the caller's key and quotas allow it (403/429 before anything starts), holding about as many
        characters as ``max_tokens`` of answer make; the ``Voicing`` owns that admission until it ends."""
        characters = _CHARACTERS_PER_TOKEN * (max_tokens or 0)
        plan, admission = await self.speech.admit(plan, caller, characters=characters)
        limits = [spec.max_input_characters for spec in plan.candidates.models if spec.max_input_characters]
        rules = attrs.evolve(self.config.rules, max_chars=min([self.config.rules.max_chars, *limits]))
        return Voicing(self, plan, admission, caller, rules)


class Voicing:
    """One admitted voiced chat: makes its dispatcher, and settles its speech admission when it ends."""

    def __init__(
        self, pipeline: VoicePipeline, plan: SpeechPlan, admission: Admission, caller: Caller, rules: SegmentRules
    ) -> None:
        self.pipeline = pipeline
        self.plan = plan
        self.caller = caller
        self.rules = rules
        self._admission = admission

    async def release(self) -> None:
        """Settle the speech admission (once; the dispatcher does it when it ends, or the caller if it never ran)."""
        await self._admission.release()

    def dispatcher(self, text: Producer) -> Producer:
        """The producer to hand ``streams.start``: runs ``text`` (the chat producer) and the voice, and returns the
        ``done`` payload (the text's, plus ``speech``) once both are finished."""

        async def dispatch(publisher: StreamPublisher) -> Mapping[str, JsonValue] | None:
            loop = asyncio.get_running_loop()
            voice = _Voice(self, publisher, loop.time())
            speaking = asyncio.create_task(voice.speak(), name=f"voice:{publisher.stream_id}")
            try:
                result = await text(_TextTap(publisher, voice.hear))
                voice.text_finished()
                speech = await speaking
            finally:
                try:
                    await _stop([speaking])  # an LLM failure or a cancel stops the voice; no task outlives this
                finally:
                    voice.count()  # here, not in ``speak``: a voice cancelled before it ever ran is counted too
                await self.release()
            return {**(result or {}), "speech": speech}

        return dispatch


class _TextTap:
    """The publisher the chat producer gets: the stream's own, handing each published text to the voice."""

    __slots__ = ("_hear", "_publisher")

    def __init__(self, publisher: StreamPublisher, hear: Callable[[str], None]) -> None:
        self._publisher = publisher
        self._hear = hear

    @property
    def stream_id(self) -> StreamId:
        return self._publisher.stream_id

    async def publish(self, type: str, payload: Mapping[str, JsonValue], data: bytes | None = None) -> int:
        seq = await self._publisher.publish(type, payload, data)
        text = payload.get("text")
        if type == "text" and isinstance(text, str):
            self._hear(text)  # after the log took it: the voice never speaks text a client cannot have
        return seq

    def expect_silence(self, seconds: float) -> None:
        self._publisher.expect_silence(seconds)

    def keep_unattended(self) -> None:
        self._publisher.keep_unattended()


@attrs.define
class _Ended:
    """A segment's synthesis is over: its bill, or the error that ended it."""

    bill: Bill | None = None
    error: dict[str, JsonValue] | None = None


@attrs.define
class _Segment:
    index: int
    text: str
    audio: asyncio.Queue[bytes | _Ended] = attrs.field(factory=asyncio.Queue)
    served_by: ModelSpec | None = None
    """The model whose audio this is (known with its first chunk)."""
    outcome: str | None = None
    """``done`` once voiced to the end, the error code once its ``speech_error`` is out (``None``: neither yet)."""


class _Voice:
    """The TTS side of one voiced stream: cutter (text to segments), synthesizers, and the in-order deliverer."""

    def __init__(self, voicing: Voicing, publisher: StreamPublisher, started: float) -> None:
        self._voicing = voicing
        self._publisher = publisher
        self._started = started
        self._max_chunk = voicing.pipeline.config.max_chunk_bytes
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._order: asyncio.Queue[_Segment | None] = asyncio.Queue()
        self._slots = asyncio.Semaphore(voicing.pipeline.config.parallelism)
        self._segmenter = Segmenter(voicing.rules)
        self._calls: set[asyncio.Task[None]] = set()
        self._stopped = False
        request = voicing.plan.request
        self._audio_fields: dict[str, JsonValue] = {"format": request.format}
        rate = output_rate(request)
        if rate is not None:
            self._audio_fields["sample_rate"] = rate
        self._voiced = 0
        self._characters = 0
        self._cost: float | None = 0.0
        self._first_audio_ms: float | None = None
        self._first_text_at: float | None = None
        self._error: dict[str, JsonValue] | None = None
        self._segments: list[_Segment] = []
        self._status: str | None = None  # ``speech.status`` once ``speak`` has returned
        self._metrics = voicing.pipeline.metrics

    def hear(self, text: str) -> None:
        """Take published text (never waits)."""
        if self._first_text_at is None and text:
            self._first_text_at = asyncio.get_running_loop().time()
        if not self._stopped:
            self._inbox.put_nowait(text)

    def text_finished(self) -> None:
        """The text is complete: what is left becomes the last segment."""
        self._inbox.put_nowait(None)

    async def speak(self) -> dict[str, JsonValue]:
        """Voice every segment in order (or up to the first failure); the ``speech`` summary for ``done``."""
        cutter = asyncio.create_task(self._cut(), name=f"voice-cutter:{self._publisher.stream_id}")
        try:
            await self._deliver()
        finally:
            self._stopped = True
            await _stop([cutter, *self._calls])
        self._status = "failed" if self._error is not None else "ok"
        return self._summary()

    def count(self) -> None:
        """Record the voice's metrics (once it has stopped: no segment changes after this)."""
        primary = self._voicing.plan.primary
        self._metrics.increment("voiced_chat_streams_total", 1.0, status=self._status or "stopped", **_labels(primary))
        for segment in self._segments:
            labels = _labels(segment.served_by or primary)
            self._metrics.increment("voiced_chat_segments_total", 1.0, outcome=segment.outcome or "cancelled", **labels)
            if segment.outcome == "done":
                self._metrics.increment("voiced_chat_characters_total", float(len(segment.text)), **labels)

    # --- text to segments, segments to provider calls ------------------------------------------------------------

    async def _cut(self) -> None:
        loop = asyncio.get_running_loop()
        index = 0
        while True:
            deadline = self._segmenter.deadline()
            finished = False
            try:
                async with asyncio.timeout_at(deadline):
                    piece = await self._inbox.get()
            except TimeoutError:
                segments = self._segmenter.tick(loop.time())
            else:
                finished = piece is None
                segments = self._segmenter.flush() if piece is None else self._segmenter.feed(piece, loop.time())
            for text in segments:
                await self._slots.acquire()  # bounded parallelism: the next call waits for a free slot
                segment = _Segment(index, text)
                self._segments.append(segment)
                call = asyncio.create_task(self._synthesize(segment), name=f"voice-segment:{index}")
                self._calls.add(call)
                call.add_done_callback(self._calls.discard)
                self._order.put_nowait(segment)
                index += 1
            if finished:
                self._order.put_nowait(None)
                return

    async def _synthesize(self, segment: _Segment) -> None:
        """One provider call for ``segment``; its chunks, then how it ended, go to the segment's queue."""
        voicing = self._voicing
        plan = SpeechPlan(attrs.evolve(voicing.plan.request, input=segment.text), voicing.plan.candidates)
        ended = _Ended()
        try:
            steps = voicing.pipeline.speech.run(plan, voicing.caller, stream_id=self._publisher.stream_id)
            async with aclosing(steps):
                async for step in steps:
                    if isinstance(step, Finished):
                        ended.bill = step.bill
                    else:
                        segment.served_by = step.attempt.spec
                        segment.audio.put_nowait(step.value)
        except ServiceError as exc:
            ended.error = {"code": exc.code, "message": exc.message, "retryable": bool(exc.retryable)}
        except Exception:  # noqa: BLE001 - a bug of ours fails the speech, never the text; it is logged
            _log.exception("voiced_segment_crashed", extra={"stream_id": self._publisher.stream_id})
            ended.error = {"code": "internal_error", "message": "speech failed unexpectedly", "retryable": False}
        finally:
            self._slots.release()
        segment.audio.put_nowait(ended)

    # --- delivery in segment order ---------------------------------------------------------------------------------

    async def _deliver(self) -> None:
        while (segment := await self._order.get()) is not None:
            if not await self._deliver_segment(segment):
                return  # speech failed: the rest is not spoken

    async def _deliver_segment(self, segment: _Segment) -> bool:
        """Publish ``segment``'s audio as it comes; whether it was voiced to the end."""
        # Later MP3 segments drop their ID3 tag, so the segments' audio joins into one clean stream.
        skipper = LeadingTagSkipper() if segment.index and self._audio_fields["format"] == "mp3" else None
        item = await segment.audio.get()
        final_sent = False
        while isinstance(item, bytes):
            # Look ahead only at what is already here: a chunk is never held back to learn whether it is the last.
            after = None if segment.audio.empty() else segment.audio.get_nowait()
            last = isinstance(after, _Ended) and after.error is None
            chunk = item if skipper is None else skipper.feed(item) + (skipper.flush() if last else b"")
            if chunk or last:
                await self._publish_audio(segment, chunk, final=last)
                final_sent = last
            item = after if after is not None else await segment.audio.get()
        if item.error is not None:
            self._error = {"segment": segment.index, **item.error}
            segment.outcome = str(item.error["code"])
            await self._publisher.publish("speech_error", self._error)
            return False
        if not final_sent:
            await self._publish_audio(segment, b"" if skipper is None else skipper.flush(), final=True)
        segment.outcome = "done"
        self._voiced += 1
        self._characters += len(segment.text)
        cost = item.bill.cost_usd if item.bill is not None else None
        self._cost = None if self._cost is None or cost is None else self._cost + cost
        return True

    async def _publish_audio(self, segment: _Segment, chunk: bytes, *, final: bool) -> None:
        pieces = [chunk[i : i + self._max_chunk] for i in range(0, len(chunk), self._max_chunk)] or [b""]
        for position, piece in enumerate(pieces):
            payload: dict[str, JsonValue] = {
                "segment": segment.index,
                "text": segment.text,
                **self._audio_fields,
                "final_chunk": final and position == len(pieces) - 1,
            }
            await self._publisher.publish("audio", payload, piece)
            if piece and self._first_audio_ms is None:
                now = asyncio.get_running_loop().time()
                self._first_audio_ms = round((now - self._started) * 1000, 3)
                if self._first_text_at is not None:  # always set: audio is made of heard text
                    labels = _labels(segment.served_by or self._voicing.plan.primary)
                    self._metrics.observe("voiced_chat_first_audio_seconds", now - self._first_text_at, **labels)

    def _summary(self) -> dict[str, JsonValue]:
        request = self._voicing.plan.request
        summary: dict[str, JsonValue] = {
            "model": self._voicing.plan.primary.qualified_id,
            "voice": request.voice or _default_voice(self._voicing.plan.primary.default_params),
            **self._audio_fields,
            "status": "failed" if self._error is not None else "ok",
            "segments": self._voiced,
            "characters": self._characters,
            "cost_usd": None if self._cost is None else round(self._cost, 9),
            "ttfa_ms": self._first_audio_ms,
        }
        if self._error is not None:
            summary["error"] = self._error
        return summary


def _labels(spec: ModelSpec) -> dict[str, str]:
    return {"provider": spec.provider, "model": spec.qualified_id}


def _default_voice(params: Mapping[str, Any]) -> str | None:
    voice = params.get("voice")
    return voice if isinstance(voice, str) else None


async def _stop(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until each has ended, even if this wait is itself cancelled (the cancellation is
    raised once they have): nothing is left running behind a voiced stream."""
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    interrupted = False
    while pending:
        try:
            _, pending = await asyncio.wait(pending)
        except asyncio.CancelledError:
            interrupted = True
            for task in pending:
                task.cancel()
    for task in tasks:  # retrieved, so none is reported as "never retrieved"
        if not task.cancelled():
            task.exception()
    if interrupted:
        raise asyncio.CancelledError
