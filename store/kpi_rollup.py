"""The KPI rollups: the leads' KPI facts added up per local ISO week, so that a report
over a year reads some thousand rows instead of every lead (docs/kpis.md, "Speed").

Two rollups, both by the week's Monday in the installation's time zone
(``LEADFLOW_TIMEZONE``, kept in ``kpi_meta``):

- ``kpi_weeks``: the cohort facts of the leads *created* in the week, per owner, pool,
  source and deal currency: every count ``store.kpi_counts`` sums, and the durations the
  medians need kept whole as packed float64 arrays, so medians and p90 stay exact. What
  depends on the time of the report (an uncontacted lead misses its SLA only once its
  deadline has passed) is kept apart: ``add_week_cells`` subtracts the few uncontacted
  leads whose deadline is still ahead, found through ``ix_leads_sla_due_at``.
- ``kpi_rep_weeks``: the leaderboard's facts of the milestones *reached* in the week, per
  owner (``store.leaderboard``).

**Kept exact by dirty days.** Triggers on ``leads`` (migration 0014) upsert the UTC day
of a changed lead's creation and of its milestones, before and after the change, into
``kpi_dirty(day, version)``, bumping ``version`` when the day is already there. Every
writer is caught (lifecycle activities, CRM inbound, imports, backfills, plain SQL) at
the cost of one upsert in its own transaction. A reader takes every local week that
overlaps a dirty day from the leads (the scan), never from the rollup, so a report is
exact whether or not the rollup has been refreshed.

**Refresh** (``refresh``; a report does one short transaction of it first and leaves any
more to a thread of its own, ``Refresher``): in short write transactions it
reads the dirty rows, recomputes every local week overlapping their days from the leads,
replaces those weeks' rows, then deletes each dirty row *only if its version is the one
it read* (``DELETE … WHERE day = :d AND version = :v``). Why no change is lost:

- SQLite has one writer at a time: while the refresh's transaction runs, no lead changes,
  so what it reads is what it replaces.
- PostgreSQL (READ COMMITTED): a writer's lead change and its mark commit together.
  If the change committed before the refresh read the leads, the rollup has it. If not,
  its mark is not the one the refresh read: either it bumped the version (committed before
  the DELETE: the version no longer matches; still in flight: the DELETE waits for the
  row's lock and then re-checks the new version, which no longer matches) or it inserts
  the day afresh (after the DELETE, or as a day the refresh never read). In every case
  the day stays dirty and the next refresh recomputes it. Concurrent refreshes queue on
  the ``kpi_meta`` row (``FOR UPDATE``).

A different time zone than the rollup's empties both rollups and marks every day dirty
(reports read the leads meanwhile). The refresh never fails a page: a lock that does not
come within ``LOCK_TIMEOUT_S``, or any database error, leaves the days dirty and the
report reads those weeks from the leads.
"""

from __future__ import annotations

import logging
import threading
import time as clock
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from store.db import Database
from store.kpi_counts import (
    Cell,
    CellKey,
    MilestoneCell,
    MilestoneKey,
    collection_paused,
    milestone_cells,
    pack,
    plain_rows,
    unpack,
    week_cells,
)
from store.models import Lead
from store.models_kpi import KpiDirty, KpiMeta, KpiOwnerWeek, KpiRepWeek, KpiWeek

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 2.0
WEEKS_PER_TRANSACTION = 8  # a writer waits at most for this many weeks' recount
# The counts of a cohort rollup row, in the order ``store.kpi_counts`` keeps them.
COUNT_NAMES = (
    "leads",
    "sla_met",
    "sla_late",
    "sla_open",
    "meetings",
    "qualified",
    "proposals",
    "won",
    "lost",
    "won_minor",
    "rep_events",
    "won_in_currency",
    "won_in_currency_minor",
)
COUNT_COLUMNS = tuple(getattr(KpiWeek, name) for name in COUNT_NAMES)


def count_columns(table: type[KpiWeek] | type[KpiOwnerWeek]) -> list[Any]:
    """``table``'s count columns in the order ``store.kpi_counts`` keeps them."""
    return [getattr(table, name) for name in COUNT_NAMES]


COHORT, MILESTONES = "c", "m"  # kpi_dirty's kinds: a creation day, a milestone day
# The times whose UTC days the triggers mark, with their kind (as migration 0014 has them).
_MARKED = (
    ("created_at", COHORT),
    ("first_contacted_at", MILESTONES),
    ("meeting_at", MILESTONES),
    ("qualified_at", MILESTONES),
    ("proposal_at", MILESTONES),
    ("won_at", MILESTONES),
)


# ------------------------------------------------------------------------ calendar


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant (UTC) at which the local ``day`` begins."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def weeks_of_utc_day(day: date, tz: ZoneInfo) -> set[date]:
    """The Mondays of the local weeks that the UTC ``day`` overlaps (one or two)."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    first = start.astimezone(tz).date()
    last = (start + timedelta(days=1, microseconds=-1)).astimezone(tz).date()
    return {monday(first), monday(last)}


# ------------------------------------------------------------------------ state


@dataclass(frozen=True)
class RollupState:
    """What a reader may take from the rollups: every week but the dirty ones."""

    tz: ZoneInfo
    dirty_weeks: frozenset[date]

    def clean(self, week: date) -> bool:
        return week not in self.dirty_weeks


def state(session: Session, tz: ZoneInfo) -> RollupState | None:
    """The rollups' state as ``session`` sees it; None when they were built in another
    time zone than ``tz`` (or not yet)."""
    built_in = session.execute(select(KpiMeta.timezone).where(KpiMeta.id == 1)).scalar()
    if built_in != tz.key:
        return None
    return RollupState(tz, _dirty_weeks(session, tz, COHORT))


def stored_state(session: Session) -> RollupState | None:
    """The leaderboard rollup's state, in the time zone it was built in (None if not
    built): its weeks are instants, whatever the time zone of the question."""
    built_in = session.execute(select(KpiMeta.timezone).where(KpiMeta.id == 1)).scalar()
    if built_in is None:
        return None
    tz = ZoneInfo(built_in)
    return RollupState(tz, _dirty_weeks(session, tz, MILESTONES))


def _dirty_weeks(session: Session, tz: ZoneInfo, kind: str) -> frozenset[date]:
    days = session.execute(select(KpiDirty.day).where(KpiDirty.kind == kind)).scalars()
    return frozenset(week for day in days for week in weeks_of_utc_day(day, tz))


# ------------------------------------------------------------------------ refresh


def refresh(db: Database, tz: ZoneInfo, *, budget_s: float = 1.0, wait: bool = True) -> bool:
    """Recount the weeks of the dirty days (all of them, when the rollups were built in
    another time zone), in transactions of a few weeks each, until none is left or
    ``budget_s`` has passed; whether none is left. Without ``wait``, gives up at once
    when another refresh holds the rollups (PostgreSQL). Never raises for the database:
    what is not refreshed stays dirty, and reports read those weeks from the leads."""
    deadline = clock.monotonic() + budget_s
    try:
        # No cyclic collection meanwhile: a recount builds thousands of short-lived cells.
        with collection_paused():
            while True:
                with db.session() as session:
                    done = _refresh_some(session, tz, wait=wait)
                if done:
                    return True
                if clock.monotonic() > deadline:
                    return False
    except DBAPIError as error:
        (log.warning if wait else log.debug)(
            "KPI rollup not refreshed (%s); reports read the leads", type(error).__name__
        )
        return False


class Refresher:
    """The rollups' refresh as reports need it, one per process (the web app's).

    ``before_read``: a report first recounts, in one short transaction, the few weeks
    changed since the last one (what it would otherwise read from the leads, at about the
    same cost); when more is dirty than that (after an import, a backfill, a time zone
    change) or another refresh is under way, the report reads the leads for those weeks
    and the rest is left to ``kick``: ``refresh`` on a thread of its own, one run at a
    time, a report asking while one runs getting one more run when it ends."""

    PAUSE_S = 0.05  # between two slices of a long refresh, so writers get the database
    MAX_SLICES = 60

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = False
        self._again = False

    def before_read(self, db: Database, tz: ZoneInfo) -> None:
        """Bring the rollups up to date if one transaction can; else start ``kick``."""
        if self.idle() and refresh(db, tz, budget_s=0, wait=False):
            return
        self.kick(db, tz)

    def kick(self, db: Database, tz: ZoneInfo) -> None:
        """Ask for a refresh; returns at once."""
        with self._lock:
            if self._running:
                self._again = True
                return
            self._running = True
        threading.Thread(
            target=self._run, args=(db, tz), name="kpi-rollup-refresh", daemon=True
        ).start()

    def _run(self, db: Database, tz: ZoneInfo) -> None:
        # Slices of ``refresh``'s budget until nothing is dirty; a database that keeps
        # failing is left alone after MAX_SLICES (the next report asks again).
        for _ in range(self.MAX_SLICES):
            done = False
            try:
                done = refresh(db, tz)
            except Exception:  # a bug must not stop later refreshes: log it, go on
                log.exception("KPI rollup refresh failed; reports read the leads")
            with self._lock:
                if done and not self._again:
                    self._running = False
                    return
                self._again = False
            if not done:
                clock.sleep(self.PAUSE_S)
        with self._lock:
            self._running = False

    def idle(self) -> bool:
        """Whether no refresh runs now (for tests and benches)."""
        with self._lock:
            return not self._running


def _refresh_some(session: Session, tz: ZoneInfo, *, wait: bool = True) -> bool:
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text(f"SET LOCAL lock_timeout = '{int(LOCK_TIMEOUT_S * 1000)}ms'"))
        # The rollups are a cache of the leads: a crash that loses this commit loses its
        # rows and its deleted marks together, so the weeks are dirty again after it. No
        # need to wait for the disk.
        session.execute(text("SET LOCAL synchronous_commit = off"))
    built_in = session.execute(
        select(KpiMeta.timezone).where(KpiMeta.id == 1).with_for_update(nowait=not wait)
    ).scalar()
    if built_in != tz.key:
        _start_over(session, tz, postgres, exists=built_in is not None)
        return False
    rows = session.execute(
        select(KpiDirty.day, KpiDirty.kind, KpiDirty.version).order_by(KpiDirty.day, KpiDirty.kind)
    ).all()
    chosen: dict[str, set[date]] = {COHORT: set(), MILESTONES: set()}
    handled: list[tuple[date, str, int]] = []
    for day, kind, version in rows:
        if sum(len(weeks) for weeks in chosen.values()) >= WEEKS_PER_TRANSACTION:
            break
        chosen[kind] |= weeks_of_utc_day(day, tz)
        handled.append((day, kind, version))
    for week in sorted(chosen[COHORT]):
        _recount_cohort(session, week, tz)
    for week in sorted(chosen[MILESTONES]):
        _recount_milestones(session, week, tz)
    for day, kind, version in handled:
        session.execute(
            delete(KpiDirty).where(
                KpiDirty.day == day, KpiDirty.kind == kind, KpiDirty.version == version
            )
        )
    return len(handled) == len(rows)


def _start_over(session: Session, tz: ZoneInfo, postgres: bool, *, exists: bool) -> None:
    """Forget both rollups and mark every day with a lead's creation or milestone."""
    session.execute(delete(KpiWeek))
    session.execute(delete(KpiOwnerWeek))
    session.execute(delete(KpiRepWeek))
    day = "(({0}) AT TIME ZONE 'UTC')::date" if postgres else "date({0})"
    union = " UNION ".join(
        f"SELECT {day.format(column)} AS day, '{kind}' AS kind FROM leads"
        for column, kind in _MARKED
    )
    session.execute(
        text(
            f"INSERT INTO kpi_dirty (day, kind, version) SELECT DISTINCT day, kind, 1 "
            f"FROM ({union}) AS days WHERE day IS NOT NULL "
            "ON CONFLICT (day, kind) DO UPDATE SET version = kpi_dirty.version + 1"
        )
    )
    built_at = datetime.now(UTC)
    if exists:
        session.execute(
            update(KpiMeta).where(KpiMeta.id == 1).values(timezone=tz.key, built_at=built_at)
        )
    else:
        session.add(KpiMeta(id=1, timezone=tz.key, built_at=built_at))


def _recount_cohort(session: Session, week: date, tz: ZoneInfo) -> None:
    """Replace the week's rows of both cohort rollups with what the leads say now: per
    owner, pool, source and currency (``kpi_weeks``), and the same added up over the
    sources (``kpi_owner_weeks``)."""
    start, end = midnight(week, tz), midnight(week + timedelta(days=7), tz)
    conn = session.connection()
    conn.execute(delete(KpiWeek).where(KpiWeek.week == week))
    conn.execute(delete(KpiOwnerWeek).where(KpiOwnerWeek.week == week))
    cells = week_cells(session, [Lead.created_at >= start, Lead.created_at < end])
    rows = [_week_row(week, key, cell) for key, cell in cells.items()]
    if rows:
        conn.execute(insert(KpiWeek), rows)
    owners: dict[CellKey, Cell] = {}
    for (owner, pool, _source, currency), cell in cells.items():
        into = owners.get((owner, pool, currency))
        if into is None:
            owners[(owner, pool, currency)] = cell
            continue
        into.counts = [a + b for a, b in zip(into.counts, cell.counts, strict=True)]
        into.follow_up_s += cell.follow_up_s
        into.cycle_days += cell.cycle_days
        into.first_contact_days += cell.first_contact_days
    owner_rows = [_week_row(week, key, cell) for key, cell in owners.items()]
    for row in owner_rows:
        del row["source"]
    if owner_rows:
        conn.execute(insert(KpiOwnerWeek), owner_rows)


def _recount_milestones(session: Session, week: date, tz: ZoneInfo) -> None:
    """Replace the week's rows of the leaderboard rollup with what the leads say now."""
    start, end = midnight(week, tz), midnight(week + timedelta(days=7), tz)
    conn = session.connection()
    conn.execute(delete(KpiRepWeek).where(KpiRepWeek.week == week))
    reached = milestone_cells(session, start, end)
    rep_rows = [
        {
            "week": week,
            "owner_rep_id": rep_id,
            "kind": kind,
            "currency": currency,
            "count": cell.count,
            "amount_minor": cell.amount_minor,
            "follow_ups": pack(cell.follow_ups) if cell.follow_ups else None,
        }
        for (rep_id, kind, currency), cell in reached.items()
    ]
    if rep_rows:
        conn.execute(insert(KpiRepWeek), rep_rows)


def _week_row(week: date, key: CellKey, cell: Cell) -> dict[str, Any]:
    owner, pool, source, currency = key if len(key) == 4 else (key[0], key[1], None, key[2])
    row: dict[str, Any] = {
        "week": week,
        "owner_rep_id": owner,
        "pool": pool,
        "source": source,
        "currency": currency,
        # Sorted: a report sorts the rows' values joined, and sorted runs merge fast.
        "follow_up_s": pack(sorted(cell.follow_up_s)),
        "cycle_days": pack(sorted(cell.cycle_days)),
        "first_contact_days": pack(sorted(cell.first_contact_days)),
    }
    for column, value in zip(COUNT_COLUMNS, cell.counts, strict=True):
        row[column.key] = value
    return row


def rep_week_cells(session: Session, weeks: Iterable[date]) -> dict[MilestoneKey, MilestoneCell]:
    """The leaderboard rollup's cells of ``weeks``, added up per owner, milestone and
    currency: the counts and amounts by the database, the follow-ups' packed arrays
    joined per rep."""
    wanted = sorted(set(weeks))
    out: dict[MilestoneKey, MilestoneCell] = {}
    if not wanted:
        return out
    conn = session.connection()
    in_weeks = KpiRepWeek.week.in_(wanted)
    keys = (KpiRepWeek.owner_rep_id, KpiRepWeek.kind, KpiRepWeek.currency)
    counted = conn.execute(
        select(*keys, func.sum(KpiRepWeek.count), func.sum(KpiRepWeek.amount_minor))
        .where(in_weeks)
        .group_by(*keys)
    )
    for rep_id, kind, currency, count, amount in plain_rows(counted):
        minor = None if amount is None else int(amount)  # SUM skips the unknown amounts
        out[(int(rep_id), kind, currency)] = MilestoneCell(int(count or 0), minor)
    packed = conn.execute(
        select(
            KpiRepWeek.owner_rep_id, KpiRepWeek.kind, KpiRepWeek.currency, KpiRepWeek.follow_ups
        ).where(in_weeks, KpiRepWeek.kind == "contacted")
    )
    blobs: dict[MilestoneKey, list[bytes]] = {}
    for rep_id, kind, currency, follow_ups in plain_rows(packed):
        if follow_ups:
            blobs.setdefault((int(rep_id), kind, currency), []).append(follow_ups)
    for key, parts in blobs.items():  # unpacked once per rep
        out[key].follow_ups += unpack(b"".join(parts))
    return out


def add_milestones(into: MilestoneCell, more: MilestoneCell) -> None:
    into.count += more.count
    if more.amount_minor is not None:
        into.amount_minor = (into.amount_minor or 0) + more.amount_minor
    into.follow_ups += more.follow_ups
