"""the KPI rollups: cohort facts and leaderboard facts per local week, kept exact by
dirty days that triggers on ``leads`` write (``store.kpi_rollup``)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 01:30:00.000000

Every existing lead's days are marked dirty, so an upgraded installation reads exact
figures at once (the dirty weeks from the leads, until a page refreshes them).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A change of any of these moves some lead between rollup rows or changes a row's sums.
WATCHED = (
    "created_at",
    "owner_rep_id",
    "pool",
    "source",
    "currency",
    "sla_due_at",
    "first_contacted_at",
    "meeting_at",
    "qualified_at",
    "proposal_at",
    "won_at",
    "lost_at",
    "won_amount_minor",
    "rep_events",
    "follow_up_s",
    "cycle_s",
    "first_assigned_at",
)
# The days marked dirty: a lead's creation day for the cohort rollup (kind "c"), and its
# milestones' days for the leaderboard's (kind "m"), each with what else moves it there.
MILESTONES: dict[str, tuple[str, ...]] = {
    "first_contacted_at": ("owner_rep_id", "first_assigned_at"),
    "meeting_at": ("owner_rep_id",),
    "qualified_at": ("owner_rep_id",),
    "proposal_at": ("owner_rep_id",),
    "won_at": ("owner_rep_id", "won_amount_minor", "currency"),
}
SLA_INDEX = (
    "sla_due_at",
    "first_contacted_at",
    "created_at",
    "owner_rep_id",
    "pool",
    "source",
    "currency",
    "id",
)


def upgrade() -> None:
    op.create_table(
        "kpi_dirty",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "kind"),
    )
    op.create_table(
        "kpi_meta",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    counts = (
        "leads",
        "sla_met",
        "sla_late",
        "sla_open",
        "meetings",
        "qualified",
        "proposals",
        "won",
        "lost",
    )
    op.create_table(
        "kpi_weeks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("owner_rep_id", sa.Integer(), nullable=True),
        sa.Column("pool", sa.String(length=100), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in counts),
        sa.Column("won_minor", sa.BigInteger(), nullable=False),
        sa.Column("rep_events", sa.BigInteger(), nullable=False),
        sa.Column("won_in_currency", sa.Integer(), nullable=False),
        sa.Column("won_in_currency_minor", sa.BigInteger(), nullable=False),
        sa.Column("follow_up_s", sa.LargeBinary(), nullable=False),
        sa.Column("cycle_days", sa.LargeBinary(), nullable=False),
        sa.Column("first_contact_days", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_kpi_weeks_week", "kpi_weeks", ["week"])
    op.create_table(
        "kpi_rep_weeks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("owner_rep_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("follow_ups", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_kpi_rep_weeks_week", "kpi_rep_weeks", ["week"])
    where = sa.text("sla_due_at IS NOT NULL")
    op.create_index(
        "ix_leads_sla_due_at",
        "leads",
        list(SLA_INDEX),
        sqlite_where=where,
        postgresql_where=where,
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgres_triggers()
    else:
        _sqlite_triggers()
    # Every existing lead's days: an upgraded installation is exact at once.
    op.execute(all_days_sql(op.get_bind().dialect.name == "postgresql"))


def all_days_sql(postgres: bool) -> str:
    """Mark every day of every lead (``store.kpi_rollup`` does the same on a new time
    zone)."""
    day = "(({0}) AT TIME ZONE 'UTC')::date" if postgres else "date({0})"
    union = " UNION ".join(
        f"SELECT {day.format(column)} AS day, '{kind}' AS kind FROM leads"
        for column, kind in [("created_at", "c"), *((m, "m") for m in MILESTONES)]
    )
    return (
        f"INSERT INTO kpi_dirty (day, kind, version) SELECT DISTINCT day, kind, 1 "
        f"FROM ({union}) AS days WHERE day IS NOT NULL "
        "ON CONFLICT (day, kind) DO UPDATE SET version = kpi_dirty.version + 1"
    )


def _sqlite_triggers() -> None:
    def marks(*rows: str, update: bool = False) -> str:
        selects = [f"SELECT date({row}.created_at) AS day, 'c' AS kind" for row in rows]
        for column, also in MILESTONES.items():
            moved = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in (column, *also))
            when = f" WHERE {moved}" if update else ""
            selects += [f"SELECT date({row}.{column}), 'm'{when}" for row in rows]
        return (
            f"INSERT INTO kpi_dirty (day, kind, version) SELECT day, kind, 1 FROM "
            f"({' UNION '.join(selects)}) WHERE day IS NOT NULL "
            "ON CONFLICT (day, kind) DO UPDATE SET version = version + 1;"
        )

    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in WATCHED)
    op.execute(f"CREATE TRIGGER kpi_dirty_on_insert AFTER INSERT ON leads BEGIN {marks('NEW')} END")
    op.execute(
        f"CREATE TRIGGER kpi_dirty_on_update AFTER UPDATE OF {', '.join(WATCHED)} ON leads "
        f"WHEN {changed} BEGIN {marks('OLD', 'NEW', update=True)} END"
    )
    op.execute(f"CREATE TRIGGER kpi_dirty_on_delete AFTER DELETE ON leads BEGIN {marks('OLD')} END")


def _postgres_triggers() -> None:
    def day(row: str, column: str) -> str:
        return f"({row}.{column} AT TIME ZONE 'UTC')::date"

    def milestones(row: str, update: bool) -> str:
        out = []
        for column, also in MILESTONES.items():
            moved = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in (column, *also))
            out.append(
                f"CASE WHEN {moved} THEN {day(row, column)} END" if update else day(row, column)
            )
        return ", ".join(out)

    # The days in order, so that two writers marking the same days lock their rows in
    # the same order.
    op.execute(
        f"""
        CREATE FUNCTION kpi_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            created date[];
            reached date[];
        BEGIN
            IF TG_OP = 'INSERT' THEN
                created := ARRAY[{day("NEW", "created_at")}];
                reached := ARRAY[{milestones("NEW", False)}];
            ELSIF TG_OP = 'DELETE' THEN
                created := ARRAY[{day("OLD", "created_at")}];
                reached := ARRAY[{milestones("OLD", False)}];
            ELSE
                created := ARRAY[{day("OLD", "created_at")}, {day("NEW", "created_at")}];
                reached := ARRAY[{milestones("OLD", True)}, {milestones("NEW", True)}];
            END IF;
            INSERT INTO kpi_dirty (day, kind, version)
                SELECT DISTINCT d, k, 1 FROM (
                    SELECT unnest(created) AS d, 'c' AS k
                    UNION ALL SELECT unnest(reached), 'm'
                ) AS marks WHERE d IS NOT NULL ORDER BY 1, 2
                ON CONFLICT (day, kind) DO UPDATE SET version = kpi_dirty.version + 1;
            RETURN NULL;
        END
        $$
        """
    )
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in WATCHED)
    op.execute(
        "CREATE TRIGGER kpi_dirty_on_insert_delete AFTER INSERT OR DELETE ON leads "
        "FOR EACH ROW EXECUTE PROCEDURE kpi_mark_dirty()"
    )
    op.execute(
        f"CREATE TRIGGER kpi_dirty_on_update AFTER UPDATE OF {', '.join(WATCHED)} ON leads "
        f"FOR EACH ROW WHEN ({changed}) EXECUTE PROCEDURE kpi_mark_dirty()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER kpi_dirty_on_update ON leads")
        op.execute("DROP TRIGGER kpi_dirty_on_insert_delete ON leads")
        op.execute("DROP FUNCTION kpi_mark_dirty()")
    else:
        for name in ("kpi_dirty_on_insert", "kpi_dirty_on_update", "kpi_dirty_on_delete"):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_leads_sla_due_at", table_name="leads")
    op.drop_index("ix_kpi_rep_weeks_week", table_name="kpi_rep_weeks")
    op.drop_table("kpi_rep_weeks")
    op.drop_index("ix_kpi_weeks_week", table_name="kpi_weeks")
    op.drop_table("kpi_weeks")
    op.drop_table("kpi_meta")
    op.drop_table("kpi_dirty")
