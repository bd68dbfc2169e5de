"""Driven adapter: in-process implementation of ``QuotaStore``, the embedded default (no Redis).

Each method runs without awaiting, so on one event loop it is as atomic as the Redis scripts are on the server. The
counters live in this process only, which is why ``switchyard serve`` refuses several workers with limits configured
and no Redis (``entrypoints/cli.py``). Windows no longer current are dropped as new ones are written, so memory stays
bounded by the customers and keys seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from attrs import define, evolve, field

from domain.quotas import (
    Consumption,
    Grant,
    LimitName,
    Limits,
    QuotaUsage,
    Refusal,
    Reservation,
    Scope,
    Standing,
    Windows,
    to_units,
    to_usd,
)

__all__ = ["InMemoryQuotaStore"]

_ORDER: tuple[LimitName, ...] = (
    "concurrent_streams",
    "requests_per_minute",
    "tokens_per_minute",
    "daily_budget_usd",
    "monthly_budget_usd",
)


@define
class _Counters:
    """Usage settled per window key, for a customer or one of its keys."""

    requests: dict[str, int] = field(factory=dict)  # minute -> requests
    tokens: dict[str, int] = field(factory=dict)  # minute -> tokens settled
    spent: dict[str, int] = field(factory=dict)  # "d<day>" / "m<month>" -> units

    def forget_old(self, windows: Windows) -> None:
        for counters in (self.requests, self.tokens):
            for key in [key for key in counters if key != windows.minute]:
                del counters[key]
        current = {f"d{windows.day}", f"m{windows.month}"}
        for key in [key for key in self.spent if key not in current]:
            del self.spent[key]

    def count(self, consumed: Consumption, windows: Windows) -> None:
        if consumed.tokens:
            self.tokens[windows.minute] = self.tokens.get(windows.minute, 0) + consumed.tokens
        if consumed.usd_units:
            for key in (f"d{windows.day}", f"m{windows.month}"):
                self.spent[key] = self.spent.get(key, 0) + consumed.usd_units

    def used(self, limit: LimitName, windows: Windows) -> int:
        return {
            "concurrent_streams": 0,
            "requests_per_minute": self.requests.get(windows.minute, 0),
            "tokens_per_minute": self.tokens.get(windows.minute, 0),
            "daily_budget_usd": self.spent.get(f"d{windows.day}", 0),
            "monthly_budget_usd": self.spent.get(f"m{windows.month}", 0),
        }[limit]


@define
class _Customer:
    """One customer's reservations held (each naming its key, if any), its counters and its keys' counters."""

    held: dict[str, Reservation] = field(factory=dict)
    counters: _Counters = field(factory=_Counters)
    keys: dict[str, _Counters] = field(factory=dict)

    def purge(self, now: float) -> None:
        for key in [key for key, held in self.held.items() if held.expires_at <= now]:
            del self.held[key]

    def holding(self, key_id: str | None = None) -> tuple[int, Consumption]:
        """Calls in flight and what they hold (of one key when given)."""
        mine = [r for r in self.held.values() if key_id is None or r.key_id == key_id]
        return len(mine), Consumption(sum(r.holds.tokens for r in mine), sum(r.holds.usd_units for r in mine))

    def key(self, key_id: str, windows: Windows) -> _Counters:
        counters = self.keys.setdefault(key_id, _Counters())
        counters.forget_old(windows)
        return counters


def _checks(
    limits: Limits, counters: _Counters, in_flight: int, held: Consumption, asked: Consumption, windows: Windows
) -> list[tuple[LimitName, int, int, int, int]]:
    """(limit, allowed, settled in its window, held in flight, asked) for every limit set, in checking order."""
    rows: list[tuple[LimitName, int, int, int, int]] = []
    for name in _ORDER:
        value = getattr(limits, name)
        if value is None:
            continue
        allowed = to_units(value) if name.endswith("_usd") else int(value)
        holding, wanted = {
            "concurrent_streams": (in_flight, 1),
            "requests_per_minute": (0, 1),
            "tokens_per_minute": (held.tokens, asked.tokens),
            "daily_budget_usd": (held.usd_units, asked.usd_units),
            "monthly_budget_usd": (held.usd_units, asked.usd_units),
        }[name]
        rows.append((name, allowed, counters.used(name, windows), holding, wanted))
    return rows


def _standing(scope: Scope, name: LimitName, allowed: int, used: int, holding: int, wanted: int) -> Standing:
    """Where a limit stands once this call is counted: its request in the minute's count, its holds in flight."""
    if name == "requests_per_minute":
        return Standing(name, allowed, used + wanted, holding, scope)
    return Standing(name, allowed, used, holding + wanted, scope)


class InMemoryQuotaStore:
    """Counters in a dict per customer."""

    def __init__(self) -> None:
        self._customers: dict[str, _Customer] = {}

    def _customer(self, customer_id: str, windows: Windows) -> _Customer:
        customer = self._customers.setdefault(customer_id, _Customer())
        customer.counters.forget_old(windows)
        return customer

    async def reserve(
        self, reservation: Reservation, limits: Limits, windows: Windows, now: float, key_limits: Limits | None = None
    ) -> Refusal | Grant:
        customer = self._customer(reservation.customer_id, windows)
        customer.purge(now)
        if reservation.id in customer.held:
            return Grant()
        asked = reservation.holds
        scopes: list[tuple[Scope, list[tuple[LimitName, int, int, int, int]]]] = []
        key = None
        n, held = customer.holding()
        scopes.append(("customer", _checks(limits, customer.counters, n, held, asked, windows)))
        if reservation.key_id is not None and key_limits is not None:
            key = customer.key(reservation.key_id, windows)
            n, held = customer.holding(reservation.key_id)
            scopes.append(("key", _checks(key_limits, key, n, held, asked, windows)))
        for scope, rows in scopes:
            for name, allowed, used, holding, wanted in rows:
                if used + holding + wanted > allowed:
                    return Refusal(name, allowed, used, holding, scope)
        customer.held[reservation.id] = reservation
        for counters in (customer.counters, key):
            if counters is not None:
                counters.requests[windows.minute] = counters.requests.get(windows.minute, 0) + 1
        return Grant(tuple(_standing(scope, *row) for scope, rows in scopes for row in rows))

    async def settle(
        self,
        customer_id: str,
        reservation_id: str | None,
        consumed: Consumption,
        windows: Windows,
        key_id: str | None = None,
    ) -> None:
        customer = self._customer(customer_id, windows)
        if reservation_id is not None:
            customer.held.pop(reservation_id, None)
        customer.counters.count(consumed, windows)
        if key_id is not None:
            customer.key(key_id, windows).count(consumed, windows)

    async def renew(self, held: Mapping[str, Sequence[str]], expires_at: float) -> None:
        for customer_id, ids in held.items():
            customer = self._customers.get(customer_id)
            if customer is None:
                continue
            for reservation_id in ids:
                reservation = customer.held.get(reservation_id)
                if reservation is not None:
                    customer.held[reservation_id] = evolve(reservation, expires_at=expires_at)

    async def raise_spend(self, customer_id: str, windows: Windows, day_units: int, month_units: int) -> None:
        spent = self._customer(customer_id, windows).counters.spent
        for key, floor in ((f"d{windows.day}", day_units), (f"m{windows.month}", month_units)):
            spent[key] = max(spent.get(key, 0), floor)

    async def usage(self, customer_id: str, windows: Windows, now: float, key_id: str | None = None) -> QuotaUsage:
        customer = self._customer(customer_id, windows)
        customer.purge(now)
        counters = customer.counters if key_id is None else customer.key(key_id, windows)
        in_flight, held = customer.holding(key_id)
        return QuotaUsage(
            in_flight=in_flight,
            held_tokens=held.tokens,
            held_usd=to_usd(held.usd_units),
            requests_this_minute=counters.requests.get(windows.minute, 0),
            tokens_this_minute=counters.tokens.get(windows.minute, 0),
            spent_today_usd=to_usd(counters.spent.get(f"d{windows.day}", 0)),
            spent_this_month_usd=to_usd(counters.spent.get(f"m{windows.month}", 0)),
        )
