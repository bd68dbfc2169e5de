"""Use case internals: the manager's configuration and its per-stream bookkeeping (``Run``) for locally owned streams.

A ``Run`` exists for every stream whose completion token this process holds: the current token, the producer task,
how many local consumers read it, when it last heard from its producer, and a wake-up signal for local readers.
"""

from __future__ import annotations

import asyncio

from attrs import frozen

from domain.streaming import DEFAULT_MAX_ATTACHMENT_BYTES, CompletionToken, LogRead, Outcome, StreamEvent
from domain.types import CustomerId, StreamId

__all__ = ["Run", "Signal", "StreamingConfig"]


@frozen
class StreamingConfig:
    """Plain values from ``settings.streaming`` (the container builds this; services never read settings)."""

    resume_grace_s: float = 30.0
    stall_timeout_s: float = 120.0
    consumer_buffer: int = 1024
    first_consumer_s: float = 5.0
    """A stream that never had a consumer waits max(this, resume_grace_s) for its first one before it is cancelled."""
    read_batch: int = 256
    poll_s: float = 1.0
    """Longest single wait before a reader looks at the log again (it also catches ends written by other processes)."""
    touch_interval_s: float = 2.0
    """How often a reader of a stream produced by another process records itself (``StreamLog.touch``)."""
    shutdown_timeout_s: float = 5.0
    local_tail: int = 0
    """Recent events a producing process keeps for its own readers (0: off). Saves a log round trip per wake-up
    when the log is remote (Redis); pointless for the in-memory log."""
    producer_lease_s: float = 10.0
    """The stream log's producer lease (the same setting built it): a producer silent for a third of it renews,
    and readers end a stream whose lease lapsed with ``producer_lost``."""
    finalize_attempts: int = 5
    """How often the manager tries to write a terminal event the log refused to take (backend down) before it gives
    the stream up; readers then end it themselves (``stream_lost``)."""
    outage_s: float = 10.0
    """How long a reader rides out an unreachable log before it ends its stream with ``stream_unavailable``."""
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
    """The longest binary attachment one event may carry; a longer publish is refused (``AttachmentTooLargeError``)
    before it reaches the log (which has the same bound from the same setting)."""

    def sweep_interval_s(self) -> float:
        """How often the watchdog looks for stalled and abandoned streams."""
        candidates = (self.resume_grace_s, self.stall_timeout_s, self.first_consumer_s, self.producer_lease_s / 3)
        limits = [v for v in candidates if v > 0]
        return min(1.0, max(0.01, min(limits, default=4.0) / 4))


class Signal:
    """Wakes every local reader of one stream when it changes (no lost wake-ups: take ``waiter()`` before reading)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def waiter(self) -> asyncio.Event:
        """The event the next ``fire`` sets."""
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    def fire(self) -> None:
        """Wake everyone waiting now."""
        if self._event is not None:
            self._event.set()
            self._event = None


class Run:
    """A locally owned stream: the current completion token (``None`` once the stream is ending) and its task."""

    __slots__ = (
        "cancel_reason",
        "consumers",
        "finalize_failures",
        "had_consumer",
        "idle_since",
        "kind",
        "last_activity",
        "owner",
        "pending",
        "renewed_at",
        "retry_at",
        "signal",
        "silence_s",
        "stream_id",
        "tail",
        "tail_last",
        "task",
        "token",
        "unattended",
    )

    def __init__(self, stream_id: StreamId, owner: CustomerId, kind: str, now: float) -> None:
        self.stream_id = stream_id
        self.owner = owner
        self.kind = kind
        self.token: CompletionToken | None = None
        self.task: asyncio.Task[None] | None = None
        self.consumers = 0
        self.had_consumer = False
        self.idle_since: float | None = now
        self.last_activity = now
        self.cancel_reason: str | None = None
        self.renewed_at = now
        self.silence_s = 0.0
        """The longest silence the producer bounds itself (``StreamPublisher.expect_silence``)."""
        self.unattended = False
        """Whether the stream lives on with nobody reading it (``StreamPublisher.keep_unattended``)."""
        self.pending: Outcome | None = None
        """The outcome whose terminal write failed (the backend was down); the watchdog retries it."""
        self.finalize_failures = 0
        self.retry_at = 0.0
        self.signal = Signal()
        self.tail: dict[int, StreamEvent] = {}
        self.tail_last = 0

    def remember(self, event: StreamEvent, capacity: int) -> None:
        """Keep ``event`` for local readers; the oldest beyond ``capacity`` go."""
        self.tail[event.seq] = event
        self.tail_last = max(self.tail_last, event.seq)
        self.tail.pop(event.seq - capacity, None)

    def tail_after(self, after: int, limit: int) -> LogRead | None:
        """The events after ``after`` as this process published them, or ``None`` when only the log can say."""
        if after >= self.tail_last:
            return LogRead((), 0, self.tail_last, "open")
        events: list[StreamEvent] = []
        seq = after + 1
        while len(events) < limit and (event := self.tail.get(seq)) is not None:
            events.append(event)
            seq += 1
        if not events:
            return None  # evicted, or a publish still in flight: read the log
        return LogRead(tuple(events), after + 1, self.tail_last, "open")

    @property
    def active(self) -> bool:
        """Whether the stream is still open from this process' point of view."""
        return self.token is not None
