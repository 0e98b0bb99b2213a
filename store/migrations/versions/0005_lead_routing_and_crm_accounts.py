"""the routing decision stored with each lead; accounts of the local CRM

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("routing", sa.JSON(), nullable=True))
    op.create_table(
        "crm_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("owner_id", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("crm_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crm_accounts_domain"), ["domain"], unique=False)


def downgrade() -> None:
    op.drop_table("crm_accounts")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("routing")
