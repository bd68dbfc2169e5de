"""Driven port: the stream log, an append-only, fenced, trimmed and expiring log of each stream's events.

The StreamingManager writes through it and every consumer reads from it by cursor, so a consumer in another process
(sharing the backend) can resume a stream produced here. Writes are fenced by the stream's *generation*: a writer
holding an older generation is refused, which is how a superseded producer is kept from writing.

Every log is built with a producer lease length: ``advance_generation``, each ``append`` and ``renew`` extend the
current generation's lease to *now + lease*; ``reap`` ends an open stream whose lease has run out (its producer is
presumed dead), atomically and at most once, by bumping the generation (fencing that producer) and writing the
terminal event.

Every log is also built with ``max_attachment_bytes``: an ``append`` may carry one binary attachment (``data``), kept
as raw bytes and read back byte for byte; a longer one is refused with ``AttachmentTooLargeError`` and nothing is
written. Terminal events never carry one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from domain.streaming import LogRead, Outcome, StreamEvent, StreamInfo
from domain.types import JsonValue, StreamId

__all__ = ["StreamLog"]


class StreamLog(Protocol):
    """Errors: ``NotFoundError`` for an unknown or expired stream; ``CompletionOwnershipError`` for a write with a
    stale generation and for a second ``finalize``; ``StreamClosedError`` for an ``append`` after the terminal event;
    ``AttachmentTooLargeError`` for an ``append`` whose ``data`` exceeds the log's bound; ``ServiceUnavailableError``
    when the backend does not answer."""

    async def create(self, info: StreamInfo) -> None:
        """Register a new, open stream (``generation`` and ``last_seq`` as given, normally 0)."""
        ...

    async def get(self, stream_id: StreamId) -> StreamInfo | None:
        """The stream's current info, or ``None`` when unknown or expired."""
        ...

    async def advance_generation(self, stream_id: StreamId) -> int:
        """Bump and return the generation of an open stream; writers of older generations are fenced out from now."""
        ...

    async def append(
        self,
        stream_id: StreamId,
        generation: int,
        type: str,
        payload: Mapping[str, JsonValue],
        data: bytes | None = None,
    ) -> StreamEvent:
        """Append one non-terminal event with the next seq, if ``generation`` is current and the stream open; ``data``
        is its binary attachment (``None``: none), stored and read back as the same bytes."""
        ...

    async def finalize(self, stream_id: StreamId, generation: int, outcome: Outcome) -> StreamEvent:
        """Append the terminal event and close the stream, atomically, if ``generation`` is current and it is open."""
        ...

    async def renew(self, stream_id: StreamId, generation: int) -> None:
        """Extend the lease of ``generation`` (a silent producer's heartbeat); fenced like ``append``."""
        ...

    async def reap(self, stream_id: StreamId, outcome: Outcome) -> StreamEvent | None:
        """End the stream with ``outcome`` if it is open and its lease has run out (by the log's clock), fencing the
        lapsed producer; ``None`` when the lease is live, absent or the stream has already ended."""
        ...

    async def read(self, stream_id: StreamId, after: int, limit: int) -> LogRead:
        """Up to ``limit`` retained events with ``seq > after``, oldest first, and where the log stands."""
        ...

    async def wait(self, stream_id: StreamId, after: int, timeout_s: float) -> bool:
        """Return once an event with ``seq > after`` exists or the stream has ended (True), or after the timeout."""
        ...

    async def touch(self, stream_id: StreamId) -> None:
        """Record that a consumer is reading the stream now (``StreamInfo.last_seen``), from any process."""
        ...

    async def trim(self, stream_id: StreamId, keep: int) -> None:
        """Drop all but the newest ``keep`` (>= 1) events; readers behind them get a ``gap``."""
        ...

    async def expire(self, stream_id: StreamId, ttl_s: float) -> None:
        """Forget the stream ``ttl_s`` seconds from now (0: at once)."""
        ...
