"""Video jobs: durable video generation jobs, each leased to one worker at a time.

Revision ID: 0004_video_jobs
Revises: 0003_usage_video_seconds
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_video_jobs"
down_revision: str | None = "0003_usage_video_seconds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "video_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("stream_id", sa.String(length=128), nullable=False),
        sa.Column("served_by", sa.String(length=255), nullable=True),
        sa.Column("operation_name", sa.String(length=1024), nullable=True),
        sa.Column("operation_state", sa.JSON(), nullable=True),
        sa.Column("first_frame_media_id", sa.String(length=64), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.String(length=2000), nullable=True),
        sa.Column("error_retryable", sa.Boolean(), nullable=True),
        sa.Column("result_media_id", sa.String(length=64), nullable=True),
        sa.Column("result_duration_s", sa.Float(), nullable=True),
        sa.Column("result_width", sa.Integer(), nullable=True),
        sa.Column("result_height", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claims", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_jobs")),
    )
    op.create_index("ix_video_jobs_owner_created", "video_jobs", ["owner", "created_at"], unique=False)
    # The workers' claim query: unfinished jobs in due order.
    op.create_index("ix_video_jobs_status_due", "video_jobs", ["status", "due_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_video_jobs_status_due", table_name="video_jobs")
    op.drop_index("ix_video_jobs_owner_created", table_name="video_jobs")
    op.drop_table("video_jobs")
