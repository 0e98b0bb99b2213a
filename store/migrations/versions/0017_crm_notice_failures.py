"""CRM notices that failed for good: what the webhook said, the step that failed and
why, and whether somebody retried it (the needs-attention page)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 08:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crm_notice_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.String(length=200), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("crm", sa.String(length=20), nullable=False),
        sa.Column("notice", sa.JSON(), nullable=False),
        sa.Column("error_type", sa.String(length=100), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retried_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retried_by", sa.String(length=320), nullable=True),
        sa.Column("retry_workflow_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow_id", "step", name="uq_crm_notice_failures_step"),
    )
    op.create_index(
        "ix_crm_notice_failures_open", "crm_notice_failures", ["retried_at", "failed_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_crm_notice_failures_open", table_name="crm_notice_failures")
    op.drop_table("crm_notice_failures")
