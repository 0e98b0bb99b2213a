"""the leads' KPI facts (``domain.kpi_facts``): slices and first milestone times

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-24 10:00:00.000000

Existing leads get their facts from their timelines and routing decisions. Territories
are not backfilled (they depend on the configuration at assignment): older leads show
under "none" when sliced by territory.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from domain.kpi_facts import MILESTONES, REP_EVENTS, currency_of, minor_units, source_of

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMES = ("sla_due_at", *MILESTONES.values())
# The leaderboard's milestone indexes (as ``store.models.MILESTONE_INDEXES`` then had them).
MILESTONE_INDEXES: dict[str, tuple[str, ...]] = {
    "first_contacted_at": ("first_assigned_at",),
    "meeting_at": (),
    "qualified_at": (),
    "proposal_at": (),
    "won_at": ("won_amount_minor", "currency"),
}
KPI_INDEX = (
    "created_at",
    "owner_rep_id",
    "pool",
    "source",
    "territory",
    *TIMES,
    "won_amount_minor",
    "currency",
    "rep_events",
    "follow_up_s",
    "cycle_s",
    "first_assigned_at",
    "id",
)


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("pool", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("territory", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("source", sa.String(length=100), nullable=True))
        for name in TIMES:
            batch.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("won_amount_minor", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("currency", sa.String(length=3), nullable=True))
        batch.add_column(sa.Column("rep_events", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("follow_up_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("cycle_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("first_assigned_at", sa.DateTime(timezone=True)))
    # Everything the KPI queries read, so they never visit the (wide) lead rows.
    op.create_index("ix_leads_kpis", "leads", list(KPI_INDEX))
    # A period's milestones per owner (the leaderboard), only for leads that reached them.
    for column, extra in MILESTONE_INDEXES.items():
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_leads_{column}",
            "leads",
            [column, "owner_rep_id", *extra],
            sqlite_where=where,
            postgresql_where=where,
        )
    # A period's events of some kinds (the events listed for audits of the leaderboard).
    op.create_index("ix_lead_events_type_occurred_at", "lead_events", ["type", "occurred_at"])
    _backfill()


def _backfill() -> None:
    bind = op.get_bind()
    leads = sa.table(
        "leads",
        sa.column("id", sa.String),
        sa.column("data", sa.JSON),
        sa.column("routing", sa.JSON),
        sa.column("source_system", sa.String),
        *(sa.column(name, sa.DateTime(timezone=True)) for name in TIMES),
        sa.column("pool", sa.String),
        sa.column("source", sa.String),
        sa.column("won_amount_minor", sa.BigInteger),
        sa.column("currency", sa.String),
        sa.column("rep_events", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("follow_up_s", sa.Float),
        sa.column("cycle_s", sa.Float),
        sa.column("first_assigned_at", sa.DateTime(timezone=True)),
    )
    events = sa.table(
        "lead_events",
        sa.column("id", sa.Integer),
        sa.column("lead_id", sa.String),
        sa.column("type", sa.String),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("data", sa.JSON),
    )
    facts: dict[str, dict[str, Any]] = {}
    created: dict[str, Any] = {}
    for lead_id, data, routing, system, created_at in bind.execute(
        sa.select(
            leads.c.id, leads.c.data, leads.c.routing, leads.c.source_system, leads.c.created_at
        )
    ):
        decision = (routing or {}).get("decision") or {}
        created[lead_id] = created_at
        facts[lead_id] = {
            "pool": decision.get("pool"),
            "source": source_of(data or {}, system),
            "rep_events": 0,
        }
    kinds = sorted(set(MILESTONES) | REP_EVENTS | {"assigned"})
    for lead_id, type_, at, data in bind.execute(
        sa.select(events.c.lead_id, events.c.type, events.c.occurred_at, events.c.data)
        .where(events.c.type.in_(kinds))
        .order_by(events.c.id)
    ):
        row = facts.get(lead_id)
        if row is None:
            continue
        if type_ == "assigned":
            row.setdefault("first_assigned_at", at)
            continue
        column = MILESTONES.get(type_)
        if column is not None and row.get(column) is None:
            row[column] = at
            seconds = (at - created[lead_id]).total_seconds()
            if type_ == "contacted":
                row["follow_up_s"] = seconds
            elif type_ in ("won", "lost") and "cycle_s" not in row:
                row["cycle_s"] = seconds
            if type_ == "won":
                row["won_amount_minor"] = minor_units((data or {}).get("amount"))
                row["currency"] = currency_of((data or {}).get("currency"))
        if type_ in REP_EVENTS:
            row["rep_events"] += 1
    for lead_id, row in facts.items():
        bind.execute(sa.update(leads).where(leads.c.id == lead_id).values(**row))


def downgrade() -> None:
    op.drop_index("ix_lead_events_type_occurred_at", table_name="lead_events")
    op.drop_index("ix_leads_kpis", table_name="leads")
    for column in MILESTONE_INDEXES:
        op.drop_index(f"ix_leads_{column}", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        for name in ("pool", "territory", "source", *TIMES):
            batch.drop_column(name)
        batch.drop_column("won_amount_minor")
        batch.drop_column("currency")
        batch.drop_column("rep_events")
        batch.drop_column("follow_up_s")
        batch.drop_column("cycle_s")
        batch.drop_column("first_assigned_at")
