"""The lifecycle sections of the configuration document: each pool's speed-to-lead SLA,
the lead-scoring model, the nurture loop's timings and the hand-off to account
management (LIFECYCLE.md part B; docs/lifecycle.md)."""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import pairwise
from typing import Any

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from domain.config_base import (
    Name,
    Strict,
    When,
)
from domain.durations import Duration, format_duration


class SlaConfig(Strict):
    """A pool's speed-to-lead SLA: how long the owner has to contact a new lead before
    they are reminded, before the lead is reassigned (at most ``max_reassignments``
    times), and before the pool's manager is told. Measured from the assignment round
    the clock or, with ``business_hours``, in working time (the owner's working hours,
    mon-fri 09:00-17:00 when they have none, less the pool's ``holidays``)."""

    remind_after: Duration = timedelta(minutes=15)
    reassign_after: Duration = timedelta(minutes=30)
    escalate_after: Duration = timedelta(hours=1)
    max_reassignments: int = Field(2, ge=0, le=20)
    business_hours: bool = False

    @model_validator(mode="after")
    def _in_order(self) -> SlaConfig:
        steps = [
            ("remind_after", self.remind_after),
            ("reassign_after", self.reassign_after),
            ("escalate_after", self.escalate_after),
        ]
        for (first, early), (then, late) in pairwise(steps):
            if early > late:
                raise ValueError(
                    f"{first} ({format_duration(early)}) must not be longer than {then} "
                    f"({format_duration(late)}): remind, then reassign, then escalate"
                )
        return self


SCORE_FIELDS = ("score", "grade")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class ScoringRule(Strict):
    """Points a lead earns (or loses) when ``when`` holds: the same conditions as a
    routing rule's, less ``score`` and ``grade``."""

    name: Name
    points: int = Field(ge=-100, le=100)
    when: When

    @field_validator("points")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("a rule worth 0 points changes nothing: give -100..100, not 0")
        return value


def _scoring_rules() -> list[ScoringRule]:
    """The fit model the issue describes: company size, industry, seniority, free mail
    and the intent the form shows. Territories are left to admins."""
    rules: list[dict[str, Any]] = [
        {
            "name": "company of 50-499",
            "points": 10,
            "when": {"field": "company_size", "op": "between", "value": [50, 499]},
        },
        {
            "name": "company of 500+",
            "points": 20,
            "when": {"field": "company_size", "op": "gte", "value": 500},
        },
        {
            "name": "target industry",
            "points": 10,
            "when": {"field": "industry", "op": "in", "value": ["software", "saas", "fintech"]},
        },
        {
            "name": "senior title",
            "points": 20,
            "when": {
                "field": "title",
                "op": "regex",
                "value": r"\b(vp|vice president|director|head|chief|founder|c[eotfimr]o)\b",
            },
        },
        {
            "name": "manager title",
            "points": 10,
            "when": {"field": "title", "op": "regex", "value": r"\bmanager\b"},
        },
        {
            "name": "free-mail address",
            "points": -10,
            "when": {"field": "free_mail", "op": "eq", "value": True},
        },
        {
            "name": "demo or pricing request",
            "points": 20,
            "when": {
                "field": "source",
                "op": "in",
                "value": ["demo", "demo-request", "pricing", "contact-sales"],
            },
        },
        {"name": "phone given", "points": 5, "when": {"field": "phone", "op": "not_empty"}},
        {"name": "message written", "points": 5, "when": {"field": "message", "op": "not_empty"}},
    ]
    return [ScoringRule.model_validate(rule) for rule in rules]


def _engagement_points() -> dict[str, int]:
    return {
        "email_opened": 2,
        "link_clicked": 5,
        "page_visited": 3,
        "form_resubmitted": 10,
        "meeting_requested": 15,
    }


class EngagementConfig(Strict):
    """Points per kind of engagement (an email opened, a page visited), losing half their
    value every ``half_life``."""

    half_life: Duration = timedelta(days=14)
    points: dict[str, int] = Field(default_factory=_engagement_points, max_length=100)
    other_points: int = Field(1, ge=-100, le=100)  # a kind not listed

    @field_validator("points")
    @classmethod
    def _kinds(cls, value: dict[str, int]) -> dict[str, int]:
        for kind, points in value.items():
            if not _KIND.match(kind):
                raise ValueError(
                    f"{kind!r} is not a kind of engagement: use snake_case like email_opened"
                )
            if not -100 <= points <= 100:
                raise ValueError(f"{kind}: give -100..100 points, not {points}")
        return value


class GradeConfig(Strict):
    """A lead with at least ``min_score`` points has this grade (the highest it reaches)."""

    name: Name
    min_score: int = Field(ge=0, le=1000)


def _grades() -> list[GradeConfig]:
    return [
        GradeConfig(name="hot", min_score=60),
        GradeConfig(name="warm", min_score=30),
        GradeConfig(name="cold", min_score=0),
    ]


class ScoringConfig(Strict):
    """The lead-scoring model: fit points from ``rules``, engagement points decaying with
    age, the total capped to ``0..max_score`` and graded."""

    rules: list[ScoringRule] = Field(default_factory=_scoring_rules, max_length=500)
    engagement: EngagementConfig = Field(default_factory=EngagementConfig)
    grades: list[GradeConfig] = Field(default_factory=_grades, min_length=1, max_length=20)
    max_score: int = Field(100, ge=1, le=1000)

    @field_validator("grades")
    @classmethod
    def _lowest_is_zero(cls, value: list[GradeConfig]) -> list[GradeConfig]:
        lowest = min(value, key=lambda g: g.min_score)
        if lowest.min_score != 0:
            raise ValueError(
                f"the lowest grade must have min_score 0, so that every lead has a grade "
                f"(the lowest is {lowest.name!r} at {lowest.min_score})"
            )
        return value


class NurtureConfig(Strict):
    """When a lead goes to nurture and when it comes back (LIFECYCLE.md B)."""

    # Assigned or contacted without a meeting booked for this long: to nurture.
    no_meeting_after: Duration = timedelta(days=14)
    # Engagement pushing a nurtured lead's score to this recycles it before its cool-off.
    recycle_score: int = Field(60, ge=0, le=1000)
    cool_off: Duration = timedelta(days=90)  # nurturing, then recycled when it ends
    lost_cool_off: Duration = timedelta(days=180)  # the cool-off of a lost deal
    stale_after: Duration = timedelta(days=30)  # a worked lead with no event: owner reminded
    list_name: Name = "Leadflow nurture"  # the CRM's nurture list or campaign
    # A lead nobody could take waits in its queue; routing is tried again after this.
    queue_retry_after: Duration = timedelta(minutes=15)


class OnboardingTask(Strict):
    """A task created in the CRM for the account manager when a deal is won."""

    subject: Name
    due_in: Duration


def _onboarding_tasks() -> list[OnboardingTask]:
    return [
        OnboardingTask(subject="Kick-off call with the new customer", due_in=timedelta(days=2)),
        OnboardingTask(
            subject="Send the welcome pack and access details", due_in=timedelta(days=1)
        ),
    ]


class HandoffConfig(Strict):
    """Who takes a won customer: a rep of the account-management ``pool`` (none: the
    deal's owner keeps it), with ``onboarding_tasks`` created for them."""

    pool: Name | None = None
    onboarding_tasks: list[OnboardingTask] = Field(default_factory=_onboarding_tasks, max_length=50)


ScoringRule.model_rebuild()
