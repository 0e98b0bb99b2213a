"""The KPI rollups' tables (``store.kpi_rollup``): caches of the leads' KPI facts, added
up per local ISO week, and the dirty marks that keep them exact (docs/kpis.md, "Speed").
One Alembic revision per change of this file, as for ``store.models``."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, utcnow


class KpiDirty(Base):
    """A UTC day on which some lead's KPI facts changed: its creation day (``kind`` "c",
    the cohort rollups) or one of its milestones' days (``kind`` "m", the leaderboard's),
    before or after the change; written by triggers on ``leads`` (migration 0014).
    ``store.kpi_rollup`` recounts the local weeks overlapping it and deletes the row if
    ``version`` has not moved meanwhile."""

    __tablename__ = "kpi_dirty"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class KpiMeta(Base):
    """The KPI rollups' one row (``id`` 1): the time zone their weeks are local to."""

    __tablename__ = "kpi_meta"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    timezone: Mapped[str] = mapped_column(String(64))
    built_at: Mapped[datetime] = mapped_column(default=utcnow)


class CohortFacts:
    """What a cohort rollup row adds up of its leads, as ``store.kpi_counts`` counts them
    (``week_cells``); the durations the medians need are kept whole, as sorted, packed
    float64 arrays."""

    leads: Mapped[int] = mapped_column(Integer)
    sla_met: Mapped[int] = mapped_column(Integer)
    sla_late: Mapped[int] = mapped_column(Integer)  # contacted after the deadline
    sla_open: Mapped[int] = mapped_column(Integer)  # not contacted, with a deadline
    meetings: Mapped[int] = mapped_column(Integer)
    qualified: Mapped[int] = mapped_column(Integer)
    proposals: Mapped[int] = mapped_column(Integer)
    won: Mapped[int] = mapped_column(Integer)
    lost: Mapped[int] = mapped_column(Integer)
    won_minor: Mapped[int] = mapped_column(BigInteger)  # of the won deals without a currency
    rep_events: Mapped[int] = mapped_column(BigInteger)
    # The won deals in ``currency`` and their amounts (the row's other leads have none).
    won_in_currency: Mapped[int] = mapped_column(Integer)
    won_in_currency_minor: Mapped[int] = mapped_column(BigInteger)
    follow_up_s: Mapped[bytes] = mapped_column(LargeBinary)
    cycle_days: Mapped[bytes] = mapped_column(LargeBinary)
    first_contact_days: Mapped[bytes] = mapped_column(LargeBinary)


class KpiWeek(CohortFacts, Base):
    """The cohort facts of the leads created in one local ISO week (``week``: its Monday),
    per owner, pool, source and won deals' currency: what a report by source, or with a
    source filter, reads."""

    __tablename__ = "kpi_weeks"
    __table_args__ = (Index("ix_kpi_weeks_week", "week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[date] = mapped_column(Date)
    owner_rep_id: Mapped[int | None] = mapped_column(Integer)
    pool: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(100))
    currency: Mapped[str | None] = mapped_column(String(3))


class KpiOwnerWeek(CohortFacts, Base):
    """``KpiWeek``'s rows of a week added up over their sources: per owner, pool and won
    deals' currency (a sixth of the rows with six sources, the durations in longer sorted
    runs): what the tiles, the reps and the weeks read when no source is picked."""

    __tablename__ = "kpi_owner_weeks"
    __table_args__ = (Index("ix_kpi_owner_weeks_week", "week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[date] = mapped_column(Date)
    owner_rep_id: Mapped[int | None] = mapped_column(Integer)
    pool: Mapped[str | None] = mapped_column(String(100))
    currency: Mapped[str | None] = mapped_column(String(3))


class KpiRepWeek(Base):
    """The leaderboard's facts of one local ISO week (``week``: its Monday) per owner and
    milestone (``kind``, a ``domain.leaderboard.POINTS`` key): the leads that first
    reached it that week; for ``won``, per currency with the amounts' sum; for
    ``contacted``, the follow-up seconds from first assignment, packed float64."""

    __tablename__ = "kpi_rep_weeks"
    __table_args__ = (Index("ix_kpi_rep_weeks_week", "week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[date] = mapped_column(Date)
    owner_rep_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str | None] = mapped_column(String(3))
    count: Mapped[int] = mapped_column(Integer)
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    follow_ups: Mapped[bytes | None] = mapped_column(LargeBinary)
