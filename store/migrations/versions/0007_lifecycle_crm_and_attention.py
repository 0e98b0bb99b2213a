"""the lead lifecycle: lead status, nurture lists, tasks and conversions in the local CRM;
the failed steps of a lead; the recipient of a notification

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-15 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("crm_records", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=20), server_default="open", nullable=False)
        )
        batch_op.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("nurture_lists", sa.JSON(), nullable=True))
    op.create_table(
        "crm_tasks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("crm_lead_id", sa.String(length=40), nullable=False),
        sa.Column("owner_id", sa.String(length=100), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["crm_lead_id"], ["crm_records.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("crm_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crm_tasks_crm_lead_id"), ["crm_lead_id"], unique=False)
    op.create_table(
        "crm_conversions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("crm_lead_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("contact_id", sa.String(length=40), nullable=False),
        sa.Column("deal_id", sa.String(length=40), nullable=False),
        sa.Column("deal_name", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("close_date", sa.Date(), nullable=False),
        sa.Column("owner_id", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["crm_accounts.id"]),
        sa.ForeignKeyConstraint(["crm_lead_id"], ["crm_records.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("crm_lead_id"),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attention", sa.JSON(), nullable=True))
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recipient", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("recipient")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("attention")
    op.drop_table("crm_conversions")
    op.drop_table("crm_tasks")
    with op.batch_alter_table("crm_records", schema=None) as batch_op:
        batch_op.drop_column("nurture_lists")
        batch_op.drop_column("status_reason")
        batch_op.drop_column("status")
