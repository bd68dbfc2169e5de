"""Driven port: the usage ledger (one record per provider call, written off the hot path)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from domain.usage import UsageRecord, UsageTotal

__all__ = ["GroupBy", "UsageLedger"]

GroupBy = Literal["model", "provider", "capability", "day"]


class UsageLedger(Protocol):
    """Records usage without blocking the caller and answers a customer's totals."""

    async def record(self, record: UsageRecord) -> None:
        """Queue ``record`` for writing; returns at once (never loses it, even when the database is down)."""
        ...

    async def totals(
        self, customer_id: str, *, start: datetime | None, end: datetime | None, group_by: GroupBy
    ) -> list[UsageTotal]:
        """The customer's totals in ``[start, end)``, grouped."""
        ...
