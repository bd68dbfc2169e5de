"""Usage records: ``video_seconds``, the unit video generation is billed in (the other units exist since 0001).

Revision ID: 0003_usage_video_seconds
Revises: 0002_usage_estimated
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_usage_video_seconds"
down_revision: str | None = "0002_usage_estimated"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch_alter_table: a plain ALTER on PostgreSQL, a table copy on SQLite.
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("video_seconds", sa.Float(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("video_seconds")
