"""SQLAlchemy 2 table models: the base, teams and reps, leads and their events,
notifications, the routing configuration, approvals and imports. The CRM connectors'
tables are in ``store.models_crm``, the people's (users, sessions, tokens) in
``store.models_auth``, the KPI rollups' in ``store.models_kpi``. One Alembic revision per
change of any of them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, _dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, _dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Weighted round-robin turn counter; incremented atomically per decision.
    next_turn: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    reps: Mapped[list[Rep]] = relationship(back_populates="team")


class Rep(Base):
    __tablename__ = "reps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    crm_owner_id: Mapped[str | None] = mapped_column(String(100))
    slack_user_id: Mapped[str | None] = mapped_column(String(50))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    weight: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    team: Mapped[Team | None] = relationship(back_populates="reps")


class RepAvailability(Base):
    """A rep's own word on being away (``/leadflow away until …`` in Slack), besides the
    configuration's time off: routing skips them until ``away_until``."""

    __tablename__ = "rep_availability"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    away_until: Mapped[datetime]
    set_by: Mapped[str] = mapped_column(String(320))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


# The leaderboard's milestone columns, each indexed with what ``store.leaderboard`` reads.
MILESTONE_INDEXES: dict[str, tuple[str, ...]] = {
    "first_contacted_at": ("first_assigned_at",),
    "meeting_at": (),
    "qualified_at": (),
    "proposal_at": (),
    "won_at": ("won_amount_minor", "currency"),
}


class Lead(Base):
    """The lead as Leadflow tracks it: a projection of its workflow, kept by activities."""

    __tablename__ = "leads"
    # Everything the KPI queries read (``store.kpis``), so they never visit the wide rows.
    __table_args__ = (
        Index(
            "ix_leads_kpis",
            "created_at",
            "owner_rep_id",
            "pool",
            "source",
            "territory",
            "sla_due_at",
            "first_contacted_at",
            "meeting_at",
            "qualified_at",
            "proposal_at",
            "won_at",
            "lost_at",
            "won_amount_minor",
            "currency",
            "rep_events",
            "follow_up_s",
            "cycle_s",
            "first_assigned_at",
            "id",
        ),
        # A period's milestones per owner (the leaderboard): only the leads that reached
        # each, so the new leads of the hot path write none of them.
        *(
            Index(
                f"ix_leads_{column}",
                column,
                "owner_rep_id",
                *extra,
                sqlite_where=text(f"{column} IS NOT NULL"),
                postgresql_where=text(f"{column} IS NOT NULL"),
            )
            for column, extra in MILESTONE_INDEXES.items()
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(100))
    source_system: Mapped[str] = mapped_column(String(50), default="web")
    email: Mapped[str] = mapped_column(String(320), index=True)
    stage: Mapped[str] = mapped_column(String(40))
    score: Mapped[int | None] = mapped_column(Integer)
    grade: Mapped[str | None] = mapped_column(String(40))
    owner_rep_id: Mapped[int | None] = mapped_column(ForeignKey("reps.id"))
    crm_id: Mapped[str | None] = mapped_column(String(100), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime]
    assigned_at: Mapped[datetime | None]
    notified_at: Mapped[datetime | None]
    speed_to_lead_ms: Mapped[int | None] = mapped_column(Integer)
    # Accepted posts of this person, the first included (as counted by the workflow).
    submissions: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # A step failed for good: somebody has to look at this lead.
    needs_attention: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The routing decision with its explanation and the lead's facts at decision time.
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The steps that failed for good: ``{step, error, message, at}`` each.
    attention: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # The KPI facts (``domain.kpi_facts``): how the lead is sliced, and when it first
    # reached each milestone; kept by ``store.leads.add_event`` and the assignment.
    pool: Mapped[str | None] = mapped_column(String(100))
    territory: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(100))
    sla_due_at: Mapped[datetime | None]
    # When the lead first had an owner (``assigned_at`` moves with reassignments): the
    # leaderboard's follow-up time counts from it.
    first_assigned_at: Mapped[datetime | None]
    first_contacted_at: Mapped[datetime | None]
    meeting_at: Mapped[datetime | None]
    qualified_at: Mapped[datetime | None]
    proposal_at: Mapped[datetime | None]
    won_at: Mapped[datetime | None]
    lost_at: Mapped[datetime | None]
    # The won amount in minor units (cents), so sums are exact on every backend.
    won_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    rep_events: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Seconds from creation to the first contact, and to the first close (won or lost):
    # kept with the milestone so the KPIs' medians read numbers, not dates.
    follow_up_s: Mapped[float | None] = mapped_column(Float)
    cycle_s: Mapped[float | None] = mapped_column(Float)

    owner: Mapped[Rep | None] = relationship()


# A period's speed-to-lead deadlines, newest first (the KPI page's newest SLA breaches, and
# the deadlines still ahead that ``store.kpi_rollup`` subtracts from the missed ones).
Index(
    "ix_leads_sla_due_at",
    Lead.sla_due_at,
    Lead.first_contacted_at,
    Lead.created_at,
    Lead.owner_rep_id,
    Lead.pool,
    Lead.source,
    Lead.currency,
    Lead.id,
    sqlite_where=text("sla_due_at IS NOT NULL"),
    postgresql_where=text("sla_due_at IS NOT NULL"),
)


class IntakeCounter(Base):
    """Per-lead intake bookkeeping, written before a post reaches the workflow: how many
    posts were let through (for the cap on detailed resubmissions) and the current flood
    window (for the per-address rate limit)."""

    __tablename__ = "intake_counters"

    lead_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    posts: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime]
    window_posts: Mapped[int] = mapped_column(Integer, default=0)


class LeadEvent(Base):
    """One timeline entry. ``idempotency_key`` makes a retried step record once."""

    __tablename__ = "lead_events"
    __table_args__ = (
        Index("ix_lead_events_lead_id_id", "lead_id", "id"),
        # A period's events of some kinds (the leaderboard on the KPI page and in Slack).
        Index("ix_lead_events_type_occurred_at", "type", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(40))
    stage: Mapped[str | None] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)


class Notification(Base):
    """A message of the offline notifier, shown in the /inbox page. ``rep_id`` is the rep
    it went to, if a rep; ``recipient`` the address it went to: an email, or a channel's
    name for announcements."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    rep_id: Mapped[int | None] = mapped_column(ForeignKey("reps.id"))
    recipient: Mapped[str | None] = mapped_column(String(320))
    lead_id: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    blocks: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    # Slack: the channel (D… for a direct message) and ts of the posted message, so a
    # retried delivery updates it instead of posting again.
    channel: Mapped[str | None] = mapped_column(String(40))
    ts: Mapped[str | None] = mapped_column(String(40))
    # inbox (no Slack) | slack | diverted (Slack refused it: it stays in the inbox)
    delivery: Mapped[str] = mapped_column(String(20), default="inbox", server_default="inbox")
    delivery_error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The idempotency key of the message this one replies to in its thread.
    thread_of: Mapped[str | None] = mapped_column(String(200))

    rep: Mapped[Rep | None] = relationship()


class ConfigDraft(Base):
    """The routing configuration being edited: one row (``id`` 1). ``revision`` grows by
    one per save, so a save based on an older revision is refused."""

    __tablename__ = "config_drafts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]]
    revision: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConfigVersion(Base):
    """A published routing configuration: immutable, numbered 1, 2, 3, …"""

    __tablename__ = "config_versions"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]]
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")


class ConfigAudit(Base):
    """One change of the routing configuration: who, when, what (a unified diff of the
    YAML before and after)."""

    __tablename__ = "config_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))  # draft_saved|published|rolled_back|imported
    version: Mapped[int | None] = mapped_column(Integer)
    diff: Mapped[str] = mapped_column(Text, default="")


class PoolStateRow(Base):
    """A pool's rotation state (``domain.rotation.PoolState`` as JSON), claimed with
    compare-and-set on ``revision``."""

    __tablename__ = "pool_states"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    state: Mapped[dict[str, Any]]
    revision: Mapped[int] = mapped_column(Integer)


class Approval(Base):
    """One approval request (``workflows.approval``), kept by its activities for lists:
    what was asked, by whom, where it stands (the current level and its approvers), and
    how it ended. ``history`` is its audit trail: ``{at, action, by, level, ...}`` for
    every step (requested, escalated, decided)."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_status_requested_at", "status", "requested_at"),)

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(64), index=True)
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))
    # The request's figures: percent, to, claimant (those it has).
    figures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(320))
    requested_at: Mapped[datetime]
    # pending | approved | rejected
    status: Mapped[str] = mapped_column(String(20))
    timed_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    level: Mapped[int] = mapped_column(Integer)
    levels: Mapped[int] = mapped_column(Integer)
    approvers: Mapped[list[str]] = mapped_column(JSON, default=list)
    deadline: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(320))
    decided_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)
    # The request and the result as the workflow had them (``domain.approvals``).
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LeadImport(Base):
    """A bulk import of leads from a CSV file (``domain.lead_import``): the file until the
    import starts, its column mapping, where it stands (``mapping`` → ``validated`` →
    ``running`` → ``completed``, or ``failed``) and its counts, kept by the import's
    activities."""

    __tablename__ = "lead_imports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    headers: Mapped[list[str]] = mapped_column(JSON, default=list)
    # ``domain.lead_import.Column`` each: the column's index, header, target and note.
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The uploaded file (UTF-8 text), kept until the import starts so the mapping can change.
    content: Mapped[str | None] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    merged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    # Rows handed to their lead's lifecycle so far.
    imported: Mapped[int] = mapped_column(Integer, default=0)
    # Why the import stopped (``failed``): a step that cannot succeed, in plain words.
    error: Mapped[str | None] = mapped_column(Text)


class ImportRow(Base):
    """One row of an import, by its line in the file (the header is line 1): ``pending``
    until the import hands it to its lead's lifecycle (then ``started``, in the same
    transaction that counts it), or ``merged`` into an earlier line of the same person,
    or ``rejected`` with its problems."""

    __tablename__ = "import_rows"
    __table_args__ = (Index("ix_import_rows_status_line", "import_id", "status", "line"),)

    import_id: Mapped[str] = mapped_column(
        ForeignKey("lead_imports.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(10))
    lead_id: Mapped[str | None] = mapped_column(String(64))
    submission: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    merged_into: Mapped[int | None] = mapped_column(Integer)
    # ``domain.lead_import.Problem`` each.
    problems: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    started_at: Mapped[datetime | None]
