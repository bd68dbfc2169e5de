"""Use case: vendor health, a circuit breaker per model between the attempt runner and the vendors.

The attempt runner asks ``admit`` before it tries a model and hands the ticket back to ``record`` with the attempt's
verdict. ``CircuitBreakers`` keeps the records in a ``BreakerStore`` (this process, or Redis for every instance),
reports each transition once (``breaker_transitions_total``, one log line) and the state each model was last seen
in (``breaker_state``, 0 closed, 1 half-open, 2 open), and counts the attempts it refused (``breaker_skips_total``).
``NullBreakers`` (``breaker.enabled = false``) admits everything and remembers nothing: the runner then behaves
exactly as without breakers.

A breaker store that fails (Redis down) must not take the gateway down with it: the breakers then fail open,
admitting every call, and say so in the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from domain.catalog import ModelSpec
from domain.errors import ServiceError
from domain.health import (
    Admission,
    BreakerPolicy,
    BreakerRecord,
    BreakerState,
    BreakerView,
    Transition,
    Verdict,
    view,
)
from ports.breakers import BreakerStore
from ports.metrics import Metrics

__all__ = ["Breakers", "CircuitBreakers", "NullBreakers"]

_log = logging.getLogger("switchyard.breakers")
_UNSEEN: Final = BreakerView(BreakerState.CLOSED, 0, 0, 0, 0, ())


class Breakers(Protocol):
    """What the attempt runner and the health report need of the breakers."""

    @property
    def enabled(self) -> bool: ...

    async def admit(self, spec: ModelSpec) -> Admission:
        """May an attempt on ``spec`` start now? Keep the ticket for ``record``."""
        ...

    async def record(self, ticket: Admission, verdict: Verdict, latency_s: float) -> bool:
        """Count the attempt's outcome; True when the model may take another attempt (its breaker is closed)."""
        ...

    async def views(self, specs: Sequence[ModelSpec]) -> dict[str, BreakerView]:
        """Each model's breaker as of now, by qualified id."""
        ...


class NullBreakers:
    """Breakers switched off: every attempt is admitted, nothing is counted."""

    enabled = False

    async def admit(self, spec: ModelSpec) -> Admission:
        return Admission(spec.qualified_id, spec.provider, True, BreakerState.CLOSED)

    async def record(self, ticket: Admission, verdict: Verdict, latency_s: float) -> bool:
        return True

    async def views(self, specs: Sequence[ModelSpec]) -> dict[str, BreakerView]:
        return {spec.qualified_id: _UNSEEN for spec in specs}


class CircuitBreakers:
    """Breakers over a store, with their metrics and transition log; ``wall`` is the wall clock in seconds."""

    enabled = True

    def __init__(
        self,
        store: BreakerStore,
        policy: BreakerPolicy,
        metrics: Metrics,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self._store = store
        self._metrics = metrics
        self._wall = wall
        self._levels: dict[str, int] = {}
        """The ``breaker_state`` gauge value this process last reported, per model."""

    def _now_ms(self) -> int:
        return int(self._wall() * 1000)

    async def admit(self, spec: ModelSpec) -> Admission:
        try:
            ticket = await self._store.admit(spec.qualified_id, spec.provider, self.policy, self._now_ms())
        except ServiceError as exc:
            _log.warning("breaker_store_failed", extra={"operation": "admit", "error": exc.code})
            return Admission(spec.qualified_id, spec.provider, True, BreakerState.CLOSED)
        self._seen(ticket.model, ticket.provider, ticket.state, ticket.transition)
        if not ticket.admitted:
            self._metrics.increment("breaker_skips_total", provider=ticket.provider, model=ticket.model)
            _log.info(
                "model_skipped",
                extra={
                    "provider": ticket.provider,
                    "model": ticket.model,
                    "state": ticket.state.value,
                    "retry_after_s": ticket.retry_after_ms / 1000,
                },
            )
        return ticket

    async def record(self, ticket: Admission, verdict: Verdict, latency_s: float) -> bool:
        if verdict is Verdict.NEUTRAL and not ticket.probe:
            return True  # counts for nothing and frees no probe slot: no need to ask the store
        try:
            after, transition = await self._store.record(
                ticket.model,
                self.policy,
                self._now_ms(),
                verdict,
                probe=ticket.probe,
                latency_ms=round(latency_s * 1000, 3),
            )
        except ServiceError as exc:
            _log.warning("breaker_store_failed", extra={"operation": "record", "error": exc.code})
            return True
        self._seen(ticket.model, ticket.provider, after.state, transition, after)
        return after.state is BreakerState.CLOSED

    async def views(self, specs: Sequence[ModelSpec]) -> dict[str, BreakerView]:
        records = await self._store.records([spec.qualified_id for spec in specs])
        now_ms = self._now_ms()
        return {
            spec.qualified_id: view(records.get(spec.qualified_id, BreakerRecord()), self.policy, now_ms)
            for spec in specs
        }

    def _seen(
        self,
        model: str,
        provider: str,
        state: BreakerState,
        transition: Transition | None,
        current: BreakerRecord | None = None,
    ) -> None:
        """Report what one step showed: the transition it made (once, by the instance that made it) and the gauge."""
        if transition is not None:
            self._metrics.increment(
                "breaker_transitions_total", provider=provider, model=model, to=transition.after.value
            )
            details: dict[str, object] = {
                "provider": provider,
                "model": model,
                "from_state": transition.before.value,
                "to_state": transition.after.value,
                "reason": transition.reason,
            }
            if current is not None:
                details["consecutive_failures"] = current.consecutive_failures
            level = logging.WARNING if transition.after is BreakerState.OPEN else logging.INFO
            _log.log(level, "breaker_state_changed", extra=details)
        previous = self._levels.get(model)
        if previous != state.level:
            self._levels[model] = state.level
            self._metrics.gauge_add("breaker_state", state.level - (previous or 0), provider=provider, model=model)
