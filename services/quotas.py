"""Use case: the quota gate every modality's entry point passes before any vendor is called.

``admit`` first applies the credential's model allow-list (an API key may be limited to some models: the requested
one outside it is a 403 naming it, fallbacks outside it are skipped), then the customer's limits (settings defaults,
under the customer's override) and the API key's own limits when the caller's key has any. When anything is limited
it *reserves* in the ``QuotaStore``, in one atomic step on the store for the customer and the key together: one
request, one slot in flight and, when tokens or spend are limited, the call's estimate (input counted from the
request, output from ``max_tokens``, priced at the dearest candidate). Over a limit is a ``QuotaExceededError``
(429), raised before the runner starts; once admitted, the limit closest to refusing is reported to the request
(``report_rate_status``) for its ``X-RateLimit-*`` headers.

What a call actually consumed is counted from its usage records as the runner writes them, one per attempt
(``MeteredLedger``), for every customer whose tokens or spend are limited (calls the gate never admitted, such as CLI
chat or live sessions, included). The ``Admission`` is *settled* when the call ends (``release``, ``async with``, or
``guard`` around a run): its reservation is dropped. Records come before the settle, so for a moment a call's cost is
both spent and held (refusing a little early) but never neither. Reservations expire after ``reservation_ttl_s``; a
background task renews those of calls still running, so only a crashed process's holds lapse, and whatever the
crashed call recorded stays counted. A customer's counters start, each day and month, no lower than the usage
ledger's totals, so a restart of the embedded store or a flushed Redis does not reopen a spent budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TypeVar

from attrs import define, field, frozen

from domain.catalog import ModelSpec
from domain.errors import AuthorizationError, ServiceError
from domain.metering import Units
from domain.pricing import cost_usd
from domain.quotas import Consumption, LimitOverride, Limits, QuotaUsage, Refusal, Reservation, Windows, to_units
from domain.usage import UsageRecord, UsageTotal
from ports.quotas import QuotaOverrideStore, QuotaStore
from ports.usage import GroupBy, UsageLedger
from services.attempts import Caller, Candidates
from services.principal import allows_model, current_principal, report_rate_status

__all__ = ["Admission", "Estimator", "MeteredLedger", "QuotaGate", "QuotaPolicy", "quota_gate_resource"]

_log = logging.getLogger("switchyard.quotas")
T = TypeVar("T")

Estimator = Callable[[int], Units]
"""What a call is expected to consume, given the output tokens to assume when the request sets no bound."""
Price = Callable[[Units, ModelSpec], "float | None"]


@frozen
class QuotaPolicy:
    """The gate's configuration (from the ``quotas`` settings)."""

    defaults: Limits = field(factory=Limits)
    reservation_ttl_s: float = 60.0
    default_output_tokens: int = 4096
    overrides_ttl_s: float = 5.0


@define
class _Seen:
    """What the gate remembers of a customer: its override (and when read), and the period its spend was seeded."""

    override: LimitOverride | None = None
    read_at: float = float("-inf")
    seeded: tuple[str, str] | None = None
    seed_retry_at: float = float("-inf")


class Admission:
    """One admitted call: the models it may use and, when something is limited, its reservation until settled."""

    def __init__(
        self, gate: QuotaGate, candidates: Candidates, reservation: Reservation | None, *, detached: bool = False
    ) -> None:
        self.candidates = candidates
        self.reservation = reservation
        self._gate = gate
        # Detached: settled by whoever ends the work (``QuotaGate.release_detached``), never by this object.
        self._released = reservation is None or detached

    @property
    def open(self) -> bool:
        return not self._released

    async def release(self) -> None:
        """Settle the call: drop its reservation (once; later calls do nothing)."""
        if self._released:
            return
        self._released = True
        assert self.reservation is not None
        # Shielded: a call ended by cancellation still gives its hold back now rather than at its expiry.
        await asyncio.shield(self._gate._settle(self.reservation))

    async def __aenter__(self) -> Admission:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.release()

    async def guard(self, steps: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
        """``steps`` (a runner's run), settled when it ends or is closed: for calls that outlive their entry point."""
        try:
            async with contextlib.aclosing(steps):
                async for step in steps:
                    yield step
        finally:
            await self.release()


class QuotaGate:
    """Allow-lists, limits and budgets in front of every vendor call; ``store`` ``None`` limits nothing."""

    def __init__(
        self,
        store: QuotaStore | None,
        overrides: QuotaOverrideStore | None = None,
        policy: QuotaPolicy | None = None,
        *,
        ledger: UsageLedger | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or QuotaPolicy()
        self._store = store
        self._overrides = overrides
        self._ledger = ledger
        self._clock = clock
        self._monotonic = monotonic
        self._seen: dict[str, _Seen] = {}
        # Weak: an admission dropped without being settled stops being renewed, and its reservation lapses.
        self._open: weakref.WeakValueDictionary[str, Admission] = weakref.WeakValueDictionary()
        self._renewer: asyncio.Task[None] | None = None

    @classmethod
    def unlimited(cls) -> QuotaGate:
        """A gate that only applies allow-lists (services built without quotas, tests)."""
        return cls(None)

    # --- admission --------------------------------------------------------------------------------------------------

    async def admit(
        self,
        caller: Caller,
        candidates: Candidates,
        estimate: Estimator,
        *,
        price: Price = cost_usd,
        detached_id: str | None = None,
        hold_s: float | None = None,
    ) -> Admission:
        """The call's admission: 403 for a model its key may not use, 429 over a limit; never calls a vendor.

        A *detached* admission (``detached_id``, for work that outlives this process's part in it, such as a video
        job another worker may finish) reserves under that id for ``hold_s`` seconds without renewal; whoever ends
        the work settles it with ``release_detached``, and it lapses at its expiry otherwise."""
        candidates = _allowed(candidates)
        if self._store is None:
            return Admission(self, candidates, None)
        customer = caller.customer_id
        limits = await self.limits_for(customer)
        key_id, key_limits = _key_limits(customer)
        if not limits.any and key_limits is None:
            return Admission(self, candidates, None)
        now = self._clock()
        windows = Windows.at(now)
        asked = Consumption()
        if limits.counts_consumption or (key_limits is not None and key_limits.counts_consumption):
            asked = await self._demand(candidates, estimate, price)
            if limits.daily_budget_usd is not None or limits.monthly_budget_usd is not None:
                await self._seed(customer, windows)
        ttl = self.policy.reservation_ttl_s if hold_s is None else hold_s
        reservation = Reservation(detached_id or f"q_{uuid.uuid4().hex}", customer, asked, now + ttl, key_id)
        answer = await self._store.reserve(reservation, limits, windows, now, key_limits)
        if isinstance(answer, Refusal):
            _log.info("quota_refused", extra={"customer_id": customer, "limit": answer.limit, "scope": answer.scope})
            raise answer.error(asked, windows)
        report_rate_status(answer.tightest(windows))
        admission = Admission(self, candidates, reservation, detached=detached_id is not None)
        if detached_id is not None:
            return admission
        self._open[reservation.id] = admission
        self._start_renewing()
        return admission

    async def _demand(self, candidates: Candidates, estimate: Estimator, price: Price) -> Consumption:
        # Counting a large prompt is CPU work (tiktoken: ~0.1 s per MB): off the event loop.
        units = await asyncio.to_thread(estimate, self.policy.default_output_tokens)
        dearest = max((price(units, spec) or 0.0 for spec in candidates.models), default=0.0)
        return Consumption(units.input_tokens + units.output_tokens, to_units(dearest))

    async def _settle(self, reservation: Reservation) -> None:
        assert self._store is not None
        self._open.pop(reservation.id, None)
        try:
            await self._store.settle(reservation.customer_id, reservation.id, Consumption(), Windows.at(self._clock()))
        except ServiceError:  # it lapses at its expiry instead
            _log.warning("quota_settle_failed", extra={"customer_id": reservation.customer_id})

    # --- usage as it is recorded ------------------------------------------------------------------------------------

    async def release_detached(self, customer_id: str, reservation_id: str) -> None:
        """Settle a detached admission (any instance may: the id names it); nothing when it is gone already."""
        if self._store is None:
            return
        try:
            await self._store.settle(customer_id, reservation_id, Consumption(), Windows.at(self._clock()))
        except ServiceError:  # it lapses at its expiry instead
            _log.warning("quota_settle_failed", extra={"customer_id": customer_id})

    async def count(self, record: UsageRecord, *, key_id: str | None = None) -> None:
        """Count one usage record (one attempt) for a customer whose tokens or spend are limited, and for the API key
        of the call it was written for when that key limits them. Never raises: the record must reach the ledger
        whatever happens here.

        The key is ``key_id`` when given (work that ran apart from its request, such as a video job, names it), else
        the caller bound to the context the record is written in (``services/principal.py``): records are written by
        the call's own task or by tasks it started, which inherit it."""
        if self._store is None:
            return
        consumed = Consumption(record.input_tokens + record.output_tokens, to_units(record.cost_usd))
        if consumed == Consumption():
            return
        if key_id is None:
            key_id, key_limits = _key_limits(record.customer_id)
            if key_limits is None or not key_limits.counts_consumption:
                key_id = None
        try:
            if key_id is not None or (await self.limits_for(record.customer_id)).counts_consumption:
                await self._store.settle(record.customer_id, None, consumed, Windows.at(self._clock()), key_id)
        except ServiceError:
            _log.warning("quota_count_failed", extra={"customer_id": record.customer_id})

    # --- limits -----------------------------------------------------------------------------------------------------

    async def limits_for(self, customer_id: str) -> Limits:
        """The customer's limits: the defaults under its override (re-read every ``overrides_ttl_s``).

        When the overrides cannot be read (the database is down) the last override read stands, or the defaults for a
        customer never read: serving goes on (it needs no database otherwise), and the read is retried after the TTL.
        """
        if self._overrides is None:
            return self.policy.defaults
        seen = self._seen.setdefault(customer_id, _Seen())
        now = self._monotonic()
        if now - seen.read_at >= self.policy.overrides_ttl_s:
            seen.read_at = now
            try:
                seen.override = await self._overrides.get(customer_id)
            except ServiceError:
                _log.warning("quota_override_unreadable", extra={"customer_id": customer_id})
        return self.policy.defaults.over(seen.override)

    def forget(self, customer_id: str) -> None:
        """Drop the cached override (after this instance changed it)."""
        self._seen.pop(customer_id, None)

    async def usage(self, customer_id: str) -> QuotaUsage:
        """The customer's counters now (empty when nothing is counted)."""
        if self._store is None:
            return QuotaUsage()
        now = self._clock()
        return await self._store.usage(customer_id, Windows.at(now), now)

    async def _seed(self, customer: str, windows: Windows) -> None:
        """Once a day per customer: lift the spend counters to the ledger's totals (lost counters, a restart)."""
        seen = self._seen.setdefault(customer, _Seen())
        period = (windows.day, windows.month)
        if self._ledger is None or seen.seeded == period or self._monotonic() < seen.seed_retry_at:
            return
        month_start = datetime.strptime(windows.month, "%Y%m").replace(tzinfo=UTC)
        today = datetime.strptime(windows.day, "%Y%m%d").replace(tzinfo=UTC)
        try:
            totals = await self._ledger.totals(customer, start=month_start, end=None, group_by="day")
            day, month = _day_and_month(totals, today)
            assert self._store is not None
            await self._store.raise_spend(customer, windows, to_units(day), to_units(month))
        except ServiceError:
            seen.seed_retry_at = self._monotonic() + 60.0
            _log.warning("quota_seed_failed", extra={"customer_id": customer})
            return
        seen.seeded = period

    # --- renewal ----------------------------------------------------------------------------------------------------

    def _start_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_forever(), name="quota-renewal")

    async def _renew_forever(self) -> None:
        interval = max(0.05, self.policy.reservation_ttl_s / 3)
        while self._open:
            await asyncio.sleep(interval)
            await self.renew()

    async def renew(self) -> None:
        """Push back the expiry of every reservation of a call still running on this instance."""
        if self._store is None:
            return
        held: dict[str, list[str]] = {}
        for reservation_id, admission in list(self._open.items()):
            if admission.open and admission.reservation is not None:
                held.setdefault(admission.reservation.customer_id, []).append(reservation_id)
        if not held:
            return
        try:
            await self._store.renew(held, self._clock() + self.policy.reservation_ttl_s)
        except ServiceError:
            _log.warning("quota_renew_failed", extra={"reservations": sum(map(len, held.values()))})

    async def aclose(self) -> None:
        """Stop renewing (reservations of calls still running lapse at their expiry)."""
        if self._renewer is not None and not self._renewer.done():
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer


def _key_limits(customer_id: str) -> tuple[str | None, Limits | None]:
    """The API key of the current caller and its own limits, when it has any and acts for ``customer_id``."""
    principal = current_principal()
    if principal is None or principal.key_id is None or principal.key_limits is None:
        return None, None
    if principal.customer_id != customer_id or not principal.key_limits.any:
        return None, None
    return principal.key_id, principal.key_limits


def _allowed(candidates: Candidates) -> Candidates:
    """``candidates`` as the caller's credential allows: 403 naming the model asked for when it is outside the key's
    allow-list; fallbacks outside it are dropped."""
    primary = candidates.primary
    if not allows_model(primary):
        principal = current_principal()
        allowed = sorted(principal.models or ()) if principal is not None else []
        raise AuthorizationError(
            f"this API key may not use model {primary.qualified_id!r}",
            context={"model": primary.qualified_id, "allowed_models": allowed},
        )
    return Candidates(candidates.capability, tuple(spec for spec in candidates.models if allows_model(spec)))


def _day_and_month(totals: Sequence[UsageTotal], today: datetime) -> tuple[float, float]:
    """Today's and the month's spend from per-day totals (a day group is ``YYYY-MM-DD``)."""
    day_key = today.strftime("%Y-%m-%d")
    month = sum(total.cost_usd for total in totals)
    day = sum(total.cost_usd for total in totals if total.group == day_key)
    return day, month


class MeteredLedger:
    """The usage ledger as the attempt runner sees it: each record is counted by the quota gate, then written."""

    def __init__(self, ledger: UsageLedger, gate: QuotaGate) -> None:
        self._ledger = ledger
        self._gate = gate

    async def record(self, record: UsageRecord) -> None:
        await self._gate.count(record)
        await self._ledger.record(record)

    async def totals(
        self, customer_id: str, *, start: datetime | None, end: datetime | None, group_by: GroupBy
    ) -> list[UsageTotal]:
        return await self._ledger.totals(customer_id, start=start, end=end, group_by=group_by)


async def quota_gate_resource(
    store: QuotaStore | None,
    overrides: QuotaOverrideStore | None,
    policy: QuotaPolicy,
    ledger: UsageLedger | None = None,
    schema_ready: object = None,
) -> AsyncIterator[QuotaGate]:
    """Container resource: the gate; at shutdown its renewal stops. ``schema_ready`` only orders start-up."""
    del schema_ready
    gate = QuotaGate(store, overrides, policy, ledger=ledger)
    try:
        yield gate
    finally:
        await gate.aclose()
