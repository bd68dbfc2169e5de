"""Use case internals: the progress streams of the video jobs this process works on, and the local signals between
the API side and the worker (a new job to claim, a job cancelled here).

A job outlives processes; a StreamingManager stream is produced by one process (its completion token, its producer
lease). So the rule is: **whichever process holds a job publishes on the job's stream.** At submission the API
process opens the stream and publishes ``queued``. A worker that claims the job keeps that stream when this process
holds it already, else takes it over with a fresh completion token when the stream log still has it open (a shared
Redis log after the holder died: the old writer is fenced out), else opens a new stream and records it on the job
(the memory log after a restart, or a stream the old process ended: ``cancelled``/``shutdown`` at a graceful stop,
``error``/``producer_lost`` after a crash). Every stream therefore ends with exactly one terminal event, and the
job's *last* stream ends with the job's own outcome (``done`` with the result, ``error``, ``cancelled``). A client
whose stream ended while the job still runs reads the job again (``GET /api/v1/videos/{id}``) for its current
``stream_id``; the CLI does so itself.

The manager ends a stream nobody reads after ``streaming.resume_grace_s``, which suits a chat whose client left but
not a job that takes minutes and is mostly not watched: a job's publisher keeps its stream *unattended*, so it stays
open until the job ends whoever reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from attrs import define

from domain.errors import CompletionOwnershipError, NotFoundError, ServiceError
from domain.streaming import CompletionToken, Outcome, StreamClosedError
from domain.types import CustomerId, JsonValue, StreamId
from services.streaming.manager import StreamingManager
from services.streaming.publisher import StreamPublisher

__all__ = ["JobStreams"]

_log = logging.getLogger("switchyard.video")


@define
class _Held:
    owner: CustomerId
    stream_id: StreamId
    token: CompletionToken
    publisher: StreamPublisher


class JobStreams:
    """The job streams this process produces (by job id), the worker's wake-up and the local cancellations."""

    def __init__(self, manager: StreamingManager, *, silence_s: float) -> None:
        self._manager = manager
        self._silence_s = silence_s
        self._held: dict[str, _Held] = {}
        self._interrupts: dict[str, Callable[[], None]] = {}
        self.wakeup = asyncio.Event()
        """Set when a job was submitted here, so the local worker claims it without waiting for its next tick."""

    # --- streams ----------------------------------------------------------------------------------------------------

    def holds(self, job_id: str) -> bool:
        """Whether this process produces the job's stream (forgetting it once another process took it over)."""
        held = self._held.get(job_id)
        if held is not None and not self._current(held.token):
            del self._held[job_id]
            return False
        return held is not None

    async def open(self, job_id: str, owner: CustomerId, model: str) -> StreamId:
        """A new stream for the job, produced here."""
        stream_id = await self._manager.open(owner=owner, kind="video", meta={"job_id": job_id, "model": model})
        await self._hold(job_id, owner, stream_id)
        return stream_id

    async def attach(self, job_id: str, owner: CustomerId, stream_id: StreamId) -> bool:
        """Produce the job's stream ``stream_id`` from here: already so, or taken over while the log has it open.
        ``False`` when it is gone or ended (the caller opens a new one)."""
        held = self._held.get(job_id)
        if held is not None and held.stream_id == stream_id and self._current(held.token):
            return True
        self._held.pop(job_id, None)
        try:
            await self._hold(job_id, owner, stream_id)
        except (NotFoundError, StreamClosedError, CompletionOwnershipError):
            return False
        return True

    async def publish(self, job_id: str, type: str, payload: Mapping[str, JsonValue]) -> None:
        """Best effort: progress also lives in the job, so a stream that ended or a log that is down costs an
        event, never the job."""
        held = self._held.get(job_id)
        if held is None:
            return
        try:
            await held.publisher.publish(type, payload)
        except (StreamClosedError, CompletionOwnershipError, NotFoundError):
            self._held.pop(job_id, None)  # ended, taken over elsewhere, or lost: not ours to write any more
        except ServiceError as exc:
            _log.warning("video_progress_not_published", extra={"job_id": job_id, "error": exc.code})

    async def finish(self, job_id: str, outcome: Outcome) -> None:
        """End the job's stream with ``outcome`` if this process still produces it (fenced: else nothing)."""
        held = self._held.pop(job_id, None)
        if held is None:
            return
        try:
            await self._manager.signal_completion(held.token, outcome)
        except (CompletionOwnershipError, StreamClosedError, NotFoundError):
            pass  # taken over or ended elsewhere: whoever holds it now ends it
        except ServiceError as exc:  # the log is down: the manager keeps retrying the terminal write itself
            _log.warning("video_stream_end_deferred", extra={"job_id": job_id, "error": exc.code})

    async def cancel_elsewhere(self, owner: CustomerId, stream_id: StreamId) -> None:
        """End a stream another process produces with ``cancelled`` (through a shared log; a no-op otherwise)."""
        with contextlib.suppress(NotFoundError, CompletionOwnershipError, StreamClosedError):
            await self._manager.cancel(stream_id, owner=owner, reason="client")

    async def aclose(self) -> None:
        """Forget the held streams (they are ended by the worker or by the manager's shutdown)."""
        self._held.clear()

    # --- local cancellation -------------------------------------------------------------------------------------------

    def working(self, job_id: str, interrupt: Callable[[], None]) -> None:
        """Record how to stop the local work on ``job_id``, so a cancel served here stops it at once."""
        self._interrupts[job_id] = interrupt

    def done_working(self, job_id: str) -> None:
        """The local work on ``job_id`` ended."""
        self._interrupts.pop(job_id, None)

    def interrupt(self, job_id: str) -> None:
        """Stop the local work on ``job_id``, if any (the job was cancelled)."""
        stop = self._interrupts.get(job_id)
        if stop is not None:
            stop()

    # --- internals ----------------------------------------------------------------------------------------------------

    async def _hold(self, job_id: str, owner: CustomerId, stream_id: StreamId) -> None:
        token = await self._manager.create_completion_token(stream_id)
        publisher = self._manager.publisher(token)
        # The job bounds its own silences (polls back off, the job's life is bounded): no "stalled" end meanwhile;
        # and it is mostly not watched: no "grace" end for lack of readers either.
        publisher.expect_silence(self._silence_s)
        publisher.keep_unattended()
        self._held[job_id] = _Held(owner, stream_id, token, publisher)

    def _current(self, token: CompletionToken) -> bool:
        try:
            self._manager.publisher(token)
        except CompletionOwnershipError:
            return False
        return True
