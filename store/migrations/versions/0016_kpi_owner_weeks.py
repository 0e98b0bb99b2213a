"""the cohort rollup per owner (kpi_owner_weeks), beside the one per owner and source

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 04:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = ("leads", "sla_met", "sla_late", "sla_open", "meetings", "qualified", "proposals")


def upgrade() -> None:
    op.create_table(
        "kpi_owner_weeks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("owner_rep_id", sa.Integer(), nullable=True),
        sa.Column("pool", sa.String(length=100), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in (*COUNTS, "won", "lost")),
        sa.Column("won_minor", sa.BigInteger(), nullable=False),
        sa.Column("rep_events", sa.BigInteger(), nullable=False),
        sa.Column("won_in_currency", sa.Integer(), nullable=False),
        sa.Column("won_in_currency_minor", sa.BigInteger(), nullable=False),
        sa.Column("follow_up_s", sa.LargeBinary(), nullable=False),
        sa.Column("cycle_days", sa.LargeBinary(), nullable=False),
        sa.Column("first_contact_days", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_kpi_owner_weeks_week", "kpi_owner_weeks", ["week"])
    # The new table is empty: forget the rollups' state, so that reports read the leads
    # until the next refresh has rebuilt both rollups from them (store.kpi_rollup).
    op.execute("DELETE FROM kpi_meta")


def downgrade() -> None:
    op.drop_index("ix_kpi_owner_weeks_week", table_name="kpi_owner_weeks")
    op.drop_table("kpi_owner_weeks")
