"""Driven ports: the counters limits are enforced on (atomic across instances), and per-customer limit overrides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from domain.quotas import Consumption, Grant, LimitOverride, Limits, QuotaUsage, Refusal, Reservation, Windows

__all__ = ["QuotaOverrideStore", "QuotaStore"]


class QuotaStore(Protocol):
    """Per-customer counters, and per API key within a customer. Each method is one atomic step: concurrent callers
    (any instance, any process sharing the store) can never both pass on the same headroom."""

    async def reserve(
        self, reservation: Reservation, limits: Limits, windows: Windows, now: float, key_limits: Limits | None = None
    ) -> Refusal | Grant:
        """Drop the customer's expired reservations, then either hold ``reservation`` (one request this minute, one
        slot in flight, its tokens and spend) and answer where each limit now stands, or hold nothing and answer why
        not. With ``reservation.key_id`` and ``key_limits``, the key's own counters are checked and held in the same
        step: both the customer's and the key's limits must pass.

        Idempotent per reservation id (a retried call that already reserved holds once, and answers an empty grant)."""
        ...

    async def settle(
        self,
        customer_id: str,
        reservation_id: str | None,
        consumed: Consumption,
        windows: Windows,
        key_id: str | None = None,
    ) -> None:
        """Release the reservation (when it is still held, from the key's counters too) and count what was
        ``consumed`` in ``windows`` (for the customer and, given ``key_id``, for that key), in one step, so the spend
        is never counted neither held nor settled."""
        ...

    async def renew(self, held: Mapping[str, Sequence[str]], expires_at: float) -> None:
        """Push back the expiry of reservations still held (customer id -> reservation ids); gone ones stay gone."""
        ...

    async def raise_spend(self, customer_id: str, windows: Windows, day_units: int, month_units: int) -> None:
        """Make the day's and month's spend at least these (from the usage ledger, after counters were lost)."""
        ...

    async def usage(self, customer_id: str, windows: Windows, now: float, key_id: str | None = None) -> QuotaUsage:
        """The customer's counters now (given ``key_id``: that key's own)."""
        ...


class QuotaOverrideStore(Protocol):
    """Per-customer limits set by an operator (the ``quota_overrides`` table)."""

    async def get(self, customer_id: str) -> LimitOverride | None:
        """The customer's override, or ``None``."""
        ...

    async def put(self, customer_id: str, override: LimitOverride) -> None:
        """Create or replace the customer's override."""
        ...

    async def delete(self, customer_id: str) -> bool:
        """Remove the customer's override; whether there was one."""
        ...

    async def list(self) -> Mapping[str, LimitOverride]:
        """Every override by customer id."""
        ...
