"""Driven adapter: the in-process implementation of BreakerStore (the embedded default; one instance's view).

Records live in a dict, one per model that ever had an outcome, so the dict is bounded by the catalog. Each step
applies ``domain.health`` with no ``await`` in the middle, which makes it atomic with respect to every other task
exactly as the Redis adapter's Lua scripts are across instances.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.health import Admission, BreakerPolicy, BreakerRecord, Transition, Verdict, admit, record

__all__ = ["InMemoryBreakerStore"]


class InMemoryBreakerStore:
    """BreakerStore in this process's memory."""

    def __init__(self) -> None:
        self._records: dict[str, BreakerRecord] = {}

    async def admit(self, model: str, provider: str, policy: BreakerPolicy, now_ms: int) -> Admission:
        current = self._records.get(model, BreakerRecord())
        after, admission = admit(current, policy, now_ms, model, provider)
        if after is not current:
            self._records[model] = after
        return admission

    async def record(
        self,
        model: str,
        policy: BreakerPolicy,
        now_ms: int,
        verdict: Verdict,
        *,
        probe: bool,
        latency_ms: float,
    ) -> tuple[BreakerRecord, Transition | None]:
        current = self._records.get(model, BreakerRecord())
        after, transition = record(current, policy, now_ms, verdict, probe=probe, latency_ms=latency_ms)
        if after is not current:
            self._records[model] = after
        return after, transition

    async def records(self, models: Sequence[str]) -> dict[str, BreakerRecord]:
        return {model: self._records[model] for model in models if model in self._records}
