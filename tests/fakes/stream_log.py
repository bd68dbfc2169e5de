"""Fakes: in-memory StreamLogs that misbehave on demand, as real backends do (fail, race, poll)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from adapters.memory.stream_log import InMemoryStreamLog
from domain.errors import ServiceError, ServiceUnavailableError
from domain.streaming import LogRead, Outcome, StreamEvent, StreamInfo
from domain.types import JsonValue, StreamId

__all__ = ["DeafStreamLog", "FlakyStreamLog"]


class FlakyStreamLog(InMemoryStreamLog):
    """InMemoryStreamLog; ``fail_next(op, times)`` makes the next ``times`` calls of ``op`` raise
    ``ServiceUnavailableError`` (what the Redis adapter raises when Redis does not answer) without touching state,
    or the error ``error()`` builds. ``before_next(op, action)`` runs ``action`` right before the next call of ``op``
    (another process acting in between: a race). ``calls`` counts every call per operation."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._failures: dict[str, int] = {}
        self._errors: dict[str, Callable[[], ServiceError]] = {}
        self._before: dict[str, Callable[[], Awaitable[object]]] = {}
        self.calls: dict[str, int] = {}

    def fail_next(self, op: str, times: int = 1, error: Callable[[], ServiceError] | None = None) -> None:
        """Make the next ``times`` calls of ``op`` (``append``, ``finalize``, ``read`` ...) fail."""
        self._failures[op] = times
        if error is not None:
            self._errors[op] = error

    def before_next(self, op: str, action: Callable[[], Awaitable[object]]) -> None:
        """Run ``action`` once, just before the next call of ``op`` does anything."""
        self._before[op] = action

    def down(self, *ops: str) -> None:
        """Make every call of ``ops`` fail until ``up``: an outage rather than a blip."""
        for op in ops:
            self._failures[op] = 2**62

    def up(self) -> None:
        """End every failure."""
        self._failures.clear()
        self._errors.clear()

    async def _enter(self, op: str) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1
        action = self._before.pop(op, None)
        if action is not None:
            await action()
        left = self._failures.get(op, 0)
        if left > 0:
            self._failures[op] = left - 1
            build = self._errors.get(op)
            if build is not None:
                raise build()
            raise ServiceUnavailableError(f"stream log down ({op})", context={"operation": op})

    async def append(
        self,
        stream_id: StreamId,
        generation: int,
        type: str,
        payload: Mapping[str, JsonValue],
        data: bytes | None = None,
    ) -> StreamEvent:
        await self._enter("append")
        return await super().append(stream_id, generation, type, payload, data)

    async def finalize(self, stream_id: StreamId, generation: int, outcome: Outcome) -> StreamEvent:
        await self._enter("finalize")
        return await super().finalize(stream_id, generation, outcome)

    async def read(self, stream_id: StreamId, after: int, limit: int) -> LogRead:
        await self._enter("read")
        return await super().read(stream_id, after, limit)

    async def advance_generation(self, stream_id: StreamId) -> int:
        await self._enter("advance_generation")
        return await super().advance_generation(stream_id)

    async def wait(self, stream_id: StreamId, after: int, timeout_s: float) -> bool:
        await self._enter("wait")
        return await super().wait(stream_id, after, timeout_s)

    async def get(self, stream_id: StreamId) -> StreamInfo | None:
        await self._enter("get")
        return await super().get(stream_id)

    async def renew(self, stream_id: StreamId, generation: int) -> None:
        await self._enter("renew")
        await super().renew(stream_id, generation)

    async def touch(self, stream_id: StreamId) -> None:
        await self._enter("touch")
        await super().touch(stream_id)


class DeafStreamLog(InMemoryStreamLog):
    """InMemoryStreamLog whose ``wait`` never wakes early: it sleeps the whole timeout, then says whether there is
    news (a backend without push, polled). Only the manager's own signal can wake a reader sooner."""

    async def wait(self, stream_id: StreamId, after: int, timeout_s: float) -> bool:
        await asyncio.sleep(timeout_s)
        return await super().wait(stream_id, after, 0.0)
