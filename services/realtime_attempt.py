"""Use case helper: one attempt of a realtime voice session, as the attempt runner's body, and the bounded queue that
carries the client's side to it.

Opening the vendor session is the provider call: the body's first output is ``Opened``, which commits the run to that
attempt (retries and fallbacks happen only before it). Then three tasks serve the session: the *pump* moves the
client's audio and controls (commit, text, tool result, cancel, end) from the inbound queue to the vendor, in the
order the client sent them; the *reader* takes the vendor's events; the *watch* ends a session quiet both ways for
``idle_timeout_s`` or older than ``max_seconds``. The body yields the vendor's events in order, a ``Progress`` tick when
client input went out (so the runner's silence bound measures a vendor that neither takes input nor answers, not a
user thinking), and ``Stopped`` when the session ends from this side (idle, too long, a client too slow to read, an
abort), which jumps ahead of the events still waiting. It returns once the client's ``end`` reached the pump (or the
vendor closed the session).

Both directions are bounded: the inbound queue holds ``limit_bytes`` of audio and a few controls (a client sending
faster than the vendor listens waits in ``put``: back-pressure on its socket), and at most ``outbound_limit`` vendor
events wait for the client (past that the client is too slow: the session stops, never buffering without bound).

The attempt bills the tokens its turns reported and the audio seconds both ways, and times each turn's first audio:
from the end of the user's turn (the client's commit, text or tool result going out, or the vendor's
``RealtimeSpeechStopped`` with server VAD) to the answer's first audio. An end of speech heard while an answer's
audio is still coming (a late signal) starts no clock: that audio is not the answer to it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Final, Literal

from attrs import frozen

from domain.catalog import ModelSpec
from domain.live_transcription import pcm_seconds
from domain.metering import Units
from domain.pricing import cost_usd
from domain.realtime import (
    REALTIME_OUTPUT_RATE,
    RealtimeAudio,
    RealtimeConfig,
    RealtimeEvent,
    RealtimeSpeechStarted,
    RealtimeSpeechStopped,
    RealtimeTurnDone,
)
from ports.metrics import Metrics
from ports.realtime import RealtimeProvider, RealtimeSession
from services.attempts import Attempt, Bill
from services.live_attempt import Opened, Progress  # the same step markers as a live transcription attempt

__all__ = ["ClientInput", "Control", "Opened", "Progress", "RealtimeAttempt", "Step", "StopReason", "Stopped"]

_MAX_CONTROLS: Final = 32
StopReason = Literal["idle", "too_long", "too_slow", "aborted"]


@frozen
class Control:
    """A client control message, in order with its audio: ``text`` carries a message or a tool's output."""

    kind: Literal["commit", "text", "tool_result", "cancel", "end"]
    text: str = ""
    call_id: str = ""


ClientItem = bytes | Control


class ClientInput:
    """What the client sent, waiting for the vendor: ``put`` waits while ``limit_bytes`` of audio (or a few controls)
    are queued; after ``end`` or ``close`` it takes nothing more."""

    def __init__(self, limit_bytes: int) -> None:
        self._limit = limit_bytes
        self._items: deque[ClientItem] = deque()
        self._bytes = 0
        self._controls = 0
        self._closed = False
        self._changed = asyncio.Condition()

    async def put(self, item: ClientItem) -> bool:
        """Queue ``item`` once there is room (a chunk larger than the bound goes alone); ``False`` once closed."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._closed or self._has_room(item))
            if self._closed:
                return False
            self._items.append(item)
            if isinstance(item, bytes):
                self._bytes += len(item)
            else:
                self._controls += 1
                self._closed = item.kind == "end"
            self._changed.notify_all()
            return True

    def _has_room(self, item: ClientItem) -> bool:
        if isinstance(item, Control):
            return self._controls < _MAX_CONTROLS
        return not self._bytes or self._bytes + len(item) <= self._limit

    async def get(self) -> ClientItem:
        """The next item, waiting for one."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            item = self._items.popleft()
            if isinstance(item, bytes):
                self._bytes -= len(item)
            else:
                self._controls -= 1
            self._changed.notify_all()
            return item

    async def close(self) -> None:
        """Take nothing more: a waiting ``put`` returns ``False``."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()


@frozen
class Stopped:
    """The session ends from this side (see ``StopReason``)."""

    reason: StopReason


@frozen
class _Finished:
    """The client's ``end`` reached the vendor, or the vendor closed the session."""


@frozen
class _Failed:
    error: BaseException


Step = Opened | Progress | Stopped | RealtimeEvent
_Internal = Step | _Finished | _Failed


class RealtimeAttempt:
    """One attempt's body for the runner (see the module docstring); its totals are read by the service afterwards."""

    def __init__(
        self,
        provider: RealtimeProvider,
        spec: ModelSpec,
        config: RealtimeConfig,
        inbound: ClientInput,
        *,
        idle_timeout_s: float,
        max_seconds: float,
        outbound_limit: int,
        aborted: asyncio.Event,
        metrics: Metrics,
        clock: Callable[[], float],
    ) -> None:
        self._provider = provider
        self._spec = spec
        self._config = config
        self._inbound = inbound
        self._idle_s = idle_timeout_s
        self._max_s = max_seconds
        self._outbound_limit = max(1, outbound_limit)
        self._aborted = aborted
        self._metrics = metrics
        self._clock = clock
        self._labels = {"provider": spec.provider, "model": spec.qualified_id}
        self._steps: deque[_Internal] = deque()
        self._waiting_events = 0
        self._stop: Stopped | None = None
        self._wake = asyncio.Event()
        self._ticked = False
        self._last_activity = 0.0
        self._turn_ended_at: float | None = None
        self._answering = False  # an answer's audio is coming (since its first chunk, until its turn ends)
        self.opened_at: float | None = None
        self.sent_bytes = 0
        self.received_bytes = 0
        self.turns = 0
        self.usage = Units()

    @property
    def spec(self) -> ModelSpec:
        """The model this attempt calls."""
        return self._spec

    @property
    def input_seconds(self) -> float:
        """Seconds of the client's audio forwarded to the vendor."""
        return pcm_seconds(self.sent_bytes, self._config.input_sample_rate)

    @property
    def output_seconds(self) -> float:
        """Seconds of the model's audio received."""
        return pcm_seconds(self.received_bytes, REALTIME_OUTPUT_RATE)

    def units(self) -> Units:
        """What the session consumed: the turns' tokens and the audio both ways."""
        return self.usage + Units(audio_seconds=round(self.input_seconds + self.output_seconds, 3))

    async def outputs(self) -> AsyncIterator[Step]:
        session = await self._open()
        if session is None:
            yield Stopped("aborted")
            return
        self.opened_at = self._last_activity = self._clock()
        tasks = [
            asyncio.create_task(self._read(session), name="realtime-reader"),
            asyncio.create_task(self._pump(session), name="realtime-pump"),
            asyncio.create_task(self._watch(), name="realtime-watch"),
        ]
        try:
            yield Opened()
            while True:
                if self._stop is not None:
                    yield self._stop
                    return
                if not self._steps:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                step = self._steps.popleft()
                if isinstance(step, _Finished):
                    return
                if isinstance(step, _Failed):
                    raise step.error
                if isinstance(step, Progress):
                    self._ticked = False
                else:
                    self._waiting_events -= 1
                yield step
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await session.aclose()

    async def bill(self, attempt: Attempt, outcome: str) -> Bill:
        units = self.units()
        return Bill(units, cost_usd(units, self._spec))

    async def _open(self) -> RealtimeSession | None:
        """The vendor session; ``None`` when the client left while it was opening (nobody waits for it any more)."""
        opening = asyncio.ensure_future(self._provider.open(self._spec, self._config))
        aborted = asyncio.ensure_future(self._aborted.wait())
        try:
            await asyncio.wait({opening, aborted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            aborted.cancel()
            if not opening.done():
                opening.cancel()
        if opening.cancelled() or not opening.done():
            with contextlib.suppress(BaseException):
                await opening
            return None
        return opening.result()  # raises the vendor's refusal

    def _post(self, step: _Internal) -> None:
        self._steps.append(step)
        self._wake.set()

    def _halt(self, reason: StopReason) -> None:
        if self._stop is None:
            self._stop = Stopped(reason)
            self._wake.set()

    async def _read(self, session: RealtimeSession) -> None:
        try:
            async for event in session.events():
                self._heard(event)
                if self._waiting_events >= self._outbound_limit:
                    self._halt("too_slow")  # the client is not reading what the model says
                    return
                self._waiting_events += 1
                self._post(event)
            self._post(_Finished())
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the runner, which accounts for it and raises it
            self._post(_Failed(exc))

    def _heard(self, event: RealtimeEvent) -> None:
        now = self._clock()
        self._last_activity = now
        if isinstance(event, RealtimeAudio):
            self.received_bytes += len(event.data)
            self._answering = True
            if self._turn_ended_at is not None:
                self._metrics.observe("realtime_first_audio_seconds", now - self._turn_ended_at, **self._labels)
                self._turn_ended_at = None
        elif isinstance(event, RealtimeSpeechStarted):
            self._answering = False  # the user talks over the answer: the vendor stops it
        elif isinstance(event, RealtimeSpeechStopped):
            if not self._answering:
                self._turn_ended_at = now  # server VAD: the user's turn is over, the clock to its first audio starts
        elif isinstance(event, RealtimeTurnDone):
            self._answering = False
            self.turns += 1
            if event.usage is not None:
                self.usage += event.usage
            self._metrics.increment("realtime_turns_total", 1.0, status=event.status, **self._labels)

    async def _pump(self, session: RealtimeSession) -> None:
        try:
            while True:
                item = await self._inbound.get()
                now = self._last_activity = self._clock()
                if isinstance(item, bytes):
                    await session.send_audio(item)
                    self.sent_bytes += len(item)
                elif item.kind == "end":
                    self._post(_Finished())
                    return
                else:
                    await self._control(session, item)
                    if item.kind != "cancel":
                        self._turn_ended_at = now  # the user's turn is over: the clock to its first audio starts
                if not self._ticked:  # one tick at a time: the body coalesces them
                    self._ticked = True
                    self._post(Progress())
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the runner, which accounts for it and raises it
            self._post(_Failed(exc))

    @staticmethod
    async def _control(session: RealtimeSession, control: Control) -> None:
        match control.kind:
            case "commit":
                await session.commit()
            case "text":
                await session.send_text(control.text)
            case "tool_result":
                await session.send_tool_result(control.call_id, control.text)
            case "cancel":
                await session.cancel()

    async def _watch(self) -> None:
        """End the session when it idles, outlives its maximum, or the client side aborts it."""
        abort = asyncio.ensure_future(self._aborted.wait())
        try:
            while True:
                now = self._clock()
                assert self.opened_at is not None
                limits: list[tuple[float, StopReason]] = []
                if self._max_s > 0:
                    limits.append((self.opened_at + self._max_s, "too_long"))
                if self._idle_s > 0:
                    limits.append((self._last_activity + self._idle_s, "idle"))
                for deadline, reason in limits:
                    if now >= deadline:
                        self._halt(reason)
                        return
                wait = min((deadline - now for deadline, _ in limits), default=None)
                await asyncio.wait({abort}, timeout=wait)
                if abort.done():
                    self._halt("aborted")
                    return
        finally:
            abort.cancel()
