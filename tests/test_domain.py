"""Pure domain rules: identity, validation, scoring (routing: tests/test_routing_engine.py)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.intake import FirstPosts, FloodPolicy, IntakeCounts, admit
from domain.lead import LeadSubmission, lead_key, normalize_email
from domain.scoring import DEFAULT_MODEL, Engagement, decay, score_lead
from tests.strategies import emails, submissions

SECRET = b"test installation secret"


@given(emails)
def test_lead_identity_ignores_case_and_surrounding_whitespace(email: str) -> None:
    assert lead_key(f"  {email.upper()}\t", SECRET) == lead_key(email, SECRET)
    assert normalize_email(f" {email.upper()} ") == email.lower()


def test_lead_identity_depends_on_source_system() -> None:
    assert lead_key("a@b.com", SECRET, "web") != lead_key("a@b.com", SECRET, "salesforce")


def test_lead_identity_cannot_be_computed_without_the_installation_secret() -> None:
    email = "jane@acme.example"
    unsalted = hashlib.sha256(f"web:{email}".encode()).hexdigest()[:24]
    assert lead_key(email, SECRET) != unsalted
    assert lead_key(email, SECRET) != lead_key(email, b"another installation's secret")
    assert re.fullmatch(r"[0-9a-f]{24}", lead_key(email, SECRET))


def test_submission_normalises_email() -> None:
    assert LeadSubmission(email="  Jane@ACME.com ").email == "jane@acme.com"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b.com", "phone": "call me maybe"}, "phone"),
        ({"email": "a@b.com", "company_size": 0}, "company_size"),
        ({"email": "a@b.com", "extra": {"1bad": "x"}}, "extra"),
        ({"email": "a@b.com", "extra": {f"k{i}": "v" for i in range(21)}}, "extra"),
        ({"email": "a@b.com", "first_name": "x" * 201}, "first_name"),
        ({"email": "a@b.com", "nonsense": 1}, "nonsense"),
    ],
)
def test_submission_rejects_bad_fields(data: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        LeadSubmission.model_validate(data)
    assert field in {str(e["loc"][0]) for e in info.value.errors()}


@given(submissions)
def test_score_is_bounded_and_graded(lead: LeadSubmission) -> None:
    result = score_lead(lead)
    assert 0 <= result.score <= DEFAULT_MODEL.max_score
    assert result.grade in {g.name for g in DEFAULT_MODEL.grades}
    assert result.score == max(0, min(100, round(sum(p.points for p in result.parts))))


@given(submissions, st.floats(min_value=0, max_value=365), st.floats(min_value=0, max_value=100))
def test_engagement_only_decays(lead: LeadSubmission, age: float, points: float) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    engaged = Engagement(points=points, at=at)
    fresh = score_lead(lead, engagement=engaged, now=at)
    aged = score_lead(lead, engagement=engaged, now=at + timedelta(days=age))
    assert aged.fit == fresh.fit
    assert aged.engagement <= fresh.engagement


def test_decay_halves_at_half_life() -> None:
    assert decay(20, 30, 30) == pytest.approx(10)
    assert decay(20, 0, 30) == 20


def test_senior_business_lead_scores_higher_than_anonymous_freemail() -> None:
    strong = LeadSubmission(
        email="cto@bigco.com",
        title="CTO",
        company="BigCo",
        company_size=800,
        phone="+1 415 555 0100",
        source="demo",
    )
    weak = LeadSubmission(email="someone@gmail.com")
    assert score_lead(strong).grade == "hot"
    assert score_lead(weak).score < score_lead(strong).score


def test_flood_window_refuses_past_its_limit_and_reopens() -> None:
    policy = FloodPolicy(window_s=60, max_posts=3, detail_cap=1)
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    counts = IntakeCounts(window_started_at=start)
    decisions = []
    for second in range(5):
        decision = admit(policy, counts, start + timedelta(seconds=second))
        decisions.append(decision)
        counts = decision.counts if decision.allowed else counts
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.detailed for d in decisions[:3]] == [True, True, False]  # first + 1 in detail
    assert decisions[3].retry_after_s == 58  # the window ends 60 s after it began
    later = admit(policy, counts, start + timedelta(seconds=61))
    assert later.allowed and later.counts.window_posts == 1 and later.counts.posts == 4


def test_first_posts_remember_a_bounded_number_of_leads() -> None:
    seen = FirstPosts(capacity=2)
    assert seen.first("a") and seen.first("b")
    assert not seen.first("a")  # remembered, and now the most recent
    assert seen.first("c")  # evicts "b", the oldest
    assert seen.first("b") and not seen.first("c")
