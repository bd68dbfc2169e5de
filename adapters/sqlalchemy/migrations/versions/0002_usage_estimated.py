"""Usage records: ``estimated``, true when the token counts are a tokenizer's estimate (a cut stream).

Revision ID: 0002_usage_estimated
Revises: 0001_usage_records
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_usage_estimated"
down_revision: str | None = "0001_usage_records"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows are the vendors' own figures: false. batch_alter_table is a plain ALTER on PostgreSQL and a
    # table copy on SQLite (whose DROP COLUMN is new and limited).
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("estimated", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("estimated")
