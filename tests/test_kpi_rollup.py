"""The KPI rollups (``store.kpi_rollup``) give the figures the leads give, digit for digit,
on both backends: random leads over four months in a time zone with daylight saving,
reports of every grouping and filter over ranges that start and end mid-week and on week
edges, the leaderboard's tallies; after plain SQL changes (marked dirty by the triggers)
before and after a refresh, and after a change of time zone. On PostgreSQL, a day marked
again while a refresh runs stays dirty, and a refresh that cannot get its lock leaves
the reports exact."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from domain.config import RoutingConfig
from domain.config_yaml import load_yaml
from domain.kpis import KpiQuery
from store import kpi_rollup
from store import kpis as kpi_store
from store import leaderboard as leaderboard_store
from store.db import Database
from store.models import Lead, Rep
from store.models_kpi import KpiDirty, KpiOwnerWeek, KpiWeek

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
# Four months around the spring-forward night (29 March 2026); "now" is a Wednesday.
START = datetime(2026, 1, 5, 6, tzinfo=UTC)
NOW = datetime(2026, 4, 29, 12, tzinfo=UTC)
POOLS = ("Inbound", "Enterprise", None)
SOURCES = ("google", "linkedin", "partner", None)
GROUPINGS: list[list[str | None]] = [
    [None, "rep", "pool", "source", "week"],
    ["month"],
    ["quarter"],
]
RANGES = [
    (date(2026, 1, 5), date(2026, 5, 3)),  # Monday to Sunday: whole weeks only
    (date(2026, 1, 7), date(2026, 4, 28)),  # Wednesday to Tuesday
    (date(2026, 3, 26), date(2026, 4, 30)),  # across the DST night and a month's end
    (date(2026, 2, 2), date(2026, 2, 8)),  # one week
]


def _config(reps: list[str]) -> RoutingConfig:
    lines = "\n".join(f"  - {{email: {r}, name: R{i}}}" for i, r in enumerate(reps))
    members = "\n".join(f"      - {{rep: {r}}}" for r in reps)
    pools = "".join(f"  - name: {p}\n    members:\n{members}\n" for p in POOLS if p)
    return load_yaml(
        f"reps:\n{lines}\npools:\n{pools}rules: []\nfallback: {{pool: Inbound}}\n"
        "kpis:\n  currency: USD\n  small_sample: 3\n"
        f"  quotas:\n    - {{rep: {reps[0]}, period: 2026-Q1, revenue: 9000}}\n"
        "  forecasts:\n    - {period: 2026-03, revenue: 5000}\n"
    )


def _lead(i: int, rng: random.Random, reps: list[int], created: datetime) -> Lead:
    owner = rng.choice(reps) if rng.random() < 0.9 else None
    at = created
    times: dict[str, Any] = {}
    for column, odds in (
        ("first_contacted_at", 0.75),
        ("meeting_at", 0.6),
        ("qualified_at", 0.7),
        ("proposal_at", 0.7),
    ):
        if rng.random() > odds:
            break
        at += timedelta(seconds=rng.randrange(-600, 4 * 86400))  # imports may come early
        times[column] = at
    minor = currency = None
    if "first_contacted_at" in times and rng.random() < 0.35:
        at += timedelta(days=rng.randrange(0, 15), seconds=rng.randrange(0, 86400))
        if rng.random() < 0.6:
            times["won_at"] = at
            minor = rng.choice([None, rng.randrange(100, 10_000_000)])
            currency = rng.choice(["USD", "USD", "EUR", None])
        else:
            times["lost_at"] = at
    contacted = times.get("first_contacted_at")
    cycle = times.get("won_at") or times.get("lost_at")
    due_after = timedelta(hours=1) if rng.random() < 0.9 else timedelta(days=40)
    return Lead(
        id=f"r{i:08d}",
        workflow_id=f"lead-{i}",
        email=f"r{i}@x.example",
        stage="assigned",
        data={"company": "X"},
        received_at=created,
        created_at=created,
        owner_rep_id=owner,
        pool=rng.choice(POOLS),
        source=rng.choice(SOURCES),
        sla_due_at=created + due_after if owner is not None else None,
        first_assigned_at=created + timedelta(seconds=rng.randrange(0, 900)) if owner else None,
        won_amount_minor=minor,
        currency=currency,
        rep_events=rng.randrange(0, 6),
        follow_up_s=(contacted - created).total_seconds() if contacted else None,
        cycle_s=(cycle - created).total_seconds() if cycle else None,
        **times,
    )


def _fill(db: Database, count: int = 320, seed: int = 7) -> tuple[RoutingConfig, random.Random]:
    rng = random.Random(seed)
    with db.session() as session:
        reps = list(session.execute(select(Rep.id, Rep.email)).all())
        span = int((NOW - START).total_seconds())
        for i in range(count):
            created = START + timedelta(seconds=rng.randrange(0, span))
            if i < 12:  # not contacted yet, the deadline still ahead of now
                created = NOW - timedelta(minutes=rng.randrange(1, 50))
            lead = _lead(i, rng, [r[0] for r in reps], created)
            if i < 12:
                lead.first_contacted_at = lead.follow_up_s = None
            session.add(lead)
    return _config([r[1] for r in reps]), rng


@contextmanager
def _scan_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The reports and tallies as they were before the rollups: from the leads only."""
    with monkeypatch.context() as patch:
        patch.setattr(kpi_rollup, "state", lambda *_: None)
        patch.setattr(kpi_rollup, "stored_state", lambda *_: None)
        yield


def _reports(
    db: Database, config: RoutingConfig, tz: ZoneInfo, ranges: list[tuple[date, date]]
) -> list[dict[str, Any]]:
    out = []
    with db.read() as session:
        emails = [r.email for r in config.reps]
        for first, last in ranges:
            filters: list[dict[str, Any]] = [
                {},
                {"pools": ["Inbound"]},
                {"reps": emails[:2], "sources": ["google", "partner"]},
            ]
            for narrowed in filters:
                query = KpiQuery(start=first, end=last, **narrowed)
                for group_bys in GROUPINGS if not narrowed else GROUPINGS[:1]:
                    got = kpi_store.reports(session, query, config, group_bys, tz=tz, now=NOW)
                    out += [r.model_dump() for r in got]
    return out


def _tallies(db: Database, tz: ZoneInfo) -> list[Any]:
    local = [
        (datetime(2026, 1, 12, tzinfo=tz), datetime(2026, 4, 27, tzinfo=tz)),
        (datetime(2026, 3, 23, tzinfo=tz), datetime(2026, 3, 30, tzinfo=tz)),  # DST week
    ]
    spans = [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in local]
    spans += [(START + timedelta(hours=7), NOW), (NOW - timedelta(days=7), NOW)]
    out = []
    with db.read() as session:
        for start, end in spans:
            found = leaderboard_store.tallies(session, start, end)
            for tally in found:
                tally.follow_ups.sort()  # the order they were read in is not a figure
            out.append(sorted((t.model_dump() for t in found), key=lambda t: t["rep_email"]))
    return out


def _same_as_the_scan(
    db: Database,
    config: RoutingConfig,
    tz: ZoneInfo,
    monkeypatch: pytest.MonkeyPatch,
    ranges: list[tuple[date, date]] = RANGES,
) -> None:
    rolled, tallied = _reports(db, config, tz, ranges), _tallies(db, tz)
    with _scan_only(monkeypatch):
        assert _reports(db, config, tz, ranges) == rolled
        assert _tallies(db, tz) == tallied
    assert any(g["kpis"]["leads_generated"]["value"] for r in rolled for g in r["groups"])
    assert any(t for t in tallied)


def _dirty_weeks(db: Database, tz: ZoneInfo) -> frozenset[date]:
    with db.read() as session:
        state = kpi_rollup.state(session, tz)
    assert state is not None
    return state.dirty_weeks


def test_rollup_reads_equal_the_scan_through_changes(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, rng = _fill(db)
    assert kpi_rollup.refresh(db, BERLIN, budget_s=30)
    assert _dirty_weeks(db, BERLIN) == frozenset()
    with db.read() as session:
        assert (session.scalar(select(func.count()).select_from(KpiWeek)) or 0) > 30
    _same_as_the_scan(db, config, BERLIN, monkeypatch)

    # Plain SQL, as a backfill or the CRM would write: an owner changes, a milestone is
    # reached, a deal is won, a lead is deleted. The triggers mark the days dirty.
    with db.session() as session:
        ids = list(session.scalars(select(Lead.id).order_by(Lead.id)))
        reps = list(session.scalars(select(Rep.id)))
        picked = rng.sample(ids[12:], 6)
        session.execute(
            text("UPDATE leads SET owner_rep_id = :rep WHERE id = :id"),
            {"rep": reps[0], "id": picked[0]},
        )
        session.execute(
            text("UPDATE leads SET meeting_at = :at, qualified_at = :at WHERE id = :id"),
            {"at": NOW - timedelta(days=3), "id": picked[1]},
        )
        session.execute(
            text(
                "UPDATE leads SET won_at = :at, won_amount_minor = 123456, currency = 'EUR', "
                "cycle_s = 86400 WHERE id = :id"
            ),
            {"at": NOW - timedelta(days=20), "id": picked[2]},
        )
        session.execute(
            text("UPDATE leads SET first_contacted_at = NULL, follow_up_s = NULL WHERE id = :id"),
            {"id": picked[3]},
        )
        session.execute(text("DELETE FROM leads WHERE id = :id"), {"id": picked[4]})
        # Only what the leaderboard reads: the first assignment of a contacted lead, the
        # amount of a won deal.
        middle = [Lead.first_contacted_at < NOW - timedelta(days=45), Lead.won_at.is_(None)]
        contacted = session.scalars(
            select(Lead.id)
            .where(*middle, Lead.first_assigned_at.is_not(None))
            .order_by(Lead.first_contacted_at.desc())
        ).first()
        won = session.scalars(
            select(Lead.id)
            .where(Lead.won_at < NOW - timedelta(days=45), Lead.owner_rep_id.is_not(None))
            .order_by(Lead.won_at.desc())
        ).first()
        session.execute(
            text("UPDATE leads SET first_assigned_at = created_at WHERE id = :id"),
            {"id": contacted},
        )
        session.execute(
            text(
                "UPDATE leads SET won_amount_minor = COALESCE(won_amount_minor, 0) + 777 "
                "WHERE id = :id"
            ),
            {"id": won},
        )
    assert _dirty_weeks(db, BERLIN), "the triggers marked the changed days"
    _same_as_the_scan(db, config, BERLIN, monkeypatch)  # dirty weeks read from the leads
    assert kpi_rollup.refresh(db, BERLIN, budget_s=30)
    assert _dirty_weeks(db, BERLIN) == frozenset()
    _same_as_the_scan(db, config, BERLIN, monkeypatch)

    # Another time zone: the rollups are rebuilt in it.
    assert kpi_rollup.refresh(db, NEW_YORK, budget_s=30)
    assert _dirty_weeks(db, NEW_YORK) == frozenset()
    _same_as_the_scan(db, config, NEW_YORK, monkeypatch, RANGES[1:3])


def test_whole_weeks_come_from_the_rollup(db: Database) -> None:
    config, _ = _fill(db, count=120, seed=3)
    assert kpi_rollup.refresh(db, BERLIN, budget_s=30)
    week = date(2026, 2, 2)
    query = KpiQuery(start=week, end=week + timedelta(days=6))

    by_source = query.model_copy(update={"group_by": "source"})

    def leads() -> float | None:
        with db.read() as session:
            got = kpi_store.report(session, query, config, tz=BERLIN, now=NOW)
        return got.kpis["leads_generated"].value

    def sources() -> float:
        with db.read() as session:
            got = kpi_store.report(session, by_source, config, tz=BERLIN, now=NOW)
        return sum(g.kpis["leads_generated"].value or 0 for g in got.groups)

    before = leads()
    assert sources() == before
    with db.session() as session:  # rollup rows changed behind the leads' back
        session.execute(
            text("UPDATE kpi_owner_weeks SET leads = leads + 1000 WHERE week = :w"), {"w": week}
        )
        session.execute(
            text("UPDATE kpi_weeks SET leads = leads + 100 WHERE week = :w"), {"w": week}
        )
    # The whole period from the rollup per owner; the sources from the one per source.
    assert leads() == (before or 0) + 1000 * _rows_of(db, week, KpiOwnerWeek)
    assert sources() == (before or 0) + 100 * _rows_of(db, week, KpiWeek)
    with db.session() as session:  # a lead of that week changes: the week is read again
        session.execute(
            text(
                "UPDATE leads SET rep_events = rep_events + 1 "
                "WHERE created_at >= :a AND created_at < :b"
            ),
            {
                "a": kpi_rollup.midnight(week, BERLIN),
                "b": kpi_rollup.midnight(week + timedelta(days=7), BERLIN),
            },
        )
    assert leads() == before


def _rows_of(db: Database, week: date, table: type[KpiWeek] | type[KpiOwnerWeek]) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).where(table.week == week)) or 0)


def _postgres(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: a refresh cannot interleave with one")


def test_a_day_marked_during_a_refresh_stays_dirty(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres(db)
    config, _ = _fill(db, count=80, seed=5)
    assert kpi_rollup.refresh(db, BERLIN, budget_s=30)
    with db.session() as session:
        lead = session.scalars(select(Lead).where(Lead.id == "r00000040")).one()
        day, created = lead.created_at.date(), lead.created_at
    with db.session() as session:
        session.execute(text("UPDATE leads SET rep_events = rep_events + 1 WHERE id = 'r00000040'"))
    recount = kpi_rollup._recount_cohort
    writer_marked = threading.Event()

    def writer() -> None:
        # A transaction that changes the lead (and so marks its day) while the refresh
        # runs, and commits only after the refresh has tried to delete the mark.
        with db.engine.connect() as conn:
            conn.execute(
                text("UPDATE leads SET rep_events = rep_events + 5 WHERE id = 'r00000040'")
            )
            writer_marked.set()
            threading.Event().wait(0.5)
            conn.commit()

    thread = threading.Thread(target=writer)

    def recount_beside_a_writer(session: Any, week: date, tz: ZoneInfo) -> None:
        recount(session, week, tz)
        if not thread.is_alive() and not writer_marked.is_set():
            thread.start()
            assert writer_marked.wait(5)

    monkeypatch.setattr(kpi_rollup, "_recount_cohort", recount_beside_a_writer)
    kpi_rollup.refresh(db, BERLIN, budget_s=0)
    thread.join()
    monkeypatch.setattr(kpi_rollup, "_recount_cohort", recount)
    with db.read() as session:
        assert day in set(session.scalars(select(KpiDirty.day)))
    week = kpi_rollup.monday(created.astimezone(BERLIN).date())
    assert week in _dirty_weeks(db, BERLIN)
    _same_as_the_scan(db, config, BERLIN, monkeypatch, RANGES[:1])
    assert kpi_rollup.refresh(db, BERLIN, budget_s=30)
    assert _dirty_weeks(db, BERLIN) == frozenset()
    _same_as_the_scan(db, config, BERLIN, monkeypatch, RANGES[:1])


def test_a_refresh_that_cannot_lock_leaves_the_reports_exact(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres(db)
    config, _ = _fill(db, count=80, seed=9)
    assert kpi_rollup.refresh(db, BERLIN, budget_s=30)
    with db.session() as session:
        session.execute(text("UPDATE leads SET rep_events = rep_events + 1 WHERE id = 'r00000030'"))
    monkeypatch.setattr(kpi_rollup, "LOCK_TIMEOUT_S", 0.2)
    with db.engine.connect() as holder:  # another refresh holds the rollups' lock
        holder.execute(text("SELECT 1 FROM kpi_meta WHERE id = 1 FOR UPDATE"))
        assert kpi_rollup.refresh(db, BERLIN) is False
        holder.rollback()
    assert _dirty_weeks(db, BERLIN)
    _same_as_the_scan(db, config, BERLIN, monkeypatch, RANGES[:1])


def _until_idle(refresher: kpi_rollup.Refresher, within: float = 20) -> None:
    pause = threading.Event()
    for _ in range(int(within * 20)):
        if refresher.idle():
            return
        pause.wait(0.05)
    raise AssertionError(f"the refresher still ran after {within} s")


def test_the_refresher_catches_up_in_the_background(db: Database) -> None:
    _fill(db, count=60, seed=5)
    refresher = kpi_rollup.Refresher()
    refresher.kick(db, BERLIN)  # builds the rollups: every day is marked first
    _until_idle(refresher)
    assert _dirty_weeks(db, BERLIN) == frozenset()
    with db.session() as session:
        session.execute(text("UPDATE leads SET rep_events = rep_events + 1 WHERE id = 'r00000010'"))
    assert _dirty_weeks(db, BERLIN)
    refresher.kick(db, BERLIN)
    _until_idle(refresher)
    assert _dirty_weeks(db, BERLIN) == frozenset()


def test_a_kick_during_a_refresh_runs_one_more(monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_refresh(_db: Any, _tz: ZoneInfo) -> bool:
        calls.append(1)
        started.set()
        assert release.wait(5)
        return True

    monkeypatch.setattr(kpi_rollup, "refresh", slow_refresh)
    refresher = kpi_rollup.Refresher()
    refresher.kick(None, BERLIN)  # type: ignore[arg-type]
    assert started.wait(5)
    # Two more asks while it runs: folded into one more run.
    refresher.kick(None, BERLIN)  # type: ignore[arg-type]
    refresher.kick(None, BERLIN)  # type: ignore[arg-type]
    release.set()
    _until_idle(refresher)
    assert len(calls) == 2


def test_a_report_snapshot_does_not_see_a_write_made_during_it(db: Database) -> None:
    _fill(db, count=20, seed=2)

    def leads(session: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(Lead)) or 0)

    with db.snapshot() as session:
        before = leads(session)
        with db.session() as writer:
            writer.execute(text("DELETE FROM leads WHERE id = 'r00000003'"))
        assert leads(session) == before  # a report's later queries add up with its first
    with db.read() as session:
        assert leads(session) == before - 1


def test_a_report_recounts_a_few_changed_weeks_first_and_leaves_more_to_the_thread(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(db, count=120, seed=6)
    refresher = kpi_rollup.Refresher()
    assert kpi_rollup.refresh(db, BERLIN, budget_s=30)
    with db.session() as session:  # one week changed: recounted before the read
        session.execute(text("UPDATE leads SET rep_events = rep_events + 1 WHERE id = 'r00000010'"))
    refresher.before_read(db, BERLIN)
    assert refresher.idle() and _dirty_weeks(db, BERLIN) == frozenset()

    with db.session() as session:  # every week changed: more than one transaction's worth
        session.execute(text("UPDATE leads SET rep_events = rep_events + 1"))
    dirty = len(_dirty_weeks(db, BERLIN))
    assert dirty > kpi_rollup.WEEKS_PER_TRANSACTION
    kicked: list[bool] = []
    with monkeypatch.context() as patch:
        patch.setattr(refresher, "kick", lambda *_: kicked.append(True))
        refresher.before_read(db, BERLIN)
    assert kicked, "the rest was left to the thread"
    assert 0 < len(_dirty_weeks(db, BERLIN)) < dirty, "one transaction's worth was recounted"
    refresher.kick(db, BERLIN)
    _until_idle(refresher)
    assert _dirty_weeks(db, BERLIN) == frozenset()
