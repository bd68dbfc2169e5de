"""Use case helper: one attempt of a live transcription session, as the attempt runner's body, and the bounded buffer
that carries the client's audio to it.

Opening the vendor session is the provider call: the body's first output is ``Opened``, which commits the run to that
attempt (retries and fallbacks happen only before it). From then on two tasks serve the session: the *pump* moves the
client's audio from the buffer to the vendor, and the *reader* takes the vendor's transcripts. The body yields their
steps in order: each transcript, a ``Progress`` tick when audio went out (so the runner's silence bound measures a
vendor that neither takes audio nor answers, not a client pausing), and ``Stopped`` when the client side ends the
session early (it went silent, sent too much, left, or broke the protocol). It returns when the vendor's events end,
after the client's ``end``: every final is in.

The buffer is bounded in bytes (a couple of seconds of audio): a client sending faster than the vendor takes audio
waits in ``put``, which is back-pressure on its socket, never an unbounded queue. The attempt bills the seconds of
audio it forwarded to the vendor.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Final

from attrs import frozen

from domain.catalog import ModelSpec
from domain.live_transcription import LiveConfig, LiveTranscript, pcm_seconds
from domain.metering import Units
from domain.pricing import cost_usd
from ports.live_transcription import LiveSession, LiveTranscriptionProvider
from services.attempts import Attempt, Bill

__all__ = ["AudioBuffer", "LiveAttempt", "Opened", "Progress", "Step", "Stopped"]

_END: Final = None


class AudioBuffer:
    """Client audio waiting for the vendor, then the end marker; ``put`` waits while ``limit_bytes`` are queued."""

    def __init__(self, limit_bytes: int) -> None:
        self._limit = limit_bytes
        self._items: deque[bytes | None] = deque()
        self._bytes = 0
        self._closed = False
        self._changed = asyncio.Condition()

    async def put(self, chunk: bytes) -> bool:
        """Queue ``chunk`` once there is room (a chunk larger than the bound goes alone); ``False`` once closed."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: self._closed or not self._bytes or self._bytes + len(chunk) <= self._limit
            )
            if self._closed:
                return False
            self._items.append(chunk)
            self._bytes += len(chunk)
            self._changed.notify_all()
            return True

    async def finish(self) -> None:
        """No more audio: the end marker follows what is queued (it takes no room)."""
        async with self._changed:
            if not self._closed:
                self._items.append(_END)
                self._closed = True
                self._changed.notify_all()

    async def get(self) -> bytes | None:
        """The next chunk, or ``None`` for the end."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            item = self._items.popleft()
            if item is not None:
                self._bytes -= len(item)
            self._changed.notify_all()
            return item

    async def close(self) -> None:
        """Take nothing more: a waiting ``put`` returns ``False``."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()


@frozen
class Opened:
    """The vendor session is open: the run is committed to this attempt."""


@frozen
class Progress:
    """Client input (audio, or a realtime control) went out to the vendor since the last step."""


@frozen
class Stopped:
    """The client side ended the session early: ``reason`` is ``idle``, ``too_long`` or ``aborted``."""

    reason: str


@frozen
class _VendorDone:
    """The vendor's events ended: every final is in."""


@frozen
class _Failed:
    error: BaseException


Step = Opened | Progress | Stopped | LiveTranscript
_Internal = Step | _VendorDone | _Failed


class LiveAttempt:
    """One attempt's body for the runner (see the module docstring). Timings are read by the service afterwards."""

    def __init__(
        self,
        provider: LiveTranscriptionProvider,
        spec: ModelSpec,
        config: LiveConfig,
        audio: AudioBuffer,
        *,
        idle_timeout_s: float,
        max_bytes: int,
        aborted: asyncio.Event,
        clock: Callable[[], float],
    ) -> None:
        self._provider = provider
        self._spec = spec
        self._config = config
        self._audio = audio
        self._idle_s = idle_timeout_s
        self._max_bytes = max_bytes
        self._aborted = aborted
        self._clock = clock
        self._steps: asyncio.Queue[_Internal] = asyncio.Queue()
        self._ticked = False
        self.sent_bytes = 0
        self.first_audio_at: float | None = None
        self.ended_at: float | None = None
        self.done_at: float | None = None

    @property
    def spec(self) -> ModelSpec:
        """The model this attempt calls."""
        return self._spec

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio forwarded to the vendor."""
        return pcm_seconds(self.sent_bytes, self._config.sample_rate)

    async def outputs(self) -> AsyncIterator[Step]:
        session = await self._provider.open(self._spec, self._config)
        tasks = [
            asyncio.create_task(self._read(session), name="live-stt-reader"),
            asyncio.create_task(self._pump(session), name="live-stt-pump"),
            asyncio.create_task(self._watch_abort(), name="live-stt-abort"),
        ]
        try:
            yield Opened()
            while True:
                step = await self._steps.get()
                if isinstance(step, _VendorDone):
                    self.done_at = self._clock()
                    return
                if isinstance(step, _Failed):
                    raise step.error
                if isinstance(step, Progress):
                    self._ticked = False
                yield step
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await session.aclose()

    async def bill(self, attempt: Attempt, outcome: str) -> Bill:
        units = Units(audio_seconds=round(self.audio_seconds, 3))
        return Bill(units, cost_usd(units, self._spec))

    async def _read(self, session: LiveSession) -> None:
        try:
            async for transcript in session.events():
                self._steps.put_nowait(transcript)
            self._steps.put_nowait(_VendorDone())
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the runner, which accounts for it and raises it
            self._steps.put_nowait(_Failed(exc))

    async def _pump(self, session: LiveSession) -> None:
        try:
            while True:
                try:
                    async with asyncio.timeout(self._idle_s if self._idle_s > 0 else None):
                        chunk = await self._audio.get()
                except TimeoutError:
                    self._steps.put_nowait(Stopped("idle"))
                    return
                if chunk is None:
                    self.ended_at = self._clock()
                    await session.end()
                    return
                if self.sent_bytes + len(chunk) > self._max_bytes:
                    self._steps.put_nowait(Stopped("too_long"))
                    return
                if self.first_audio_at is None:
                    self.first_audio_at = self._clock()
                await session.send_audio(chunk)
                self.sent_bytes += len(chunk)
                if not self._ticked:  # one tick at a time: the body coalesces them
                    self._ticked = True
                    self._steps.put_nowait(Progress())
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the runner, which accounts for it and raises it
            self._steps.put_nowait(_Failed(exc))

    async def _watch_abort(self) -> None:
        await self._aborted.wait()
        self._steps.put_nowait(Stopped("aborted"))
