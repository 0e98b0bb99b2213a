"""The lead-scoring points model: fit points for who the lead is, engagement points for
what they did, engagement decaying with age, and grade thresholds (LIFECYCLE.md B)."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from domain.lead import LeadSubmission


class Category(StrEnum):
    fit = "fit"
    engagement = "engagement"


class Condition(BaseModel):
    """A test on one submission field. ``present`` ignores ``value``."""

    field: str
    op: Literal["present", "equals", "in", "contains_any", "gte", "not_in_domain"]
    value: str | int | list[str] | None = None


class ScoringRule(BaseModel):
    name: str
    category: Category
    points: int = Field(ge=-100, le=100)
    when: Condition


class Grade(BaseModel):
    name: str
    min_score: int


class ScoringModel(BaseModel):
    """Points rules plus thresholds. Admins edit these as data; the default is below."""

    rules: list[ScoringRule]
    grades: list[Grade]
    engagement_half_life_days: float = Field(30.0, gt=0)
    max_score: int = 100


class ScorePart(BaseModel):
    rule: str
    category: Category
    points: float


class ScoreResult(BaseModel):
    score: int
    fit: int
    engagement: int
    grade: str
    parts: list[ScorePart]


FREEMAIL = [
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "aol.com",
    "icloud.com",
    "proton.me",
    "protonmail.com",
    "gmx.com",
    "gmx.de",
    "mail.com",
    "yandex.ru",
    "web.de",
]

DEFAULT_MODEL = ScoringModel(
    rules=[
        ScoringRule(
            name="business email",
            category=Category.fit,
            points=10,
            when=Condition(field="email", op="not_in_domain", value=FREEMAIL),
        ),
        ScoringRule(
            name="company named",
            category=Category.fit,
            points=5,
            when=Condition(field="company", op="present"),
        ),
        ScoringRule(
            name="company of 50+",
            category=Category.fit,
            points=10,
            when=Condition(field="company_size", op="gte", value=50),
        ),
        ScoringRule(
            name="company of 500+",
            category=Category.fit,
            points=10,
            when=Condition(field="company_size", op="gte", value=500),
        ),
        ScoringRule(
            name="senior title",
            category=Category.fit,
            points=15,
            when=Condition(
                field="title",
                op="contains_any",
                value=[
                    "vp",
                    "vice president",
                    "director",
                    "head",
                    "chief",
                    "founder",
                    "owner",
                    "cto",
                    "ceo",
                    "cfo",
                    "coo",
                    "cmo",
                    "cro",
                ],
            ),
        ),
        ScoringRule(
            name="phone given",
            category=Category.engagement,
            points=10,
            when=Condition(field="phone", op="present"),
        ),
        ScoringRule(
            name="message written",
            category=Category.engagement,
            points=10,
            when=Condition(field="message", op="present"),
        ),
        ScoringRule(
            name="demo or pricing request",
            category=Category.engagement,
            points=20,
            when=Condition(
                field="source", op="in", value=["demo", "demo-request", "pricing", "contact-sales"]
            ),
        ),
        ScoringRule(
            name="paid campaign",
            category=Category.engagement,
            points=5,
            when=Condition(field="utm_medium", op="in", value=["cpc", "paid", "ppc"]),
        ),
    ],
    grades=[
        Grade(name="hot", min_score=60),
        Grade(name="warm", min_score=30),
        Grade(name="cold", min_score=0),
    ],
)


def _matches(cond: Condition, lead: LeadSubmission) -> bool:
    raw = getattr(lead, cond.field, None)
    if raw is None:
        raw = lead.extra.get(cond.field)
    if raw is None or raw == "":
        return False
    match cond.op:
        case "present":
            return True
        case "equals":
            return str(raw).lower() == str(cond.value).lower()
        case "in":
            options = cond.value if isinstance(cond.value, list) else [str(cond.value)]
            return str(raw).lower() in {o.lower() for o in options}
        case "contains_any":
            words = cond.value if isinstance(cond.value, list) else [str(cond.value)]
            tokens = set(str(raw).lower().replace(",", " ").replace("/", " ").split())
            text = str(raw).lower()
            return any((w in tokens) if " " not in w else (w in text) for w in words)
        case "gte":
            try:
                return float(raw) >= float(cond.value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return False
        case "not_in_domain":
            domains = cond.value if isinstance(cond.value, list) else [str(cond.value)]
            domain = str(raw).rsplit("@", 1)[-1].lower()
            return domain not in domains


def decay(points: float, age_days: float, half_life_days: float) -> float:
    """Engagement points lose half their value every ``half_life_days``."""
    if age_days <= 0:
        return points
    return points * math.pow(0.5, age_days / half_life_days)


def score_lead(
    lead: LeadSubmission, model: ScoringModel = DEFAULT_MODEL, engagement_age_days: float = 0.0
) -> ScoreResult:
    """Score a submission: fit points plus decayed engagement points, capped to
    ``0..max_score``, and the first grade whose threshold the score reaches."""
    parts: list[ScorePart] = []
    for rule in model.rules:
        if not _matches(rule.when, lead):
            continue
        points: float = rule.points
        if rule.category is Category.engagement:
            points = decay(points, engagement_age_days, model.engagement_half_life_days)
        parts.append(ScorePart(rule=rule.name, category=rule.category, points=points))
    fit = sum(p.points for p in parts if p.category is Category.fit)
    engagement = sum(p.points for p in parts if p.category is Category.engagement)
    total = max(0, min(model.max_score, round(fit + engagement)))
    grade = next(
        (g.name for g in sorted(model.grades, key=lambda g: -g.min_score) if total >= g.min_score),
        "ungraded",
    )
    return ScoreResult(
        score=total, fit=round(fit), engagement=round(engagement), grade=grade, parts=parts
    )
