"""Use case: a customer's own usage totals over a time window, from the usage ledger."""

from __future__ import annotations

from datetime import datetime

from attrs import frozen

from domain.errors import ValidationError
from domain.usage import UsageTotal
from ports.usage import GroupBy, UsageLedger

__all__ = ["UsageReport", "UsageService"]


@frozen
class UsageReport:
    """Totals of one customer in ``[start, end)`` (open-ended when a bound is ``None``), one row per group."""

    customer_id: str
    group_by: GroupBy
    start: datetime | None
    end: datetime | None
    totals: list[UsageTotal]


@frozen
class UsageService:
    """Reads totals for the caller only: the customer id always comes from the authenticated caller."""

    ledger: UsageLedger

    async def report(
        self, customer_id: str, *, start: datetime | None, end: datetime | None, group_by: GroupBy
    ) -> UsageReport:
        """The caller's totals; ``ValidationError`` on ``to`` when the window is empty or reversed."""
        if start is not None and end is not None and end <= start:
            raise ValidationError("to", "must be later than from")
        totals = await self.ledger.totals(customer_id, start=start, end=end, group_by=group_by)
        return UsageReport(customer_id=customer_id, group_by=group_by, start=start, end=end, totals=totals)
