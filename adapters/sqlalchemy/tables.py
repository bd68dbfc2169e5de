"""Driven adapter: the SQLAlchemy Core tables behind the usage ledger (the migrations must agree with these).

Rows are mapped to and from the attrs ``UsageRecord`` explicitly in ``adapters/sqlalchemy/ledger.py``; nothing here
knows about the domain.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
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
    Text,
    TypeDecorator,
    false,
)

__all__ = ["METADATA", "UtcDateTime", "api_keys", "quota_overrides", "usage_records", "video_jobs"]

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


# --- tenancy (issue 18): API keys (only their SHA-256 is stored) and per-customer limit overrides -----------------
api_keys: Final = Table(
    "api_keys",
    METADATA,
    Column("id", String(64), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(32), nullable=False, index=True),
    Column("customer_id", String(255), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("scopes", Text, nullable=False, server_default=""),  # space-separated
    Column("models", Text, nullable=True),  # space-separated allow-list; NULL allows every model
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
    # The key's own limits (migration 0006), enforced with its customer's; NULL: no limit of the key's own.
    Column("requests_per_minute", Integer, nullable=True),
    Column("tokens_per_minute", Integer, nullable=True),
    Column("concurrent_streams", Integer, nullable=True),
    Column("daily_budget_usd", Float, nullable=True),
    Column("monthly_budget_usd", Float, nullable=True),
)

quota_overrides: Final = Table(
    "quota_overrides",
    METADATA,
    # NULL inherits the quotas.* setting; -1 lifts the limit for this customer.
    Column("customer_id", String(255), primary_key=True),
    Column("requests_per_minute", Integer, nullable=True),
    Column("tokens_per_minute", Integer, nullable=True),
    Column("concurrent_streams", Integer, nullable=True),
    Column("daily_budget_usd", Float, nullable=True),
    Column("monthly_budget_usd", Float, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)


# --- video jobs (issue 16): durable, leased to one worker at a time (see adapters/sqlalchemy/video_jobs.py) ---------
video_jobs: Final = Table(
    "video_jobs",
    METADATA,
    Column("id", String(64), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("model", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("progress", Float, nullable=True),
    Column("request", JSON(), nullable=False),
    Column("stream_id", String(128), nullable=False),
    Column("served_by", String(255), nullable=True),
    Column("operation_name", String(1024), nullable=True),
    Column("operation_state", JSON(), nullable=True),
    Column("first_frame_media_id", String(64), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", String(2000), nullable=True),
    Column("error_retryable", Boolean, nullable=True),
    Column("result_media_id", String(64), nullable=True),
    Column("result_duration_s", Float, nullable=True),
    Column("result_width", Integer, nullable=True),
    Column("result_height", Integer, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("started_at", UtcDateTime(), nullable=True),
    Column("finished_at", UtcDateTime(), nullable=True),
    # Which job a worker looks at next, and the lease that makes it the only one looking.
    Column("due_at", UtcDateTime(), nullable=False),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("claims", Integer, nullable=False, server_default="0"),
    Column("api_key_id", String(64), nullable=True),  # migration 0006: the key whose own limits the job counts for
    Index("ix_video_jobs_owner_created", "owner", "created_at"),
    Index("ix_video_jobs_status_due", "status", "due_at"),
)
