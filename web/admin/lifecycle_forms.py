"""The forms of the lifecycle settings (``web.admin.lifecycle_settings``): nurture, the
hand-off, and the scoring model's grades and engagement. Each is a ``Section`` of the
document, saved on its own: what its form shows (``values``: the inputs' texts, as in
``web.admin.config_forms``), what was posted, its row actions (add or remove a row
without JavaScript), and the document with the section as typed, or the errors of what
was typed by input name.

A section is refused when what was typed has a problem of its own (a duration that is
not one, two grades of one name, a recycle score above the maximum): the admin is at
the field and can fix it. Problems that come from elsewhere (a pool deleted since) are
shown at the field they concern, as on the other configuration pages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from domain.config import (
    EngagementConfig,
    HandoffConfig,
    NurtureConfig,
    Problem,
    RoutingConfig,
    ScoringConfig,
)
from domain.config_checks import problems
from domain.durations import FORM, format_duration
from web.admin.config_forms import MAX_ROWS, Errors, Values, posted_rows, posted_text

NURTURE_DURATIONS = (
    "no_meeting_after",
    "stale_after",
    "cool_off",
    "lost_cool_off",
    "queue_retry_after",
)
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_INDEX = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class Section:
    """One part of the document with a form of its own."""

    name: str  # nurture, handoff, grades, engagement: the URL's last part
    title: str  # in messages: "Saved the <title> to the draft"
    page: str  # the page it is on: "lifecycle" or "scoring"
    texts: tuple[str, ...]  # its single inputs
    rows: dict[str, dict[str, str]]  # its row inputs: rows name → a blank row
    path: tuple[str, ...]  # where it sits in the document
    model: type[BaseModel]
    owns: tuple[str, ...]  # the problem locations that are its own
    values: Callable[[RoutingConfig], Values]
    build: Callable[[Values, Errors, RoutingConfig], dict[str, Any]]


# ------------------------------------------------------------------ values


def _nurture_values(config: RoutingConfig) -> Values:
    nurture = config.nurture
    return {
        **{key: format_duration(getattr(nurture, key)) for key in NURTURE_DURATIONS},
        "recycle_score": str(nurture.recycle_score),
        "list_name": nurture.list_name,
    }


def _handoff_values(config: RoutingConfig) -> Values:
    handoff = config.handoff
    return {
        "handoff_pool": handoff.pool or "",
        "tasks": [
            {"subject": task.subject, "due_in": format_duration(task.due_in)}
            for task in handoff.onboarding_tasks
        ],
    }


def _grades_values(config: RoutingConfig) -> Values:
    scoring = config.scoring
    return {
        "grades": [{"name": g.name, "min_score": str(g.min_score)} for g in scoring.grades],
        "max_score": str(scoring.max_score),
    }


def _engagement_values(config: RoutingConfig) -> Values:
    engagement = config.scoring.engagement
    return {
        "half_life": format_duration(engagement.half_life),
        "other_points": str(engagement.other_points),
        "points": [{"kind": k, "points": str(v)} for k, v in engagement.points.items()],
    }


# ------------------------------------------------------------------ what was typed → data


def _duration(values: Values, name: str, errors: Errors) -> str | None:
    """A duration's text, left to the document to read (its message names the form)."""
    text: str = values[name]
    if not text:
        errors[name] = f"is required: {FORM}"
        return None
    return text


def _number(text: str, name: str, errors: Errors) -> int | None:
    if not text:
        errors[name] = "is required"
        return None
    try:
        return int(text)
    except ValueError:
        errors[name] = f"{text!r} is not a whole number"
        return None


def _nurture(values: Values, errors: Errors, _config: RoutingConfig) -> dict[str, Any]:
    return {
        **{key: _duration(values, key, errors) for key in NURTURE_DURATIONS},
        "recycle_score": _number(values["recycle_score"], "recycle_score", errors),
        "list_name": values["list_name"],
    }


def _handoff(values: Values, errors: Errors, _config: RoutingConfig) -> dict[str, Any]:
    tasks = []
    for n, row in enumerate(values["tasks"]):
        if not row["subject"]:
            errors[f"tasks.{n}.subject"] = "give the task a subject (or remove the row)"
        if not row["due_in"]:
            errors[f"tasks.{n}.due_in"] = f"is required: {FORM}"
        tasks.append({"subject": row["subject"], "due_in": row["due_in"] or None})
    return {"pool": values["handoff_pool"] or None, "onboarding_tasks": tasks}


def _grades(values: Values, errors: Errors, config: RoutingConfig) -> dict[str, Any]:
    grades = []
    for n, row in enumerate(values["grades"]):
        if not row["name"]:
            errors[f"grades.{n}.name"] = "give the grade a name (or remove the row)"
        minimum = _number(row["min_score"], f"grades.{n}.min_score", errors)
        grades.append({"name": row["name"], "min_score": minimum})
    if not grades:
        errors["grades"] = "give at least one grade, starting at 0"
    scoring = config.scoring.model_dump(mode="json", by_alias=True)
    return {
        **scoring,
        "grades": grades,
        "max_score": _number(values["max_score"], "max_score", errors),
    }


def _engagement(values: Values, errors: Errors, _config: RoutingConfig) -> dict[str, Any]:
    points: dict[str, int | None] = {}
    for n, row in enumerate(values["points"]):
        kind, name = row["kind"], f"points.{n}.kind"
        if not kind:
            errors[name] = "name the kind of engagement (or remove the row)"
        elif not _KIND.match(kind):
            errors[name] = "use snake_case, like email_opened"
        elif kind in points:
            errors[name] = f"{kind} is listed twice"
        number = _number(row["points"], f"points.{n}.points", errors)
        if number is not None and not -100 <= number <= 100:
            errors[f"points.{n}.points"] = "give -100..100 points"
        points.setdefault(kind, number)
    return {
        "half_life": _duration(values, "half_life", errors),
        "points": points,
        "other_points": _number(values["other_points"], "other_points", errors),
    }


SECTIONS: dict[str, Section] = {
    section.name: section
    for section in (
        Section(
            "nurture",
            "nurture settings",
            "lifecycle",
            (*NURTURE_DURATIONS, "recycle_score", "list_name"),
            {},
            ("nurture",),
            NurtureConfig,
            ("nurture",),
            _nurture_values,
            _nurture,
        ),
        Section(
            "handoff",
            "hand-off",
            "lifecycle",
            ("handoff_pool",),
            {"tasks": {"subject": "", "due_in": ""}},
            ("handoff",),
            HandoffConfig,
            ("handoff",),
            _handoff_values,
            _handoff,
        ),
        Section(
            "grades",
            "grades",
            "scoring",
            ("max_score",),
            {"grades": {"name": "", "min_score": ""}},
            ("scoring",),
            ScoringConfig,
            ("scoring.grades", "scoring.max_score"),
            _grades_values,
            _grades,
        ),
        Section(
            "engagement",
            "engagement points",
            "scoring",
            ("half_life", "other_points"),
            {"points": {"kind": "", "points": ""}},
            ("scoring", "engagement"),
            EngagementConfig,
            ("scoring.engagement",),
            _engagement_values,
            _engagement,
        ),
    )
}


# ------------------------------------------------------------------ reading and saving


def read_section(section: Section, form: FormData, current: Values) -> Values:
    """The section's form as posted, over ``current`` (its values in the draft)."""
    out = dict(current)
    for key in section.texts:
        out[key] = posted_text(form, key, current[key])
    for rows, blank in section.rows.items():
        posted = posted_rows(form, rows, tuple(blank))
        out[rows] = posted if posted is not None else current[rows]
    return out


def row_action(section: Section, values: Values, action: str) -> bool:
    """Apply ``add_<rows>`` or ``remove_<rows>:<n>`` to the section's rows; False when
    ``action`` is neither."""
    verb, _, number = action.partition(":")
    for rows, blank in section.rows.items():
        if verb == f"add_{rows}" and len(values[rows]) < MAX_ROWS:
            values[rows].append(dict(blank))
            return True
        if verb == f"remove_{rows}" and number.isdigit() and int(number) < len(values[rows]):
            del values[rows][int(number)]
            return True
    return False


def applied(
    section: Section, config: RoutingConfig, values: Values
) -> tuple[RoutingConfig | None, Errors]:
    """``config`` with the section as typed in ``values``, or None and the errors of what
    was typed (input name → message)."""
    errors: Errors = {}
    data = section.build(values, errors, config)
    prefix = ".".join(section.path)
    try:
        item = section.model.model_validate(data)
    except ValidationError as err:
        for e in err.errors(include_url=False):
            location = prefix + "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in e["loc"]
            )
            name = input_of(location)
            if name in section.rows and any(k.startswith(f"{name}.") for k in errors):
                continue  # the rows' own errors say it, next to the row
            errors.setdefault(name, _message(e))
        return None, errors
    if errors:
        return None, errors
    document = config.dump()
    node = document
    for key in section.path[:-1]:
        node = node[key]
    node[section.path[-1]] = item.model_dump(mode="json", by_alias=True)
    changed = RoutingConfig.model_validate(document)
    for problem in problems(changed):
        if owner(problem.location) == section.name:
            errors.setdefault(input_of(problem.location), problem.message)
    return (None, errors) if errors else (changed, errors)


def _message(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing" or (kind == "string_too_short" and not error["input"]):
        return "is required"
    if kind == "greater_than_equal":
        return f"must be {ctx['ge']} or more"
    if kind == "less_than_equal":
        return f"must be {ctx['le']} or less"
    return str(error["msg"]).removeprefix("Value error, ")


# ------------------------------------------------------------------ problems → inputs


def owner(location: str) -> str | None:
    """The section a problem location belongs to, or None."""
    for section in SECTIONS.values():
        for own in section.owns:
            if location == own or location.startswith((f"{own}.", f"{own}[")):
                return section.name
    return None


def input_of(location: str) -> str:
    """The input a location of the document is typed in: ``scoring.grades[1].min_score``
    → ``grades.1.min_score``, ``handoff.pool`` → ``handoff_pool``."""
    flat = _INDEX.sub(r".\1", location)
    for prefix, name, first in (
        ("handoff.onboarding_tasks", "tasks", "subject"),
        ("scoring.grades", "grades", "name"),
        ("scoring.engagement.points", "points", ""),
    ):
        if flat == prefix or flat.startswith(f"{prefix}."):
            parts = [name, *flat.removeprefix(prefix).strip(".").split(".")]
            parts = [p for p in parts if p]
            if len(parts) == 2 and first:  # the row as a whole: shown at its first input
                parts.append(first)
            return ".".join(parts[:3]) if first else name
    if flat == "handoff.pool":
        return "handoff_pool"
    return flat.rpartition(".")[2]


def page_errors(
    sections: list[Section], found: list[Problem], posted: str | None
) -> dict[str, Errors]:
    """The draft's problems of each section (but the one posted: it shows what was
    typed), by input name."""
    out: dict[str, Errors] = {section.name: {} for section in sections}
    for problem in found:
        name = owner(problem.location)
        if name in out and name != posted:
            out[name].setdefault(input_of(problem.location), problem.message)
    return out
