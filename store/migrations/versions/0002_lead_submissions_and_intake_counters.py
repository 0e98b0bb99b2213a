"""lead submissions count, needs-attention flag, intake counters

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 14:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("submissions", sa.Integer(), server_default="1", nullable=False)
        )
        batch_op.add_column(
            sa.Column("needs_attention", sa.Boolean(), server_default="0", nullable=False)
        )
    op.create_table(
        "intake_counters",
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("posts", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_posts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id"),
    )


def downgrade() -> None:
    op.drop_table("intake_counters")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("needs_attention")
        batch_op.drop_column("submissions")
