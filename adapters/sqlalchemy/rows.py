"""Driven adapter: explicit mapping between ``usage_records`` rows and the attrs ``UsageRecord`` / ``UsageTotal``,
and the dialect-specific pieces of the ledger's SQL (idempotent insert, UTC day key)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import ColumnElement, Insert, func
from sqlalchemy.dialects import postgresql, sqlite

from adapters.sqlalchemy.tables import usage_records
from domain.usage import UsageRecord, UsageTotal
from ports.usage import GroupBy

__all__ = ["NOT_ERRORS", "group_key", "insert_ignoring_duplicates", "record_to_row", "total_from_row"]

NOT_ERRORS: Final = ("done", "cancelled")
"""Outcomes that are not errors; any other outcome is an error code."""


def record_to_row(record: UsageRecord) -> dict[str, Any]:
    """The row of ``record``, column by column."""
    return {
        "id": record.id,
        "request_id": record.request_id,
        "stream_id": record.stream_id,
        "customer_id": record.customer_id,
        "capability": record.capability,
        "provider": record.provider,
        "model": record.model,
        "outcome": record.outcome,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cached_tokens": record.cached_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "audio_seconds": record.audio_seconds,
        "characters": record.characters,
        "images": record.images,
        "video_seconds": record.video_seconds,
        "cost_usd": record.cost_usd,
        "latency_ms": record.latency_ms,
        "ttft_ms": record.ttft_ms,
        "retries": record.retries,
        "fallback_used": record.fallback_used,
        "estimated": record.estimated,
        "created_at": record.created_at,
    }


def insert_ignoring_duplicates(dialect: str) -> Insert:
    """An INSERT that skips ids already present (PostgreSQL and SQLite: ``ON CONFLICT (id) DO NOTHING``)."""
    if dialect == "postgresql":
        return postgresql.insert(usage_records).on_conflict_do_nothing(index_elements=["id"])
    if dialect == "sqlite":
        return sqlite.insert(usage_records).on_conflict_do_nothing(index_elements=["id"])
    return usage_records.insert()  # other backends: no idempotent insert, duplicates fail loudly instead


def group_key(group_by: GroupBy, dialect: str) -> ColumnElement[Any]:
    """The GROUP BY expression: the model, the provider, the capability, or the UTC day as ``YYYY-MM-DD``."""
    column = usage_records.c
    if group_by == "model":
        return column.model
    if group_by == "provider":
        return column.provider
    if group_by == "capability":
        return column.capability
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column.created_at), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column.created_at)  # SQLite stores UTC text (see UtcDateTime)


def total_from_row(row: Sequence[Any]) -> UsageTotal:
    """A ``UsageTotal`` from ``(group, requests, errors, input_tokens, output_tokens, cost_usd, estimated, images,
    characters, audio_seconds, video_seconds)``."""
    return UsageTotal(
        group=str(row[0]),
        requests=int(row[1]),
        errors=int(row[2]),
        input_tokens=int(row[3]),
        output_tokens=int(row[4]),
        cost_usd=float(row[5]),
        estimated=int(row[6]),
        images=int(row[7]),
        characters=int(row[8]),
        audio_seconds=float(row[9]),
        video_seconds=float(row[10]),
    )
