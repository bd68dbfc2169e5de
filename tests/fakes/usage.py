"""Fake: an in-memory ``UsageLedger`` that keeps every record and computes totals like the SQL adapter."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import attrs

from domain.usage import UsageRecord, UsageTotal
from ports.usage import GroupBy

__all__ = ["InMemoryUsageLedger"]


class InMemoryUsageLedger:
    """``records`` holds what was recorded, in order; ids are assigned like the real ledger does."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    async def record(self, record: UsageRecord) -> None:
        if not record.id:
            record = attrs.evolve(record, id=f"rec-{len(self.records) + 1}")
        self.records.append(record)

    async def totals(
        self, customer_id: str, *, start: datetime | None, end: datetime | None, group_by: GroupBy
    ) -> list[UsageTotal]:
        groups: defaultdict[str, list[UsageRecord]] = defaultdict(list)
        for record in self.records:
            if record.customer_id != customer_id:
                continue
            if (start is not None and record.created_at < start) or (end is not None and record.created_at >= end):
                continue
            if group_by == "day":
                key = record.created_at.astimezone(UTC).strftime("%Y-%m-%d")
            else:
                key = {"model": record.model, "provider": record.provider, "capability": record.capability}[group_by]
            groups[key].append(record)
        return [
            UsageTotal(
                group=key,
                requests=len(rows),
                errors=sum(1 for r in rows if r.outcome not in ("done", "cancelled")),
                input_tokens=sum(r.input_tokens for r in rows),
                output_tokens=sum(r.output_tokens for r in rows),
                cost_usd=sum(r.cost_usd for r in rows),
                estimated=sum(1 for r in rows if r.estimated),
                images=sum(r.images for r in rows),
                characters=sum(r.characters for r in rows),
                audio_seconds=sum(r.audio_seconds for r in rows),
                video_seconds=sum(r.video_seconds for r in rows),
            )
            for key, rows in sorted(groups.items())
        ]
