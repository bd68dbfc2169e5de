"""Fake: an in-memory StreamLog whose operations fail on demand, as a backend that stops answering would."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.memory.stream_log import InMemoryStreamLog
from domain.errors import ServiceUnavailableError
from domain.streaming import LogRead, Outcome, StreamEvent
from domain.types import JsonValue, StreamId

__all__ = ["FlakyStreamLog"]


class FlakyStreamLog(InMemoryStreamLog):
    """InMemoryStreamLog; ``fail_next(op, times)`` makes the next ``times`` calls of ``op`` raise
    ``ServiceUnavailableError`` (what the Redis adapter raises when Redis does not answer) without touching state.
    ``calls`` counts every call per operation."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._failures: dict[str, int] = {}
        self.calls: dict[str, int] = {}

    def fail_next(self, op: str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``op`` (``append``, ``finalize``, ``read`` ...) fail."""
        self._failures[op] = times

    def down(self, *ops: str) -> None:
        """Make every call of ``ops`` fail until ``up``: an outage rather than a blip."""
        for op in ops:
            self._failures[op] = 2**62

    def up(self) -> None:
        """End every failure."""
        self._failures.clear()

    def _enter(self, op: str) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1
        left = self._failures.get(op, 0)
        if left > 0:
            self._failures[op] = left - 1
            raise ServiceUnavailableError(f"stream log down ({op})", context={"operation": op})

    async def append(
        self, stream_id: StreamId, generation: int, type: str, payload: Mapping[str, JsonValue]
    ) -> StreamEvent:
        self._enter("append")
        return await super().append(stream_id, generation, type, payload)

    async def finalize(self, stream_id: StreamId, generation: int, outcome: Outcome) -> StreamEvent:
        self._enter("finalize")
        return await super().finalize(stream_id, generation, outcome)

    async def read(self, stream_id: StreamId, after: int, limit: int) -> LogRead:
        self._enter("read")
        return await super().read(stream_id, after, limit)

    async def advance_generation(self, stream_id: StreamId) -> int:
        self._enter("advance_generation")
        return await super().advance_generation(stream_id)

    async def wait(self, stream_id: StreamId, after: int, timeout_s: float) -> bool:
        self._enter("wait")
        return await super().wait(stream_id, after, timeout_s)
