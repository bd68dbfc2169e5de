"""Per-key limits: an API key's own requests/tokens per minute, calls in flight and daily/monthly budget (NULL: none),
and on video jobs the key (with limits of its own) that submitted each, whose video spend is counted for it.

Revision ID: 0006_key_limits
Revises: 0005_tenancy
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_key_limits"
down_revision: str | None = "0005_tenancy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("requests_per_minute", sa.Integer),
    ("tokens_per_minute", sa.Integer),
    ("concurrent_streams", sa.Integer),
    ("daily_budget_usd", sa.Float),
    ("monthly_budget_usd", sa.Float),
)


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table in place for every change (nullable adds would do, but keep one way)
    with op.batch_alter_table("api_keys") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind(), nullable=True))
    with op.batch_alter_table("video_jobs") as batch:
        batch.add_column(sa.Column("api_key_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("video_jobs") as batch:
        batch.drop_column("api_key_id")
    with op.batch_alter_table("api_keys") as batch:
        for name, _kind in reversed(_COLUMNS):
            batch.drop_column(name)
