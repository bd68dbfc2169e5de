"""Driven port: where the circuit breakers' records live (one process, or Redis so every instance shares them).

Each call is one atomic step of ``domain.health`` on one model's record: the store reads the record, applies the
pure rule and writes the result back with nothing in between, so two instances recording at once never lose an
outcome nor let more probes through than the policy allows. Times are the caller's wall clock in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.health import Admission, BreakerPolicy, BreakerRecord, Transition, Verdict

__all__ = ["BreakerStore"]


class BreakerStore(Protocol):
    """The breaker records of every model, keyed by qualified model id."""

    async def admit(self, model: str, provider: str, policy: BreakerPolicy, now_ms: int) -> Admission:
        """``domain.health.admit`` on ``model``'s record (a half-open probe slot is taken here, atomically)."""
        ...

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
        """``domain.health.record`` on ``model``'s record: the record after it and the transition it caused."""
        ...

    async def records(self, models: Sequence[str]) -> dict[str, BreakerRecord]:
        """The stored records of ``models`` (a model never recorded is absent)."""
        ...
