"""The lead-scoring points model (LIFECYCLE.md B): fit points for who the lead is, from the
configuration's scoring rules; engagement points for what they did, decaying with age;
the total capped to ``0..max_score`` and graded. Every point is explained: each part
says which rule gave it and why (``+20 title contains "VP"``).

Pure. The rules of a scoring model are compiled once (with ``domain.rules``, the same
conditions as routing) and reused for every lead scored with that model.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from domain.config import AllOf, AnyOf, Condition, Op, ScoringConfig, Territory, When
from domain.lead import LeadSubmission
from domain.rules import Facts, Test, compile_when, facts_of


class Category(StrEnum):
    fit = "fit"
    engagement = "engagement"


class Engagement(BaseModel):
    """A lead's engagement points as of ``at``: the running total, decayed to that time.
    Adding an event decays the total to the event's time first, so the state stays one
    number however many events a lead has."""

    points: float = 0.0
    at: datetime | None = None


class ScorePart(BaseModel):
    """Points of one rule (or of the lead's engagement), and why."""

    rule: str
    category: Category
    points: float
    reason: str = ""


class ScoreResult(BaseModel):
    score: int
    fit: int
    engagement: int
    grade: str
    parts: list[ScorePart]


DEFAULT_MODEL = ScoringConfig()
ENGAGEMENT_RULE = "engagement"
_MINUS = "\u2212"


# ------------------------------------------------------------------------------ engagement


def decay(points: float, age_days: float, half_life_days: float) -> float:
    """Engagement points lose half their value every ``half_life_days``."""
    if age_days <= 0:
        return points
    return points * math.pow(0.5, age_days / half_life_days)


def engagement_points(current: Engagement, now: datetime, half_life: timedelta) -> float:
    """``current`` decayed from its time to ``now`` (never grown: a ``now`` before its
    time gives its points as they are)."""
    if current.at is None or now <= current.at or not current.points:
        return current.points
    return current.points * math.pow(0.5, (now - current.at) / half_life)


def add_engagement(
    current: Engagement, kind: str, at: datetime, model: ScoringConfig | None = None
) -> tuple[Engagement, int]:
    """``current`` with an engagement of ``kind`` at ``at`` added, and the points it was
    worth (the model's points for the kind, ``other_points`` for a kind it does not list).
    The total is kept as of the latest event: an event older than ``current`` adds its
    points decayed to ``current.at``, so the order events arrive in does not matter."""
    config = (model or DEFAULT_MODEL).engagement
    points = config.points.get(kind, config.other_points)
    if current.at is None or at >= current.at:
        decayed = engagement_points(current, at, config.half_life)
        return Engagement(points=decayed + points, at=at), points
    late = engagement_points(Engagement(points=points, at=at), current.at, config.half_life)
    return Engagement(points=current.points + late, at=current.at), points


# ------------------------------------------------------------------------------ scoring


def score_lead(
    lead: LeadSubmission,
    model: ScoringConfig | None = None,
    *,
    territories: Sequence[Territory] = (),
    engagement: Engagement | None = None,
    now: datetime | None = None,
) -> ScoreResult:
    """Score a submission: the points of every scoring rule it matches (fit), plus its
    engagement decayed to ``now`` (without ``now``: as of the engagement's own time) in
    whole points, capped to ``0..max_score``, and the highest grade whose ``min_score``
    it reaches. Each part says why (``+20 title contains "VP"``); they add up to the
    score before the cap.
    ``model`` None is the default model (``ScoringConfig()``); ``territories`` are those
    its ``in_territory`` conditions name (one it does not find matches no lead)."""
    config = model or DEFAULT_MODEL
    compiled = _compiled(config, territories)
    facts = compiled.facts_of(lead, None, None)
    parts: list[ScorePart] = []
    fit = 0
    for rule in compiled.rules:
        if rule.test(facts):
            fit += rule.points
            parts.append(
                ScorePart(
                    rule=rule.name,
                    category=Category.fit,
                    points=float(rule.points),
                    reason=f"{rule.sign} {rule.describe(facts, lead)}",
                )
            )
    engaged = 0  # whole points, as shown: the parts add up to the score
    if engagement is not None and engagement.points:
        at = now if now is not None else engagement.at
        decayed = engagement.points
        if at is not None:
            decayed = engagement_points(engagement, at, config.engagement.half_life)
        engaged = round(decayed)
        if engaged:
            parts.append(
                ScorePart(
                    rule=ENGAGEMENT_RULE,
                    category=Category.engagement,
                    points=float(engaged),
                    reason=f"engagement {str(engaged).replace('-', _MINUS)} pts after decay",
                )
            )
    total = max(0, min(config.max_score, fit + engaged))
    return ScoreResult(
        score=total,
        fit=fit,
        engagement=engaged,
        grade=_grade(compiled.grades, total),
        parts=parts,
    )


def _grade(grades: Sequence[tuple[int, str]], score: int) -> str:
    for minimum, name in grades:
        if score >= minimum:
            return name
    return grades[-1][1] if grades else "ungraded"


def _signed(points: int) -> str:
    return f"+{points}" if points > 0 else f"{_MINUS}{-points}" if points < 0 else "0"


# ------------------------------------------------------------------------------ compiling


Describe = Callable[[Facts, LeadSubmission], str]


@dataclass(frozen=True)
class _Rule:
    name: str
    points: int
    sign: str
    test: Test
    describe: Describe


@dataclass(frozen=True)
class _Compiled:
    model: ScoringConfig
    territories: tuple[Territory, ...]
    rules: tuple[_Rule, ...]
    grades: tuple[tuple[int, str], ...]  # highest first
    facts_of: Callable[[LeadSubmission, int | None, str | None], Facts]


_CACHE: OrderedDict[tuple[int, ...], _Compiled] = OrderedDict()
_CACHE_SIZE = 32
_LOCK = threading.Lock()


def _compiled(model: ScoringConfig, territories: Sequence[Territory]) -> _Compiled:
    """The model's rules compiled, from a small cache keyed by the identity of the model
    and its territories (a configuration version is one object for as long as it is in
    force; the entry holds them, so an id is not reused while it is cached)."""
    key = (id(model), *map(id, territories))
    found = _CACHE.get(key)
    if found is not None and found.model is model:
        return found
    built = _compile(model, tuple(territories))
    with _LOCK:
        _CACHE[key] = built
        _CACHE.move_to_end(key)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return built


def _compile(model: ScoringConfig, territories: tuple[Territory, ...]) -> _Compiled:
    by_name = {t.name: t for t in territories}
    for cond in (c for rule in model.rules for c in _leaves(rule.when)):
        if cond.op is Op.in_territory and str(cond.value) not in by_name:
            by_name[str(cond.value)] = Territory(name=str(cond.value))  # matches no lead
    rules = tuple(
        _Rule(
            name=rule.name,
            points=rule.points,
            sign=_signed(rule.points),
            test=compile_when(rule.when, by_name),
            describe=_describer(rule.when, by_name, compile_when),
        )
        for rule in model.rules
    )
    grades = tuple(sorted(((g.min_score, g.name) for g in model.grades), reverse=True))
    return _Compiled(model, territories, rules, grades, facts_of)


def _leaves(node: When) -> list[Condition]:
    if isinstance(node, AllOf | AnyOf):
        children = node.all if isinstance(node, AllOf) else node.any
        return [leaf for child in children for leaf in _leaves(child)]
    return [node]


def _describer(
    node: When, territories: dict[str, Territory], compile_when: Callable[..., Test]
) -> Describe:
    """Why a lead that matches ``node`` matches it, in words: each condition of an
    ``all``, the first that holds of an ``any``."""
    if isinstance(node, AllOf):
        parts = [_describer(child, territories, compile_when) for child in node.all]
        return lambda facts, lead: " and ".join(part(facts, lead) for part in parts)
    if isinstance(node, AnyOf):
        options = [
            (compile_when(child, territories), _describer(child, territories, compile_when))
            for child in node.any
        ]

        def first(facts: Facts, lead: LeadSubmission) -> str:
            for test, describe in options:
                if test(facts):
                    return describe(facts, lead)
            return "one of its conditions"

        return first
    return _said(node)


_LABELS = {
    "company_size": "company size",
    "email_domain": "email domain",
    "website_domain": "website",
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
    "utm_term": "UTM term",
    "utm_content": "UTM content",
    "first_name": "first name",
    "last_name": "last name",
    "postal_code": "postal code",
}
_COMPARED = {Op.gt: "over {}", Op.gte: "{} or more", Op.lt: "under {}", Op.lte: "{} or less"}
_SUBMITTED = frozenset(LeadSubmission.model_fields)


def _said(cond: Condition) -> Describe:
    """One condition that held, in words, with the lead's value as it wrote it."""
    name, op, value = cond.field, cond.op, cond.value
    label = _LABELS.get(name, name.removeprefix("extra."))
    shown = _reader(name)
    if name == "free_mail":
        return lambda facts, _lead: (
            f"free-mail address ({facts.get('email_domain')})"
            if facts.get("free_mail")
            else "business email address"
        )
    if op is Op.not_empty:
        return _fixed(f"{label} given")
    if op is Op.empty:
        return _fixed(f"no {label}")
    if op is Op.in_territory:
        return _fixed(f"in territory {value}")
    if op is Op.between:
        bounds = f"({_number(value[0])}\u2013{_number(value[1])})"
        return lambda facts, lead: f"{label} {shown(facts, lead)} {bounds}"
    if op in _COMPARED:
        bound = f"({_COMPARED[op].format(_number(value))})"
        return lambda facts, lead: f"{label} {shown(facts, lead)} {bound}"
    if op in (Op.regex, Op.contains):
        pattern = re.compile(str(value) if op is Op.regex else re.escape(str(value)), re.I)

        def contains(facts: Facts, lead: LeadSubmission) -> str:
            text = str(shown(facts, lead))
            found = pattern.search(text)
            if found is None or not found.group(0):
                return f'{label} "{text}" matches'
            return f'{label} contains "{found.group(0)}"'

        return contains
    if op is Op.starts_with:
        return _fixed(f'{label} starts with "{value}"')
    if op is Op.ends_with:
        return _fixed(f'{label} ends with "{value}"')

    def equals(facts: Facts, lead: LeadSubmission) -> str:
        text = shown(facts, lead)
        return f'{label} is "{text}"' if text not in (None, "") else f"no {label}"

    return equals


def _fixed(text: str) -> Describe:
    return lambda _facts, _lead: text


def _reader(name: str) -> Callable[[Facts, LeadSubmission], Any]:
    """The value of ``name`` as the lead wrote it (its fact where it has none: a derived
    field)."""
    if name.startswith("extra."):
        key = name.removeprefix("extra.")
        return lambda facts, lead: lead.extra.get(key, facts.get(name))
    if name in _SUBMITTED:
        return lambda facts, lead: v if (v := getattr(lead, name)) is not None else facts.get(name)
    return lambda facts, _lead: facts.get(name)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
