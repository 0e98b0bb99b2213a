"""The KPI formulas against figures computed by hand on a small fixed set of leads, their
notes (small samples, nothing to compute from), the quota and forecast of a period,
the calendar buckets of a report, the CSV, properties that hold for any leads, and the
``kpis`` section of the configuration (read, checked, exported)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.config import ConfigError, KpiPeriod, KpisConfig, Problem, RoutingConfig
from domain.config_yaml import dump_yaml, load_yaml
from domain.kpis import (
    CSV_HEADER,
    FUNNEL_STAGES,
    KPI_KEYS,
    Kpi,
    KpiGroup,
    KpiQuery,
    KpiReport,
    LeadFact,
    Plan,
    Totals,
    csv_rows,
    figures,
    forecast_for,
    p90,
    period_bounds,
    quota_for,
    totals_of,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
NOVEMBER = Plan(days=30, currency="USD", quota=Decimal(20000), forecast=Decimal(12000))
ANNA, BO, CY = "anna@example.com", "bo@example.com", "cy@example.com"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def lead(
    day: int, hour: int, *, due: int | None = 15, contacted: int | None = None, **fields: Any
) -> LeadFact:
    """A lead created on November ``day`` at ``hour``; ``due`` (the SLA's deadline) and
    ``contacted`` (the first contact) in minutes after creation."""
    created = at(day, hour)
    return LeadFact(
        created_at=created,
        sla_due_at=None if due is None else created + timedelta(minutes=due),
        first_contacted_at=None if contacted is None else created + timedelta(minutes=contacted),
        **fields,
    )


# Twelve leads of November 2026, three reps, two pools, three sources. Minutes after
# creation: ``due`` is the SLA's deadline (15 unless said), ``contacted`` the first contact.
LEADS = [
    # 1: contacted in 5 min, met the SLA, won 10,000 USD after 18 days.
    lead(2, 9, owner=ANNA, pool="EMEA", source="web", contacted=5, meeting_at=at(3, 9),
         qualified_at=at(5, 9), proposal_at=at(9, 9), won_at=at(20, 9),
         amount=Decimal(10000), currency="USD", rep_events=5),
    # 2: contacted late (30 min), lost after 14 days.
    lead(2, 10, owner=ANNA, pool="EMEA", source="web", contacted=30, meeting_at=at(4, 10),
         qualified_at=at(6, 10), lost_at=at(16, 10), rep_events=4),
    # 3: contacted in 10 min, won 5,000 usd (lower case) after 10 days.
    lead(3, 8, owner=BO, pool="EMEA", source="ads", contacted=10, meeting_at=at(5, 8),
         qualified_at=at(7, 8), proposal_at=at(10, 8), won_at=at(13, 8),
         amount=Decimal(5000), currency="usd", rep_events=6),
    # 4: never contacted; its deadline has passed: a missed SLA.
    lead(3, 12, owner=BO, pool="EMEA", source="ads"),
    # 5: outbound path, presentation → proposal without "qualified"; won in EUR (8 days).
    lead(4, 14, owner=CY, pool="US", source="partner", contacted=2, meeting_at=at(6, 14),
         proposal_at=at(8, 14), won_at=at(12, 14), amount=Decimal(8000), currency="EUR",
         rep_events=5),
    # 6: contacted exactly at the deadline (met), nothing since.
    lead(5, 9, owner=CY, pool="US", source="partner", contacted=15, rep_events=1),
    # 7: no SLA (came in outside business hours), contacted after 4 h, lost (14 days).
    lead(10, 9, owner=ANNA, pool="EMEA", source="web", due=None, contacted=240,
         meeting_at=at(11, 9), qualified_at=at(12, 9), proposal_at=at(14, 9),
         lost_at=at(24, 9), rep_events=6),
    # 8: contacted after 2 h (missed), won without an amount or currency (10 days).
    lead(12, 9, owner=BO, pool="US", source="web", contacted=120, meeting_at=at(13, 9),
         qualified_at=at(14, 9), proposal_at=at(17, 9), won_at=at(22, 9), rep_events=6),
    # 9: not assigned to anyone yet, no SLA.
    lead(20, 9, source="ads", due=None),
    # 10: contacted in 3 min, a meeting booked.
    lead(25, 9, owner=CY, pool="US", source="partner", contacted=3, meeting_at=at(26, 9),
         rep_events=2),
    # 11: not contacted, deadline still ahead at NOW (Nov 30, 12:00): not counted yet.
    lead(28, 9, owner=ANNA, pool="EMEA", source="ads", due=2 * 24 * 60 + 4 * 60),
    # 12: contacted after 20 min (missed), qualified, lost the same day (12 h later).
    lead(29, 9, owner=BO, pool="EMEA", source="web", contacted=20, meeting_at=at(29, 10),
         qualified_at=at(29, 12), lost_at=at(29, 21), rep_events=3),
]  # fmt: skip


def test_totals_of_the_fixed_leads_match_the_hand_count() -> None:
    t = totals_of(LEADS, currency="usd", now=NOW)
    assert t.leads == 12
    # Minutes to first contact of the 9 contacted leads: 5, 30, 10, 2, 15, 240, 120, 3, 20.
    assert t.follow_up_s == [300, 1800, 600, 120, 900, 14400, 7200, 180, 1200]
    # Met: 1, 3, 5, 6 (at the deadline), 10. Missed: 2, 4 (never contacted), 8, 12.
    # Not counted: 7 and 9 (no SLA), 11 (deadline ahead).
    assert (t.sla_met, t.sla_missed) == (5, 4)
    # Reached a meeting or later: 1, 2, 3, 5, 7, 8, 10, 12. Qualified or later: the same
    # but 10 (5 counts by its proposal). A proposal or won: 1, 3, 5, 7, 8.
    assert (t.meetings, t.qualified, t.proposals) == (8, 7, 5)
    assert (t.won, t.lost) == (4, 3)  # won 1, 3, 5, 8; lost 2, 7, 12
    # 10,000 + 5,000 + 0 (lead 8, no amount); lead 5's 8,000 EUR is left out.
    assert (t.revenue, t.other_currency_won) == (Decimal(15000), 1)
    # Days to won or lost: 18, 14, 10, 8, 14, 10, 0.5.
    assert t.cycle_days == [18, 14, 10, 8, 14, 10, 0.5]
    # Their first contacts, in seconds: 300, 1800, 600, 120, 14400, 7200, 1200.
    assert t.first_contact_days == [s / 86400 for s in (300, 1800, 600, 120, 14400, 7200, 1200)]
    assert (t.rep_events, t.reps) == (38, 3)  # 5+4+6+0+5+1+6+6+0+2+0+3; anna, bo, cy


def test_figures_of_the_fixed_leads_match_the_hand_computed_ones() -> None:
    kpis = figures(totals_of(LEADS, currency="USD", now=NOW), NOVEMBER)
    assert list(kpis) == list(KPI_KEYS)
    got = {key: (k.value, k.count, k.of, k.unit) for key, k in kpis.items()}
    assert got == {
        "leads_generated": (12.0, 12, None, "leads"),
        # Sorted: 120 180 300 600 [900] 1200 1800 7200 14400.
        "follow_up_time": (900.0, 9, 12, "seconds"),
        "sla_compliance": (5 / 9, 5, 9, "share"),
        "qualification_rate": (7 / 12, 7, 12, "share"),
        "proposal_rate": (5 / 7, 5, 7, "share"),
        "win_rate": (4 / 7, 4, 7, "share"),
        "close_rate": (4 / 5, 4, 5, "share"),
        # Sorted: 0.5 8 10 [10] 14 14 18.
        "sales_cycle_length": (10.0, 7, None, "days"),
        "deals_closed": (4.0, 4, None, "deals"),
        "revenue": (15000.0, 3, None, "USD"),
        "average_deal_size": (5000.0, 3, None, "USD"),
        # 15,000 * 91.3125 / (3 reps * 30 days) = 1,369,687.5 / 90.
        "average_quarterly_revenue_per_rep": (15218.75, 3, None, "USD"),
        "activity_volume": (38 / 3 / 30, 38, None, "events per rep per day"),
        "quota_attainment": (0.75, 3, None, "share"),  # 15,000 / 20,000
        "forecast_accuracy": (25.0, 3, None, "percent"),  # (15,000 - 12,000) / 12,000
        "funnel": (None, 12, None, "leads"),
    }
    follow_up = kpis["follow_up_time"]
    assert follow_up.mean == 26700 / 9  # 2,966.67 s
    assert follow_up.p90 == 14400  # rank ceil(0.9 * 9) = 9: the largest
    # First contact of the closed leads, sorted: 120 300 600 [1200] 1800 7200 14400 s.
    assert kpis["sales_cycle_length"].first_contact_days == 1200 / 86400
    funnel = kpis["funnel"]
    assert funnel.stages == {"leads": 12, "meetings": 8, "proposals": 5, "won": 4}
    # Kept: 8/12 = 0.67, 5/8 = 0.625, 4/5 = 0.8.
    assert funnel.leak == "meetings → proposals"


def test_notes_flag_small_samples_and_other_currencies() -> None:
    kpis = figures(totals_of(LEADS, currency="USD", now=NOW), NOVEMBER)
    notes = {key: k.note for key, k in kpis.items()}
    other = "1 won deal in another currency is not included"
    assert notes == {
        "leads_generated": None,
        "follow_up_time": "small sample: 9 leads",
        "sla_compliance": "small sample: 9 leads",
        "qualification_rate": "small sample: 12 leads",
        "proposal_rate": "small sample: 7 leads",
        "win_rate": "small sample: 7 deals",
        "close_rate": "small sample: 5 deals",
        "sales_cycle_length": "small sample: 7 deals",
        "deals_closed": None,
        "revenue": other,
        "average_deal_size": f"small sample: 3 deals; {other}",
        "average_quarterly_revenue_per_rep": other,
        "activity_volume": None,
        "quota_attainment": other,
        "forecast_accuracy": other,
        "funnel": "small sample: 12 leads",
    }
    assert all(k.small_sample == ("small sample" in (k.note or "")) for k in kpis.values())
    assert all(k.definition for k in kpis.values())
    # At a threshold of 5, only the figures over fewer than 5 values stay flagged.
    relaxed = figures(
        totals_of(LEADS, currency="USD", now=NOW), NOVEMBER.model_copy(update={"small_sample": 5})
    )
    assert [key for key, k in relaxed.items() if k.small_sample] == ["average_deal_size"]


def test_nothing_to_compute_from_gives_null_with_the_reason() -> None:
    kpis = figures(Totals(), Plan(days=7))
    values = {key: k.value for key, k in kpis.items()}
    assert values == dict.fromkeys(KPI_KEYS) | {
        "leads_generated": 0.0,
        "deals_closed": 0.0,
        "revenue": 0.0,
    }
    notes = {key: k.note for key, k in kpis.items() if k.value is None}
    assert notes == {
        "follow_up_time": "nothing to compute from: no contacted leads",
        "sla_compliance": "nothing to compute from: no leads whose SLA was met or missed",
        "qualification_rate": "nothing to compute from: no leads",
        "proposal_rate": "nothing to compute from: no qualified leads",
        "win_rate": "nothing to compute from: no won or lost deals",
        "close_rate": "nothing to compute from: no proposals",
        "sales_cycle_length": "nothing to compute from: no won or lost deals",
        "average_deal_size": "nothing to compute from: no won deals in USD",
        "average_quarterly_revenue_per_rep": "nothing to compute from: no leads with an owner",
        "activity_volume": "nothing to compute from: no leads with an owner",
        "quota_attainment": "no quota configured",
        "forecast_accuracy": "no forecast configured",
        "funnel": "nothing to compute from: no leads",
    }
    assert not any(k.small_sample for k in kpis.values())
    assert kpis["funnel"].stages == dict.fromkeys(FUNNEL_STAGES, 0)
    assert kpis["funnel"].leak is None
    # A zero quota or forecast is as good as none.
    zero = figures(Totals(leads=1), Plan(days=1, quota=Decimal(0), forecast=Decimal(0)))
    assert zero["quota_attainment"].note == "no quota configured"
    assert zero["forecast_accuracy"].value is None


def test_a_shortfall_against_the_forecast_is_negative() -> None:
    kpis = figures(Totals(won=1, revenue=Decimal(9000)), Plan(days=30, forecast=Decimal(12000)))
    assert kpis["forecast_accuracy"].value == -25.0


def test_p90_is_the_nearest_rank() -> None:
    assert p90([5.0]) == 5.0
    assert p90([float(n) for n in range(1, 11)]) == 9.0  # rank 9 of 10
    assert p90([float(n) for n in range(1, 12)]) == 10.0  # rank ceil(9.9) = 10 of 11
    # 0.9 * 70 is 63.000…01 in floating point; the rank is still 63.
    assert p90([float(n) for n in range(1, 71)]) == 63.0


def test_the_funnel_leak_on_a_tie_is_the_earliest_step() -> None:
    kpis = figures(Totals(leads=10, meetings=5, proposals=5, won=0), Plan(days=1))
    assert kpis["funnel"].leak == "proposals → won"  # 0 kept beats 0.5
    tie = figures(Totals(leads=8, meetings=4, proposals=2, won=1), Plan(days=1))
    assert tie["funnel"].leak == "leads → meetings"  # every step keeps half
    stopped = figures(Totals(leads=3), Plan(days=1))
    assert stopped["funnel"].leak == "leads → meetings"  # later steps start empty


def test_naive_times_are_read_as_utc() -> None:
    fact = LeadFact(created_at=datetime(2026, 11, 2, 9), first_contacted_at=at(2, 9, 5))  # noqa: DTZ001
    assert fact.created_at == at(2, 9)
    assert totals_of([fact], currency="USD", now=NOW).follow_up_s == [300.0]


# ------------------------------------------------------------------------------ plan

QUOTAS = KpisConfig.model_validate(
    {
        "quotas": [
            {"rep": ANNA, "period": "2026-Q3", "revenue": 90000},  # 92 days
            {"rep": ANNA, "period": "2026-Q4", "revenue": 120000},  # 92 days
            {"rep": BO, "period": "2026-10", "revenue": 31000},  # 31 days
        ],
        "forecasts": [
            {"period": "2026-Q4", "revenue": 920000},  # the team's
            {"period": "2026", "revenue": 365000, "pool": "EMEA"},
        ],
    }
)


def test_quotas_are_prorated_across_a_quarter_boundary() -> None:
    start, end = date(2026, 9, 16), date(2026, 10, 15)  # 15 days of Q3, 15 of Q4
    anna = Decimal(90000) * 15 / 92 + Decimal(120000) * 15 / 92  # ≈ 34,239.13
    assert quota_for(QUOTAS, [ANNA], start, end) == anna
    assert quota_for(QUOTAS, ["Anna@Example.com "], start, end) == anna
    assert quota_for(QUOTAS, [BO], start, end) == Decimal(15000)  # 31,000 * 15/31
    assert quota_for(QUOTAS, None, start, end) == anna + Decimal(15000)
    assert quota_for(QUOTAS, [CY], start, end) is None
    assert quota_for(QUOTAS, None, date(2027, 1, 1), date(2027, 3, 31)) is None
    # A whole period is its revenue exactly.
    assert quota_for(QUOTAS, [ANNA], date(2026, 10, 1), date(2026, 12, 31)) == Decimal(120000)


def test_forecasts_are_the_team_s_or_the_pools() -> None:
    start, end = date(2026, 9, 16), date(2026, 10, 15)
    assert forecast_for(QUOTAS, None, start, end) == Decimal(150000)  # 920,000 * 15/92
    assert forecast_for(QUOTAS, ["EMEA"], start, end) == Decimal(30000)  # 365,000 * 30/365
    assert forecast_for(QUOTAS, ["US"], start, end) is None
    # Before Q4 the team has no forecast of its own: the pools' add up.
    assert forecast_for(QUOTAS, None, date(2026, 9, 1), date(2026, 9, 30)) == Decimal(30000)
    assert forecast_for(KpisConfig(), None, start, end) is None


def test_period_bounds_cut_the_dates_into_clipped_buckets() -> None:
    d = date
    assert period_bounds("week", d(2026, 12, 24), d(2027, 1, 12)) == [
        ("2026-W52", d(2026, 12, 24), d(2026, 12, 27)),
        ("2026-W53", d(2026, 12, 28), d(2027, 1, 3)),  # ISO year 2026 runs into January
        ("2027-W01", d(2027, 1, 4), d(2027, 1, 10)),
        ("2027-W02", d(2027, 1, 11), d(2027, 1, 12)),
    ]
    assert period_bounds("quarter", d(2026, 8, 15), d(2027, 1, 12)) == [
        ("2026-Q3", d(2026, 8, 15), d(2026, 9, 30)),
        ("2026-Q4", d(2026, 10, 1), d(2026, 12, 31)),
        ("2027-Q1", d(2027, 1, 1), d(2027, 1, 12)),
    ]
    assert period_bounds("month", d(2028, 2, 10), d(2028, 3, 1)) == [
        ("2028-02", d(2028, 2, 10), d(2028, 2, 29)),
        ("2028-03", d(2028, 3, 1), d(2028, 3, 1)),
    ]
    assert period_bounds("day", d(2026, 11, 29), d(2026, 12, 1)) == [
        ("2026-11-29", d(2026, 11, 29), d(2026, 11, 29)),
        ("2026-11-30", d(2026, 11, 30), d(2026, 11, 30)),
        ("2026-12-01", d(2026, 12, 1), d(2026, 12, 1)),
    ]
    assert period_bounds("day", d(2026, 11, 2), d(2026, 11, 1)) == []
    with pytest.raises(ValueError, match="'rep' is not a period"):
        period_bounds("rep", d(2026, 11, 1), d(2026, 11, 2))


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["day", "week", "month", "quarter"]),
    st.dates(date(2020, 1, 1), date(2030, 12, 31)),
    st.integers(0, 800),
)
def test_period_buckets_cover_the_dates_once(group_by: str, start: date, span: int) -> None:
    end = start + timedelta(days=span)
    buckets = period_bounds(group_by, start, end)
    assert buckets[0][1] == start and buckets[-1][2] == end
    for (_, _, last), (_, first, _) in itertools.pairwise(buckets):
        assert first == last + timedelta(days=1)
    assert len({key for key, _, _ in buckets}) == len(buckets)
    if group_by == "week":
        assert all(first.weekday() == 0 for _, first, _ in buckets[1:])


# ------------------------------------------------------------------------------ report


def test_the_report_as_csv_carries_the_json_s_digits() -> None:
    whole = figures(totals_of(LEADS, currency="USD", now=NOW), NOVEMBER)
    anna = figures(totals_of([f for f in LEADS if f.owner == ANNA], currency="USD", now=NOW),
                   NOVEMBER)  # fmt: skip
    report = KpiReport.model_validate(
        {"from": date(2026, 11, 1), "to": date(2026, 11, 30), "kpis": whole,
         "groups": [KpiGroup(key=ANNA, kpis=anna)]}
    )  # fmt: skip
    body = json.loads(json.dumps(report.model_dump(mode="json", by_alias=True)))
    assert (body["from"], body["to"]) == ("2026-11-01", "2026-11-30")
    rows = csv_rows(report)
    assert rows[0] == list(CSV_HEADER)
    assert rows[1] == ["all", "leads_generated", "12.0", "12", "", "leads", ""]
    assert ["all", "sla_compliance", "0.5555555555555556", "5", "9", "share",
            "small sample: 9 leads"] in rows  # fmt: skip
    assert ["all", "funnel.leak", "meetings → proposals", "", "", "step", ""] in rows
    assert ["all", "funnel.meetings", "8", "8", "", "leads", ""] in rows
    assert ["all", "follow_up_time.p90", "14400.0", "", "", "seconds", ""] in rows
    main = [row for row in rows[1:] if "." not in row[1]]
    assert [(g, k) for g, k, *_ in main] == [("all", k) for k in KPI_KEYS] + [
        (ANNA, k) for k in KPI_KEYS
    ]
    groups = {"all": body["kpis"], ANNA: body["groups"][0]["kpis"]}
    for group, key, value, count, of, unit, note in main:
        sent = groups[group][key]
        assert value == ("" if sent["value"] is None else repr(sent["value"]))
        assert (count, of) == tuple(
            "" if n is None else str(n) for n in (sent["count"], sent["of"])
        )
        assert (unit, note) == (sent["unit"], sent["note"] or "")


def test_a_query_checks_its_dates_and_grouping() -> None:
    query = KpiQuery(start=date(2026, 11, 1), end=date(2026, 11, 30), group_by="week")
    assert query.pools is None
    with pytest.raises(ValueError, match="the end date must not be before the start date"):
        KpiQuery(start=date(2026, 11, 2), end=date(2026, 11, 1))
    with pytest.raises(ValueError, match="group_by must be one of rep, pool, source"):
        KpiQuery(start=date(2026, 11, 1), end=date(2026, 11, 1), group_by="year")


# ------------------------------------------------------------------------------ properties

moments = st.integers(0, 60 * 24 * 40).map(lambda m: at(1, 0) + timedelta(minutes=m))
maybe_moment = st.none() | moments


@st.composite
def lead_facts(draw: st.DrawFn) -> LeadFact:
    """A lead with any combination of milestones, in any order: what an import or a
    store out of step might hand in, not only what the lifecycle allows."""
    won = draw(maybe_moment)
    return LeadFact(
        created_at=draw(moments),
        owner=draw(st.sampled_from([None, ANNA, BO, CY, "Anna@Example.com"])),
        sla_due_at=draw(maybe_moment),
        first_contacted_at=draw(maybe_moment),
        meeting_at=draw(maybe_moment),
        qualified_at=draw(maybe_moment),
        proposal_at=draw(maybe_moment),
        won_at=won,
        lost_at=draw(maybe_moment),
        amount=draw(st.none() | st.decimals(0, 10**6, places=2)) if won else None,
        currency=draw(st.sampled_from([None, "USD", "usd", "EUR"])) if won else None,
        rep_events=draw(st.integers(0, 20)),
    )


plans = st.builds(
    Plan,
    days=st.integers(1, 400),
    quota=st.none() | st.decimals(0, 10**6, places=2),
    forecast=st.none() | st.decimals(0, 10**6, places=2),
    small_sample=st.integers(1, 30),
)
ADDITIVE = ("leads", "sla_met", "sla_missed", "meetings", "qualified", "proposals", "won",
            "lost", "revenue", "other_currency_won", "rep_events")  # fmt: skip
LISTS = ("follow_up_s", "cycle_days", "first_contact_days")


@settings(max_examples=150, deadline=None)
@given(st.lists(lead_facts(), max_size=30), plans)
def test_rates_are_shares_consistent_with_their_counts(facts: list[LeadFact], plan: Plan) -> None:
    kpis = figures(totals_of(facts, currency="USD", now=NOW), plan)
    assert list(kpis) == list(KPI_KEYS)
    for key, kpi in kpis.items():
        if kpi.of is not None:
            assert kpi.count is not None and 0 <= kpi.count <= kpi.of, key
        if kpi.unit == "share" and kpi.of is not None:
            if kpi.of == 0:
                assert kpi.value is None and (kpi.note or "").startswith("nothing"), key
            else:
                assert kpi.value == kpi.count / kpi.of, key  # type: ignore[operator]
                assert 0 <= kpi.value <= 1, key
        assert kpi.small_sample == ("small sample" in (kpi.note or "")), key
        if kpi.value is None and key != "funnel":
            assert kpi.note, key
    stages = kpis["funnel"].stages
    assert stages is not None and list(stages) == list(FUNNEL_STAGES)
    counts = list(stages.values())
    assert counts == sorted(counts, reverse=True)
    follow_up = kpis["follow_up_time"]
    if follow_up.value is not None:
        assert follow_up.p90 is not None and follow_up.mean is not None
        assert 0 <= follow_up.value <= follow_up.p90


@settings(max_examples=100, deadline=None)
@given(st.lists(lead_facts(), max_size=15), st.lists(lead_facts(), max_size=15))
def test_totals_of_a_concatenation_add_up(first: list[LeadFact], second: list[LeadFact]) -> None:
    a, b = (totals_of(facts, currency="USD", now=NOW) for facts in (first, second))
    both = totals_of(first + second, currency="USD", now=NOW)
    for name in ADDITIVE:
        assert getattr(both, name) == getattr(a, name) + getattr(b, name), name
    for name in LISTS:
        assert getattr(both, name) == getattr(a, name) + getattr(b, name), name
    assert max(a.reps, b.reps) <= both.reps <= a.reps + b.reps


def test_a_kpi_without_extras_dumps_them_as_null() -> None:
    kpi = Kpi(value=1.0, count=1, of=None, unit="leads", definition="x")
    assert kpi.model_dump()["stages"] is None


# ------------------------------------------------------------------------------ configuration

DOCUMENT = """\
reps:
  - {email: anna@example.com, name: Anna}
  - {email: bo@example.com, name: Bo}
pools:
  - name: EMEA AE
    members: [{rep: anna@example.com}, {rep: bo@example.com}]
fallback: {pool: EMEA AE}
"""
KPIS = """\
kpis:
  currency: eur
  small_sample: 10
  quotas:
    - rep: Anna@Example.com
      period: 2026-Q4
      revenue: 120000
    - {rep: bo@example.com, period: 2026, revenue: 1250.5}
    - {rep: bo@example.com, period: 2027-01, revenue: 0.1}
  forecasts:
    - {period: 2026-Q4, revenue: 500000, pool: EMEA AE}
    - {period: 2026-Q4, revenue: 600000}
"""


def config_problems(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_yaml(text)
    return caught.value.problems


def test_the_kpis_section_reads_as_written_and_exports_canonically() -> None:
    config = load_yaml(DOCUMENT + KPIS)
    kpis = config.kpis
    assert (kpis.currency, kpis.small_sample) == ("EUR", 10)
    first = kpis.quotas[0]
    assert (first.rep, str(first.period), first.revenue) == (ANNA, "2026-Q4", Decimal(120000))
    assert (first.period.start(), first.period.end()) == (date(2026, 10, 1), date(2026, 12, 31))
    assert str(kpis.quotas[1].period) == "2026"  # YAML's number 2026, read as the year
    assert kpis.quotas[2].revenue == Decimal("0.1")
    assert (kpis.forecasts[0].pool, kpis.forecasts[1].pool) == ("EMEA AE", None)
    exported = dump_yaml(config)
    assert exported.endswith(
        "kpis:\n"
        "  currency: EUR\n"
        "  small_sample: 10\n"
        "  quotas:\n"
        "    - {rep: anna@example.com, period: 2026-Q4, revenue: 120000}\n"
        "    - {rep: bo@example.com, period: '2026', revenue: 1250.5}\n"
        "    - {rep: bo@example.com, period: 2027-01, revenue: 0.1}\n"
        "  forecasts:\n"
        "    - {period: 2026-Q4, revenue: 500000, pool: EMEA AE}\n"
        "    - {period: 2026-Q4, revenue: 600000}\n"
    )
    assert dump_yaml(load_yaml(exported)) == exported
    assert RoutingConfig.model_validate(config.dump()) == config  # the JSON form too
    assert config.dump()["kpis"]["quotas"][1] == {
        "rep": BO,
        "period": "2026",
        "revenue": 1250.5,
    }


def test_a_document_without_kpis_keeps_the_defaults_and_exports_without_them() -> None:
    config = load_yaml(DOCUMENT)
    assert config.kpis == KpisConfig(currency="USD", small_sample=20, quotas=[], forecasts=[])
    exported = dump_yaml(config)
    assert "kpis" not in exported
    written = load_yaml(DOCUMENT + "kpis: {currency: USD, small_sample: 20}\n")
    assert dump_yaml(written) == exported


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-Q1", date(2026, 1, 1), date(2026, 3, 31)),
        ("2026-q4", date(2026, 10, 1), date(2026, 12, 31)),
        ("2026-02", date(2026, 2, 1), date(2026, 2, 28)),
        ("2028-02", date(2028, 2, 1), date(2028, 2, 29)),
        (" 2026 ", date(2026, 1, 1), date(2026, 12, 31)),
        (2026, date(2026, 1, 1), date(2026, 12, 31)),
    ],
)
def test_a_period_has_its_first_and_last_day(text: object, start: date, end: date) -> None:
    period = KpiPeriod.parse(text)
    assert (period.start(), period.end()) == (start, end)
    assert KpiPeriod.parse(str(period)) == period
    assert period.days() == (end - start).days + 1


@pytest.mark.parametrize(
    ("old", "new", "location", "message"),
    [
        (
            "rep: Anna@Example.com",
            "rep: carl@example.com",
            "kpis.quotas[0].rep",
            "unknown rep 'carl@example.com'",
        ),
        (
            "period: 2026-Q4\n",
            "period: 2026-Q5\n",
            "kpis.quotas[0].period",
            "'2026-Q5' is not a period: quarters are Q1 to Q4",
        ),
        (
            "period: 2027-01",
            "period: 2027-13",
            "kpis.quotas[2].period",
            "'2027-13' is not a period: months are 01 to 12",
        ),
        (
            "period: 2027-01",
            "period: Q1 2027",
            "kpis.quotas[2].period",
            "'Q1 2027' is not a period: write a quarter like 2026-Q4, a month like 2026-11 "
            "or a year like 2026",
        ),
        (
            "period: 2027-01",
            "period: 2027-01-01",
            "kpis.quotas[2].period",
            "2027-01-01 is a day, not a period: write a quarter like 2026-Q4, a month like "
            "2026-11 or a year like 2026",
        ),
        (
            "period: 2027-01",
            "period: 2026-Q4",
            "kpis.quotas[2].period",
            "2026-Q4 overlaps 2026 (kpis.quotas[1]) for rep 'bo@example.com': give one quota "
            "per day, or it counts twice",
        ),
        (
            "revenue: 600000}",
            "revenue: 600000, pool: EMEA AE}",
            "kpis.forecasts[1].period",
            "pool 'EMEA AE' has a forecast for 2026-Q4 already (kpis.forecasts[0]): give one "
            "forecast per period",
        ),
        (
            "500000, pool: EMEA AE}",
            "500000, pool: APAC}",
            "kpis.forecasts[0].pool",
            "unknown pool 'APAC'",
        ),
        (
            "currency: eur",
            "currency: euro",
            "kpis.currency",
            "'euro' is not a currency: use a three-letter code like USD or EUR",
        ),
        (
            "small_sample: 10",
            "small_sample: 0",
            "kpis.small_sample",
            "Input should be greater than or equal to 1",
        ),
        (
            "revenue: 0.1}",
            "revenue: -5}",
            "kpis.quotas[2].revenue",
            "Input should be greater than or equal to 0",
        ),
    ],
)
def test_a_bad_kpis_section_names_the_field_and_its_line(
    old: str, new: str, location: str, message: str
) -> None:
    text = DOCUMENT + KPIS
    assert text.count(old) == 1, old
    changed = text.replace(old, new)
    (problem,) = config_problems(changed)
    assert (problem.location, problem.message) == (location, message)
    assert problem.line == text[: text.index(old)].count("\n") + 1  # the changed line
