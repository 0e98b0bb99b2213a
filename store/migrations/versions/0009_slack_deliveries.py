"""Slack: where each message was delivered (channel and ts, so a retried post updates the
message instead of posting twice), how (Slack, the inbox, or diverted to the inbox after
Slack refused), and the failed attempts so far

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-22 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("ts", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("delivery", sa.String(length=20), server_default="inbox", nullable=False)
        )
        batch_op.add_column(sa.Column("delivery_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("thread_of", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        for column in ("thread_of", "attempts", "delivery_error", "delivery", "ts", "channel"):
            batch_op.drop_column(column)
