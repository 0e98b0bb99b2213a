"""Lead scoring: fit points from the configuration's scoring rules, each explained;
engagement decaying with its half-life; the total bounded and graded."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.config import GradeConfig, ScoringConfig, ScoringRule
from domain.config_yaml import load_yaml
from domain.lead import LeadSubmission
from domain.scoring import (
    Category,
    Engagement,
    add_engagement,
    decay,
    engagement_points,
    score_lead,
)
from tests.strategies import (
    TERRITORIES,
    engagement_events,
    moments,
    routing_leads,
    scoring_configs,
    submissions,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
MINUS = "\u2212"


def rule(name: str, points: int, when: dict[str, object]) -> ScoringRule:
    return ScoringRule.model_validate({"name": name, "points": points, "when": when})


def test_a_senior_lead_asking_for_a_demo_is_hot_and_every_point_is_explained() -> None:
    lead = LeadSubmission(
        email="dana@bigco.com",
        title="VP Sales",
        company="BigCo",
        company_size=800,
        industry="SaaS",
        phone="+1 415 555 0100",
        source="demo",
    )
    result = score_lead(lead)
    assert (result.score, result.grade, result.fit, result.engagement) == (75, "hot", 75, 0)
    assert [(p.rule, p.points, p.reason) for p in result.parts] == [
        ("company of 500+", 20, "+20 company size 800 (500 or more)"),
        ("target industry", 10, '+10 industry is "SaaS"'),
        ("senior title", 20, '+20 title contains "VP"'),
        ("demo or pricing request", 20, '+20 source is "demo"'),
        ("phone given", 5, "+5 phone given"),
    ]
    assert {p.category for p in result.parts} == {Category.fit}


def test_a_free_mail_lead_loses_points_and_says_why() -> None:
    lead = LeadSubmission(email="jo@gmail.com", title="Sales Manager", company_size=120)
    result = score_lead(lead)
    assert [p.reason for p in result.parts] == [
        "+10 company size 120 (50\u2013499)",
        '+10 title contains "Manager"',
        f"{MINUS}10 free-mail address (gmail.com)",
    ]
    assert (result.score, result.grade) == (10, "cold")
    assert score_lead(LeadSubmission(email="x@gmail.com")).score == 0  # never below 0


def test_the_configuration_s_scoring_rules_grades_and_territories_are_used() -> None:
    model = ScoringConfig(
        rules=[
            rule("DACH", 30, {"field": "country", "op": "in_territory", "value": "DACH"}),
            rule(
                "big or partner",
                15,
                {
                    "any": [
                        {"field": "company_size", "op": "gt", "value": 1000},
                        {"field": "extra.partner", "op": "eq", "value": "yes"},
                    ]
                },
            ),
            rule(
                "engineer in Berlin",
                5,
                {
                    "all": [
                        {"field": "title", "op": "contains", "value": "engineer"},
                        {"field": "state", "op": "not_empty"},
                    ]
                },
            ),
        ],
        grades=[GradeConfig(name="A", min_score=40), GradeConfig(name="B", min_score=0)],
        max_score=40,
    )
    lead = LeadSubmission(
        email="li@acme.de",
        country="Germany",
        state="Berlin",
        title="Staff Engineer",
        extra={"partner": "yes"},
    )
    result = score_lead(lead, model, territories=TERRITORIES)
    assert [p.reason for p in result.parts] == [
        "+30 in territory DACH",
        '+15 partner is "yes"',
        '+5 title contains "Engineer" and state given',
    ]
    assert (result.fit, result.score, result.grade) == (50, 40, "A")  # capped at max_score
    # Without the territories the rule names, the territory matches no lead.
    assert score_lead(lead, model).fit == 20


def test_engagement_decays_with_its_half_life_and_is_one_explained_part() -> None:
    lead = LeadSubmission(email="kim@acme.com")
    engaged = Engagement(points=28, at=T0)
    result = score_lead(lead, engagement=engaged, now=T0 + 14 * DAY)
    assert result.engagement == 14 and result.score == 14
    (part,) = result.parts
    assert (part.rule, part.category, part.reason) == (
        "engagement",
        Category.engagement,
        "engagement 14 pts after decay",
    )
    # Without ``now``: as of the engagement's own time, undecayed.
    assert score_lead(lead, engagement=engaged).engagement == 28
    # Nothing left after decay: no part.
    assert score_lead(lead, engagement=engaged, now=T0 + 1000 * DAY).parts == []


def test_add_engagement_decays_then_adds_the_kind_s_points() -> None:
    first, points = add_engagement(Engagement(), "meeting_requested", T0)
    assert (first, points) == (Engagement(points=15, at=T0), 15)
    second, points = add_engagement(first, "link_clicked", T0 + 14 * DAY)
    assert points == 5 and second.at == T0 + 14 * DAY
    assert second.points == pytest.approx(7.5 + 5)
    _, unknown = add_engagement(second, "webinar_attended", T0 + 15 * DAY)
    assert unknown == ScoringConfig().engagement.other_points


def test_old_names_still_work() -> None:
    assert decay(20, 30, 30) == pytest.approx(10)
    assert decay(20, 0, 30) == 20
    assert score_lead(LeadSubmission(email="a@b.example")).grade == "cold"


def test_the_model_of_a_yaml_document_scores_as_written() -> None:
    config = load_yaml(
        """
pools: [{name: P, members: [{rep: a@x.com}]}]
reps: [{email: a@x.com, name: A}]
fallback: {pool: P}
scoring:
  rules:
    - {name: enterprise, points: 50, when: {field: company_size, op: gte, value: 1000}}
  grades: [{name: top, min_score: 50}, {name: rest, min_score: 0}]
"""
    )
    big = score_lead(LeadSubmission(email="a@b.example", company_size=5000), config.scoring)
    assert (big.score, big.grade) == (50, "top")


# ------------------------------------------------------------------------------ properties


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(scoring_configs(), routing_leads | submissions, st.floats(-500, 500), moments, moments)
def test_score_is_bounded_graded_and_the_sum_of_its_parts(
    model: ScoringConfig,
    lead: LeadSubmission,
    points: float,
    at: datetime,
    now: datetime,
) -> None:
    result = score_lead(
        lead, model, territories=TERRITORIES, engagement=Engagement(points=points, at=at), now=now
    )
    assert 0 <= result.score <= model.max_score
    assert result.score == max(0, min(model.max_score, round(sum(p.points for p in result.parts))))
    expected = max(
        (g for g in model.grades if g.min_score <= result.score), key=lambda g: g.min_score
    )
    assert result.grade == expected.name
    assert all(p.reason for p in result.parts)
    assert result.fit == sum(p.points for p in result.parts if p.category is Category.fit)


@given(
    st.floats(min_value=-1000, max_value=1000, allow_nan=False),
    moments,
    st.integers(min_value=0, max_value=400 * 86400),
    st.integers(min_value=0, max_value=400 * 86400),
    st.integers(min_value=3600, max_value=365 * 86400),
)
def test_decay_is_monotone_towards_zero(
    points: float, at: datetime, a: int, b: int, half_life_s: int
) -> None:
    half_life = timedelta(seconds=half_life_s)
    start = Engagement(points=points, at=at)
    sooner, later = sorted((a, b))
    early = engagement_points(start, at + timedelta(seconds=sooner), half_life)
    late = engagement_points(start, at + timedelta(seconds=later), half_life)
    assert abs(late) <= abs(early) <= abs(points)
    assert math.copysign(1, late) == math.copysign(1, points) or late == 0


@given(st.floats(min_value=-1000, max_value=1000, allow_nan=False), moments)
def test_half_life_halves(points: float, at: datetime) -> None:
    half_life = timedelta(days=14)
    after = engagement_points(Engagement(points=points, at=at), at + half_life, half_life)
    assert after == pytest.approx(points / 2)
    twice = engagement_points(Engagement(points=points, at=at), at + 2 * half_life, half_life)
    assert twice == pytest.approx(points / 4)


@given(engagement_events, st.randoms(use_true_random=False))
def test_add_engagement_does_not_depend_on_the_order_of_events(
    events: list[tuple[str, datetime]], random: object
) -> None:
    shuffled = list(events)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    in_order, shuffled_total = Engagement(), Engagement()
    for kind, at in sorted(events, key=lambda e: e[1]):
        in_order, _ = add_engagement(in_order, kind, at)
    for kind, at in shuffled:
        shuffled_total, _ = add_engagement(shuffled_total, kind, at)
    assert shuffled_total.at == in_order.at
    assert shuffled_total.points == pytest.approx(in_order.points, rel=1e-9, abs=1e-9)
