"""The store's KPI counting agrees with the formulas' reference (``domain.kpis.totals_of``)
on both backends: a varied set of leads written with their KPI facts gives, through the
aggregate queries, the figures the reference computes from the same leads one by one —
for the whole period, per source, per rep and per day/week in a time zone with daylight
saving; the events recorded through ``store.leads.add_event`` keep the facts."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from domain.config import RoutingConfig
from domain.config_yaml import load_yaml
from domain.kpis import KpiQuery, LeadFact, Plan, figures, totals_of
from domain.lead import EventType
from domain.leaderboard import leaderboard, rank
from store import kpis as kpi_store
from store import leaderboard as leaderboard_store
from store import leads as lead_store
from store.db import Database
from store.models import Lead, Rep

BERLIN = ZoneInfo("Europe/Berlin")
# Around the spring-forward night of 2026 (29 March, 01:00 UTC) and local midnights.
START = datetime(2026, 3, 20, tzinfo=UTC)
NOW = datetime(2026, 5, 1, tzinfo=UTC)
SOURCES = ("google", "linkedin", "partner")


def _config(reps: list[str]) -> RoutingConfig:
    lines = "\n".join(f"  - {{email: {r}, name: R{i}}}" for i, r in enumerate(reps))
    members = "\n".join(f"      - {{rep: {r}}}" for r in reps)
    return load_yaml(
        f"reps:\n{lines}\npools:\n  - name: Inbound\n    members:\n{members}\n"
        "rules: []\nfallback: {pool: Inbound}\n"
        "kpis:\n  currency: USD\n  small_sample: 3\n"
        f"  quotas:\n    - {{rep: {reps[0]}, period: 2026-Q1, revenue: 9000}}\n"
        "  forecasts:\n    - {period: 2026-03, revenue: 5000}\n"
    )


def _leads(db: Database, count: int, seed: int) -> tuple[list[LeadFact], list[str]]:
    rng = random.Random(seed)
    with db.session() as session:
        reps = list(session.execute(select(Rep.id, Rep.email)).all())
        facts = []
        for i in range(count):
            created = START + timedelta(minutes=rng.randrange(0, 20 * 24 * 60))
            if i < 4:  # right around the local midnights of the DST night
                created = datetime(2026, 3, 28, 22, 59, 59, tzinfo=UTC) + timedelta(
                    seconds=i % 2, hours=i // 2
                )
            rep_id, rep_email = rng.choice(reps) if rng.random() < 0.9 else (None, None)
            fact: dict[str, Any] = {
                "created_at": created,
                "owner": rep_email,
                "pool": "Inbound" if rep_email else None,
                "source": rng.choice(SOURCES),
                "sla_due_at": created + timedelta(hours=1) if rep_email else None,
                "rep_events": rng.randrange(0, 6),
            }
            at = created
            for column, odds in (
                ("first_contacted_at", 0.8),
                ("meeting_at", 0.6),
                ("qualified_at", 0.7),
                ("proposal_at", 0.7),
            ):
                if rng.random() > odds:
                    break
                at += timedelta(seconds=rng.randrange(60, 3 * 86400))
                fact[column] = at
            if rng.random() < 0.3 and "first_contacted_at" in fact:
                at += timedelta(days=rng.randrange(1, 20))
                if rng.random() < 0.5:
                    fact["won_at"] = at
                    fact["amount"] = Decimal(rng.randrange(100, 100_000)) / 100
                    fact["currency"] = "USD" if rng.random() < 0.9 else "EUR"
                else:
                    fact["lost_at"] = at
            facts.append(LeadFact(**fact))
            minor = int(fact["amount"] * 100) if "amount" in fact else None
            session.add(
                Lead(
                    id=f"{seed:08x}{i:016x}",
                    workflow_id=f"lead-{i}",
                    email=f"l{i}@x.example",
                    stage="assigned",
                    data={"company": "X"},
                    received_at=created,
                    owner_rep_id=rep_id,
                    won_amount_minor=minor,
                    follow_up_s=_since(fact, "first_contacted_at"),
                    cycle_s=_since(fact, "won_at") or _since(fact, "lost_at"),
                    **{k: v for k, v in fact.items() if k not in ("owner", "amount")},
                )
            )
    return facts, [email for _, email in reps]


def _since(fact: dict[str, Any], column: str) -> float | None:
    at = fact.get(column)
    return (at - fact["created_at"]).total_seconds() if at is not None else None


def _same(store: dict[str, Any], reference: dict[str, Any]) -> None:
    for key, figure in reference.items():
        got = store[key]
        assert (got.count, got.of, got.unit, got.note, got.small_sample) == (
            figure.count,
            figure.of,
            figure.unit,
            figure.note,
            figure.small_sample,
        ), key
        for name in ("value", "mean", "p90", "first_contact_days"):
            want = getattr(figure, name)
            assert getattr(got, name) == (want if want is None else pytest.approx(want)), (
                key,
                name,
            )
        assert (got.stages, got.leak) == (figure.stages, figure.leak), key


def _local(value: datetime) -> date:
    return value.astimezone(BERLIN).date()


def test_the_aggregates_agree_with_the_reference(db: Database) -> None:
    facts, reps = _leads(db, 160, seed=11)
    config = _config(reps)
    first, last = date(2026, 3, 20), date(2026, 4, 8)
    in_period = [f for f in facts if first <= _local(f.created_at) <= last]
    plan = Plan(
        days=(last - first).days + 1,
        currency="USD",
        small_sample=3,
        quota=Decimal(9000) * 12 / 90,  # 20 to 31 March of a 90-day quarter
        forecast=Decimal(5000) * 12 / 31,
    )
    with db.read() as session:
        whole = kpi_store.report(
            session, KpiQuery(start=first, end=last), config, tz=BERLIN, now=NOW
        )
        by_source = kpi_store.report(
            session,
            KpiQuery(start=first, end=last, group_by="source"),
            config,
            tz=BERLIN,
            now=NOW,
        )
        by_day = kpi_store.report(
            session, KpiQuery(start=first, end=last, group_by="day"), config, tz=BERLIN, now=NOW
        )
        by_week = kpi_store.report(
            session, KpiQuery(start=first, end=last, group_by="week"), config, tz=BERLIN, now=NOW
        )
        by_rep = kpi_store.report(
            session, KpiQuery(start=first, end=last, group_by="rep"), config, tz=BERLIN, now=NOW
        )
    reference = figures(totals_of(in_period, currency="USD", now=NOW), plan)
    _same(whole.kpis, reference)
    assert whole.kpis["leads_generated"].value == len(in_period) > 100

    for group in by_source.groups:
        part = [f for f in in_period if f.source == group.key]
        assert group.kpis["leads_generated"].value == len(part)
        without_targets = plan.model_copy(update={"quota": None, "forecast": None})
        expected = figures(totals_of(part, currency="USD", now=NOW), without_targets)
        _same(group.kpis, expected)

    days = {g.key: int(g.kpis["leads_generated"].value or 0) for g in by_day.groups}
    assert len(days) == 20 and sum(days.values()) == len(in_period)
    for key, count in days.items():
        assert count == sum(1 for f in in_period if _local(f.created_at).isoformat() == key)
    # 22:59:59 UTC on 28 March is 23:59:59 in Berlin (winter time): still the 28th;
    # 23:00:00 UTC is midnight, the 29th.
    assert days["2026-03-28"] >= 1 and days["2026-03-29"] >= 1
    weeks = {g.key: g.kpis for g in by_week.groups}
    assert sum(k["leads_generated"].value or 0 for k in weeks.values()) == len(in_period)
    assert sum(k["deals_closed"].value or 0 for k in weeks.values()) == sum(
        1 for f in in_period if f.won_at
    )
    reps_seen = {g.key for g in by_rep.groups}
    assert reps_seen == {f.owner or kpi_store.NONE_KEY for f in in_period}


def test_filters_narrow_the_leads(db: Database) -> None:
    facts, reps = _leads(db, 60, seed=5)
    config = _config(reps)
    first, last = date(2026, 3, 20), date(2026, 4, 10)
    with db.read() as session:
        only = kpi_store.report(
            session,
            KpiQuery(start=first, end=last, sources=["google"], reps=[reps[0]]),
            config,
            tz=BERLIN,
            now=NOW,
        )
        buckets = kpi_store.follow_up_buckets(session, KpiQuery(start=first, end=last), tz=BERLIN)
        total, breaches = kpi_store.sla_breaches(
            session, KpiQuery(start=first, end=last), tz=BERLIN, now=NOW, limit=5
        )
    wanted = [
        f
        for f in facts
        if f.source == "google" and f.owner == reps[0] and first <= _local(f.created_at) <= last
    ]
    assert only.kpis["leads_generated"].value == len(wanted)
    in_period = [f for f in facts if first <= _local(f.created_at) <= last]
    assert sum(n for _, n in buckets) == len(in_period)
    assert dict(buckets)["not contacted"] == sum(1 for f in in_period if not f.first_contacted_at)
    missed = [
        f
        for f in in_period
        if f.sla_due_at
        and (
            (f.first_contacted_at and f.first_contacted_at > f.sla_due_at)
            or (not f.first_contacted_at and f.sla_due_at < NOW)
        )
    ]
    assert total == len(missed) and len(breaches) == min(5, total)
    assert [b.due for b in breaches] == sorted((b.due for b in breaches), reverse=True)


def test_events_keep_the_lead_facts(db: Database) -> None:
    created = datetime(2026, 4, 1, 9, tzinfo=UTC)
    with db.session() as session:
        session.add(
            Lead(
                id="f" * 24,
                workflow_id="lead-f",
                email="f@x.example",
                stage="assigned",
                data={},
                received_at=created,
                created_at=created,
            )
        )
    steps = [
        (EventType.contacted, {}),
        (EventType.contacted, {}),  # a second contact keeps the first time
        (EventType.engagement, {"kind": "email_opened"}),  # the lead's doing, not counted
        (EventType.won, {"amount": "1234.565", "currency": "eur"}),
        (EventType.won, {"amount": "99", "currency": "USD"}),  # a repeat keeps the first
        (EventType.owner_notified, {}),
    ]
    for minutes, (type_, data) in enumerate(steps, start=1):
        with db.session() as session:
            lead_store.add_event(
                session,
                "f" * 24,
                type_,
                data=data,
                occurred_at=created + timedelta(minutes=minutes),
            )
    with db.read() as session:
        lead = session.get(Lead, "f" * 24)
        assert lead is not None
        assert lead.first_contacted_at == created + timedelta(minutes=1)
        assert lead.won_at == created + timedelta(minutes=4)
        assert (lead.won_amount_minor, lead.currency) == (123457, "EUR")
        assert lead.follow_up_s == pytest.approx(60, abs=0.01)
        assert lead.cycle_s == pytest.approx(240, abs=0.01)
        assert lead.rep_events == 4


def test_the_leaderboard_reads_a_period_of_events(db: Database) -> None:
    created = datetime(2026, 4, 1, 9, tzinfo=UTC)
    with db.session() as session:
        rep = session.scalars(select(Rep).order_by(Rep.id)).first()
        assert rep is not None
        session.add(
            Lead(
                id="e" * 24,
                workflow_id="lead-e",
                email="e@x.example",
                stage="assigned",
                data={},
                received_at=created,
                created_at=created,
                owner_rep_id=rep.id,
                first_assigned_at=created + timedelta(minutes=1),  # as the assignment sets it
            )
        )
    steps = [
        (EventType.contacted, 6, {}),
        (EventType.won, 60, {"amount": "250.00", "currency": "usd"}),
        (EventType.contacted, 60 * 24 * 9, {}),  # outside the period
    ]
    for type_, minutes, data in steps:
        with db.session() as session:
            lead_store.add_event(
                session,
                "e" * 24,
                type_,
                data=data,
                occurred_at=created + timedelta(minutes=minutes),
            )
    with db.read() as session:
        found = leaderboard_store.activities(session, created, created + timedelta(days=7))
    kinds = sorted((a.kind, a.rep_email) for a in found)
    assert kinds == [("contacted", rep.email), ("won", rep.email)]
    contacted = next(a for a in found if a.kind == "contacted")
    assert contacted.follow_up_s == pytest.approx(300, abs=0.01)
    won = next(a for a in found if a.kind == "won")
    assert (won.amount, won.currency) == (Decimal("250.00"), "usd")
    # The tallies the leaderboards rank: the same figures, from the lead's milestones
    # (its second contact, outside the week, changes nothing).
    with db.read() as session:
        (mine,) = leaderboard_store.tallies(session, created, created + timedelta(days=7))
    assert mine.rep_email == rep.email
    assert mine.counts == {"contacted": 1, "won": 1}
    assert mine.revenue == {"USD": Decimal("250.00")}
    assert mine.follow_ups == [pytest.approx(300, abs=0.01)]
    assert rank([mine]) == leaderboard(found)
    with db.read() as session:
        later = leaderboard_store.tallies(
            session, created + timedelta(days=8), created + timedelta(days=14)
        )
    assert later == []


@given(
    st.lists(
        st.one_of(
            st.sampled_from([0.0, 299.999, 300.0, 900.0, 3600.0, 14400.0, 86400.0]),
            st.floats(min_value=0, max_value=10 * 86400, allow_nan=False),
        ),
        max_size=60,
    ),
    st.integers(min_value=0, max_value=20),
)
def test_the_follow_up_distribution_puts_each_wait_below_its_bucket_s_limit(
    waits: list[float], uncontacted: int
) -> None:
    """Each wait lands in the first bucket whose limit is above it (a wait of exactly
    5 minutes is "5-15 min", as the SQL buckets count it); the rest are not contacted."""
    limits = [300, 900, 3600, 4 * 3600, 24 * 3600]
    expected = [0] * len(kpi_store.FOLLOW_UP_BUCKETS)
    for wait in waits:
        expected[next((i for i, limit in enumerate(limits) if wait < limit), len(limits))] += 1
    expected[-1] = uncontacted
    got = kpi_store.follow_up_distribution(waits, len(waits) + uncontacted)
    assert got == list(zip(kpi_store.FOLLOW_UP_BUCKETS, expected, strict=True))
