"""Use case: what a producer is handed. A ``StreamPublisher`` can publish events, never complete the stream.

``RunPublisher`` is the manager's implementation, bound to one generation so a superseded producer is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from domain.types import JsonValue, StreamId
from services.streaming.runs import Run

__all__ = ["Producer", "RunPublisher", "StreamPublisher"]


class StreamPublisher(Protocol):
    """What a producer is handed: it can publish events, never complete the stream."""

    @property
    def stream_id(self) -> StreamId: ...

    async def publish(self, type: str, payload: Mapping[str, JsonValue], data: bytes | None = None) -> int:
        """Append one event, with ``data`` as its binary attachment (raw bytes: an audio chunk ...); returns its seq.

        Raises ``StreamClosedError`` once the stream is ending, ``AttachmentTooLargeError`` when ``data`` is longer
        than ``streaming.max_attachment_bytes`` (nothing is written; split the media into chunks)."""
        ...

    def expect_silence(self, seconds: float) -> None:
        """Say that the producer bounds its own silences to ``seconds`` (a vendor timeout it enforces itself), so
        the stall watchdog, the last-resort guard, waits past that instead of ending the stream first."""
        ...

    def keep_unattended(self) -> None:
        """Say that the stream lives until its producer ends it even while nobody reads it (a job that takes
        minutes and is mostly not watched): the manager then never ends it for lack of readers (``grace``)."""
        ...


Producer = Callable[[StreamPublisher], Awaitable[Mapping[str, JsonValue] | None]]
"""The upstream work: publishes through the publisher, returns the ``done`` payload (or raises)."""

PublishFn = Callable[[Run, int, str, Mapping[str, JsonValue], bytes | None], Awaitable[int]]


class RunPublisher:
    """A ``StreamPublisher`` for one run and generation."""

    __slots__ = ("_generation", "_publish", "_run")

    def __init__(self, publish: PublishFn, run: Run, generation: int) -> None:
        self._publish = publish
        self._run = run
        self._generation = generation

    @property
    def stream_id(self) -> StreamId:
        return self._run.stream_id

    async def publish(self, type: str, payload: Mapping[str, JsonValue], data: bytes | None = None) -> int:
        return await self._publish(self._run, self._generation, type, payload, data)

    def expect_silence(self, seconds: float) -> None:
        self._run.silence_s = max(self._run.silence_s, seconds)

    def keep_unattended(self) -> None:
        self._run.unattended = True
