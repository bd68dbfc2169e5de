"""Driven adapter: the SQLAlchemy Core tables behind the usage ledger (the migrations must agree with these).

Rows are mapped to and from the attrs ``UsageRecord`` explicitly in ``adapters/sqlalchemy/ledger.py``; nothing here
knows about the domain.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
    false,
)

__all__ = ["METADATA", "UtcDateTime", "usage_records"]

# Explicit constraint names, so migrations can drop them by name on every backend.
METADATA: Final = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC: SQLite keeps no offset, so values are normalised on the way in and out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: usage timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


usage_records: Final = Table(
    "usage_records",
    METADATA,
    # The id is assigned when the record is queued, so a batch written twice (retry, spill replay) stays one row.
    Column("id", String(64), primary_key=True),
    Column("request_id", String(128), nullable=False),
    Column("stream_id", String(128), nullable=True),
    Column("customer_id", String(255), nullable=False),
    Column("capability", String(32), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("model", String(255), nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("input_tokens", Integer, nullable=False, server_default="0"),
    Column("output_tokens", Integer, nullable=False, server_default="0"),
    Column("cached_tokens", Integer, nullable=False, server_default="0"),
    Column("reasoning_tokens", Integer, nullable=False, server_default="0"),
    Column("audio_seconds", Float, nullable=False, server_default="0"),
    Column("characters", Integer, nullable=False, server_default="0"),
    Column("images", Integer, nullable=False, server_default="0"),
    Column("video_seconds", Float, nullable=False, server_default="0"),
    Column("cost_usd", Float, nullable=False, server_default="0"),
    Column("latency_ms", Float, nullable=False, server_default="0"),
    Column("ttft_ms", Float, nullable=True),
    Column("retries", Integer, nullable=False, server_default="0"),
    Column("fallback_used", String(255), nullable=True),
    # True when the token counts are a tokenizer's estimate (a cut stream), not the vendor's report.
    Column("estimated", Boolean, nullable=False, server_default=false()),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_usage_records_customer_created", "customer_id", "created_at"),
)
