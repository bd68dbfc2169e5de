"""Driven adapter: the in-process implementation of StreamLog (the embedded default).

Each stream keeps at most about ``max_events`` events (trimmed in batches, like Redis' approximate MAXLEN) and is
forgotten ``ttl_s`` after its last write. Finished streams are also bounded as a whole, by count
(``max_finished``) and by approximate bytes (``max_finished_bytes``, binary attachments counted by their length):
past either, the oldest finished streams are forgotten first, and a live stream never is. Every mutation runs without
an ``await`` in the middle, so appends and the fenced finalize are atomic with respect to each other exactly as the
Lua scripts of the Redis adapter are.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Final

import attrs

from domain.errors import CompletionOwnershipError, NotFoundError
from domain.streaming import (
    DEFAULT_MAX_ATTACHMENT_BYTES,
    LogRead,
    Outcome,
    StreamClosedError,
    StreamEvent,
    StreamInfo,
    StreamStatus,
    check_attachment,
    status_for_terminal,
)
from domain.types import JsonValue, StreamId

__all__ = ["InMemoryStreamLog"]

_PURGE_EVERY_S: Final = 1.0
_EVENT_OVERHEAD: Final = 240
"""Bytes an event costs besides its strings (the StreamEvent, its payload dict, the list slot), measured roughly."""


def _approx_bytes(event: StreamEvent) -> int:
    """A cheap estimate of what one event holds: its top-level strings, a word per other value, its attachment."""
    strings = sum(len(value) if isinstance(value, str) else 16 for value in event.payload.values())
    return _EVENT_OVERHEAD + strings + (len(event.data) if event.data is not None else 0)


class _Stream:
    """Mutable state of one stream."""

    __slots__ = (
        "base",
        "events",
        "expires_at",
        "generation",
        "last_seen",
        "last_seq",
        "lease_until",
        "offset",
        "signal",
        "status",
    )

    def __init__(self, info: StreamInfo, expires_at: float) -> None:
        self.base = info
        self.generation = info.generation
        self.status: StreamStatus = info.status
        self.last_seq = info.last_seq
        self.last_seen = info.last_seen
        self.events: list[StreamEvent] = []
        self.offset = 0  # seq of events[0] is offset + 1
        self.expires_at = expires_at
        self.lease_until = info.lease_until
        self.signal: asyncio.Event | None = None

    def notify(self) -> None:
        if self.signal is not None:
            self.signal.set()
            self.signal = None

    @property
    def info(self) -> StreamInfo:
        return attrs.evolve(
            self.base,
            generation=self.generation,
            status=self.status,
            last_seq=self.last_seq,
            last_seen=self.last_seen,
            lease_until=self.lease_until,
        )

    @property
    def finished(self) -> bool:
        return self.status != "open"

    def first_seq(self) -> int:
        return self.offset + 1 if self.events else 0

    def drop_oldest(self, keep: int) -> None:
        excess = len(self.events) - keep
        if excess > 0:
            del self.events[:excess]
            self.offset += excess


class InMemoryStreamLog:
    """StreamLog in a dict; ``clock`` is wall time (tests pass a fake one to drive expiry)."""

    def __init__(
        self,
        *,
        max_events: int = 10_000,
        ttl_s: float = 3600.0,
        lease_s: float = 10.0,
        max_finished: int = 10_000,
        max_finished_bytes: int = 64 * 1024 * 1024,
        max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
        clock: Callable[[], float] = time.time,
    ):
        if max_events < 1:
            raise ValueError("max_events must be >= 1")
        self._max_events = max_events
        self._slack = max(16, max_events // 8)  # trim in batches: O(1) amortised per append
        self._ttl_s = ttl_s
        self._lease_s = lease_s
        self._max_finished = max(0, max_finished)
        self._max_finished_bytes = max(0, max_finished_bytes)
        self._max_attachment_bytes = max_attachment_bytes
        self._clock = clock
        self._streams: dict[StreamId, _Stream] = {}
        self._finished: OrderedDict[StreamId, int] = OrderedDict()  # finished streams, oldest first, with their bytes
        self._finished_bytes = 0
        self._next_purge = 0.0

    def __len__(self) -> int:
        return len(self._streams)

    @property
    def finished_bytes(self) -> int:
        """The approximate bytes held by finished streams (what ``max_finished_bytes`` bounds)."""
        return self._finished_bytes

    def _drop(self, stream_id: StreamId) -> None:
        stream = self._streams.pop(stream_id, None)
        self._finished_bytes -= self._finished.pop(stream_id, 0)
        if stream is not None:
            stream.notify()

    def _live(self, stream_id: StreamId) -> _Stream:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise NotFoundError("stream not found", context={"stream_id": stream_id})
        if stream.expires_at <= self._clock():
            self._drop(stream_id)
            raise NotFoundError("stream not found", context={"stream_id": stream_id})
        return stream

    def _purge(self, now: float) -> None:
        if now < self._next_purge:
            return
        self._next_purge = now + _PURGE_EVERY_S
        for stream_id in [sid for sid, s in self._streams.items() if s.expires_at <= now]:
            self._drop(stream_id)

    def _retire(self, stream: _Stream) -> None:
        """Count a stream that just finished against the bounds, then forget the oldest finished ones past them."""
        size = sum(_approx_bytes(event) for event in stream.events)
        self._finished[stream.base.stream_id] = size
        self._finished_bytes += size
        while self._finished and (
            len(self._finished) > self._max_finished or self._finished_bytes > self._max_finished_bytes
        ):
            self._drop(next(iter(self._finished)))

    async def create(self, info: StreamInfo) -> None:
        now = self._clock()
        self._purge(now)
        if info.stream_id in self._streams:
            raise ValueError(f"stream {info.stream_id} exists")
        self._streams[info.stream_id] = _Stream(info, now + self._ttl_s)

    async def get(self, stream_id: StreamId) -> StreamInfo | None:
        try:
            return self._live(stream_id).info
        except NotFoundError:
            return None

    async def advance_generation(self, stream_id: StreamId) -> int:
        stream = self._live(stream_id)
        if stream.finished:
            raise StreamClosedError(stream_id)
        stream.generation += 1
        stream.lease_until = self._clock() + self._lease_s
        return stream.generation

    def _fenced(self, stream_id: StreamId, generation: int) -> _Stream:
        stream = self._live(stream_id)
        if generation != stream.generation:
            raise CompletionOwnershipError(
                "stale generation: a newer producer owns this stream",
                context={"stream_id": stream_id, "generation": generation, "current": stream.generation},
            )
        return stream

    def _write(
        self,
        stream: _Stream,
        type: str,
        payload: Mapping[str, JsonValue],
        data: bytes | None,
        status: StreamStatus | None,
    ) -> StreamEvent:
        now = self._clock()
        stream.last_seq += 1
        event = StreamEvent(stream.base.stream_id, stream.last_seq, type, payload, now, data)
        stream.events.append(event)
        if len(stream.events) > self._max_events + self._slack:
            stream.drop_oldest(self._max_events)
        if status is not None:
            stream.status = status
        else:
            stream.lease_until = now + self._lease_s
        stream.expires_at = now + self._ttl_s
        stream.notify()
        if status is not None:
            self._retire(stream)
        return event

    async def append(
        self,
        stream_id: StreamId,
        generation: int,
        type: str,
        payload: Mapping[str, JsonValue],
        data: bytes | None = None,
    ) -> StreamEvent:
        check_attachment(stream_id, data, self._max_attachment_bytes)
        stream = self._fenced(stream_id, generation)
        if stream.finished:
            raise StreamClosedError(stream_id)
        # bytes(): a caller's bytearray or memoryview must not change the stored event afterwards
        return self._write(stream, type, payload, None if data is None else bytes(data), None)

    async def finalize(self, stream_id: StreamId, generation: int, outcome: Outcome) -> StreamEvent:
        stream = self._fenced(stream_id, generation)
        if stream.finished:
            raise CompletionOwnershipError(
                "the stream has already ended", context={"stream_id": stream_id, "status": stream.status}
            )
        return self._write(stream, outcome.type, outcome.payload, None, status_for_terminal(outcome.type))

    async def renew(self, stream_id: StreamId, generation: int) -> None:
        stream = self._fenced(stream_id, generation)
        if stream.finished:
            raise StreamClosedError(stream_id)
        stream.lease_until = self._clock() + self._lease_s

    async def reap(self, stream_id: StreamId, outcome: Outcome) -> StreamEvent | None:
        stream = self._live(stream_id)
        if stream.finished or not 0 < stream.lease_until <= self._clock():
            return None
        stream.generation += 1  # fence the lapsed producer: its next write is refused
        return self._write(stream, outcome.type, outcome.payload, None, status_for_terminal(outcome.type))

    async def read(self, stream_id: StreamId, after: int, limit: int) -> LogRead:
        stream = self._live(stream_id)
        start = max(0, after - stream.offset)
        events = tuple(stream.events[start : start + limit]) if limit > 0 else ()
        return LogRead(events, stream.first_seq(), stream.last_seq, stream.status, stream.lease_until)

    async def wait(self, stream_id: StreamId, after: int, timeout_s: float) -> bool:
        stream = self._live(stream_id)
        if stream.last_seq > after or stream.finished:
            return True
        if stream.signal is None:
            stream.signal = asyncio.Event()
        signal = stream.signal
        try:
            async with asyncio.timeout(timeout_s):  # not wait_for: it can swallow a cancellation on 3.11
                await signal.wait()
        except TimeoutError:
            return False
        return True

    async def touch(self, stream_id: StreamId) -> None:
        stream = self._live(stream_id)
        stream.last_seen = self._clock()

    async def trim(self, stream_id: StreamId, keep: int) -> None:
        self._live(stream_id).drop_oldest(max(1, keep))

    async def expire(self, stream_id: StreamId, ttl_s: float) -> None:
        stream = self._live(stream_id)
        stream.expires_at = self._clock() + ttl_s
        if ttl_s <= 0:
            self._drop(stream_id)
