"""Driven adapter: in-process implementation of ``QuotaStore``, the embedded default (no Redis).

Each method runs without awaiting, so on one event loop it is as atomic as the Redis scripts are on the server. The
counters live in this process only: with ``http.workers`` > 1 and no Redis, each worker enforces the limits on its
own. Windows no longer current are dropped as new ones are written, so memory stays bounded by the customers seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from attrs import define, field

from domain.quotas import Consumption, Limits, QuotaUsage, Refusal, Reservation, Windows, to_units, to_usd

__all__ = ["InMemoryQuotaStore"]


@define
class _Customer:
    """One customer's counters: reservations held, and usage settled per window key."""

    held: dict[str, Reservation] = field(factory=dict)
    requests: dict[str, int] = field(factory=dict)  # minute -> requests
    tokens: dict[str, int] = field(factory=dict)  # minute -> tokens settled
    spent: dict[str, int] = field(factory=dict)  # "d<day>" / "m<month>" -> units

    def purge(self, now: float) -> None:
        for key in [key for key, held in self.held.items() if held.expires_at <= now]:
            del self.held[key]

    def holding(self) -> Consumption:
        return Consumption(
            sum(r.holds.tokens for r in self.held.values()), sum(r.holds.usd_units for r in self.held.values())
        )

    def forget_old(self, windows: Windows) -> None:
        for counters, keep in ((self.requests, {windows.minute}), (self.tokens, {windows.minute})):
            for key in [key for key in counters if key not in keep]:
                del counters[key]
        current = {f"d{windows.day}", f"m{windows.month}"}
        for key in [key for key in self.spent if key not in current]:
            del self.spent[key]


class InMemoryQuotaStore:
    """Counters in a dict per customer."""

    def __init__(self) -> None:
        self._customers: dict[str, _Customer] = {}

    def _customer(self, customer_id: str, windows: Windows) -> _Customer:
        customer = self._customers.setdefault(customer_id, _Customer())
        customer.forget_old(windows)
        return customer

    async def reserve(self, reservation: Reservation, limits: Limits, windows: Windows, now: float) -> Refusal | None:
        customer = self._customer(reservation.customer_id, windows)
        customer.purge(now)
        if reservation.id in customer.held:
            return None
        held = customer.holding()
        asked = reservation.holds
        checks = (
            ("concurrent_streams", limits.concurrent_streams, 0, len(customer.held), 1),
            ("requests_per_minute", limits.requests_per_minute, customer.requests.get(windows.minute, 0), 0, 1),
            ("tokens_per_minute", limits.tokens_per_minute, customer.tokens.get(windows.minute, 0), held.tokens,
             asked.tokens),
            ("daily_budget_usd", limits.daily_budget_usd, customer.spent.get(f"d{windows.day}", 0), held.usd_units,
             asked.usd_units),
            ("monthly_budget_usd", limits.monthly_budget_usd, customer.spent.get(f"m{windows.month}", 0),
             held.usd_units, asked.usd_units),
        )  # fmt: skip
        for name, limit, used, holding, wanted in checks:
            if limit is None:
                continue
            allowed = to_units(limit) if name.endswith("_usd") else int(limit)
            if used + holding + wanted > allowed:
                return Refusal(name, allowed, used, holding)  # type: ignore[arg-type]
        customer.held[reservation.id] = reservation
        customer.requests[windows.minute] = customer.requests.get(windows.minute, 0) + 1
        return None

    async def settle(
        self, customer_id: str, reservation_id: str | None, consumed: Consumption, windows: Windows
    ) -> None:
        customer = self._customer(customer_id, windows)
        if reservation_id is not None:
            customer.held.pop(reservation_id, None)
        if consumed.tokens:
            customer.tokens[windows.minute] = customer.tokens.get(windows.minute, 0) + consumed.tokens
        if consumed.usd_units:
            for key in (f"d{windows.day}", f"m{windows.month}"):
                customer.spent[key] = customer.spent.get(key, 0) + consumed.usd_units

    async def renew(self, held: Mapping[str, Sequence[str]], expires_at: float) -> None:
        for customer_id, ids in held.items():
            customer = self._customers.get(customer_id)
            if customer is None:
                continue
            for reservation_id in ids:
                reservation = customer.held.get(reservation_id)
                if reservation is not None:
                    customer.held[reservation_id] = Reservation(
                        reservation.id, reservation.customer_id, reservation.holds, expires_at
                    )

    async def raise_spend(self, customer_id: str, windows: Windows, day_units: int, month_units: int) -> None:
        customer = self._customer(customer_id, windows)
        for key, floor in ((f"d{windows.day}", day_units), (f"m{windows.month}", month_units)):
            customer.spent[key] = max(customer.spent.get(key, 0), floor)

    async def usage(self, customer_id: str, windows: Windows, now: float) -> QuotaUsage:
        customer = self._customer(customer_id, windows)
        customer.purge(now)
        held = customer.holding()
        return QuotaUsage(
            in_flight=len(customer.held),
            held_tokens=held.tokens,
            held_usd=to_usd(held.usd_units),
            requests_this_minute=customer.requests.get(windows.minute, 0),
            tokens_this_minute=customer.tokens.get(windows.minute, 0),
            spent_today_usd=to_usd(customer.spent.get(f"d{windows.day}", 0)),
            spent_this_month_usd=to_usd(customer.spent.get(f"m{windows.month}", 0)),
        )
