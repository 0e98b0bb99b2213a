"""CRM connectors: the CRM's users reps are linked to, the changes received from a CRM
(webhook deliveries, applied once), the polling high-water mark, leads found by CRM id

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-20 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crm_users",
        sa.Column("crm", sa.String(length=20), nullable=False),
        sa.Column("owner_id", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("crm", "owner_id"),
    )
    op.create_index("ix_crm_users_crm_email", "crm_users", ["crm", "email"])
    op.create_table(
        "crm_inbound",
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "event_id"),
    )
    op.create_table(
        "crm_poll_marks",
        sa.Column("crm", sa.String(length=20), nullable=False),
        sa.Column("mark", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("crm"),
    )
    op.create_index("ix_leads_crm_id", "leads", ["crm_id"])


def downgrade() -> None:
    op.drop_index("ix_leads_crm_id", table_name="leads")
    op.drop_table("crm_poll_marks")
    op.drop_table("crm_inbound")
    op.drop_index("ix_crm_users_crm_email", table_name="crm_users")
    op.drop_table("crm_users")
