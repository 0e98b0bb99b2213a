"""The forms of pools and territories (see ``web.admin.config_forms`` for how a form's
``values`` work): what each shows, what was posted, and the pool or territory it
describes with the errors of what was typed."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from domain.config import PoolConfig, Territory
from domain.durations import FORM, format_duration, parse_duration
from web.admin.config_forms import (
    Errors,
    Values,
    blank_member,
    cap_text,
    checked,
    comma_list,
    member_of,
    placed,
    posted_rows,
    posted_text,
    row_action,
    whole_number,
    zone_of,
    zone_values,
)

# The SLA's durations in the order they fire, each with what it is called in messages.
SLA_STEPS = (
    ("remind_after", "the reminder"),
    ("reassign_after", "the reassignment"),
    ("escalate_after", "the escalation"),
)

# ------------------------------------------------------------------------------ pools


def pool_values(pool: PoolConfig | None) -> Values:
    """The pool form showing ``pool`` (None: a new pool)."""
    new = pool is None
    pool = pool or PoolConfig.model_construct(name="")
    fallback = pool.fallback
    return {
        "name": pool.name,
        "strategy": pool.strategy.value,
        **zone_values(pool.timezone),
        "members": [
            {
                "rep": m.rep,
                "weight": str(m.weight),
                "daily_cap": cap_text(m.daily_cap),
                "weekly_cap": cap_text(m.weekly_cap),
            }
            for m in pool.members
        ]
        or ([blank_member()] if new else []),
        "fallback_kind": "rep" if fallback and fallback.rep else "queue" if fallback else "",
        "fallback_queue": fallback.queue or "" if fallback else "",
        "fallback_rep": fallback.rep or "" if fallback else "",
        "manager": pool.manager or "",
        "slack_channel": pool.slack_channel or "",
        "catch_up": pool.on_return.catch_up,
        "max_extra_per_day": str(pool.on_return.max_extra_per_day),
        **{f"sla_{key}": format_duration(getattr(pool.sla, key)) for key, _ in SLA_STEPS},
        "sla_max_reassignments": str(pool.sla.max_reassignments),
        "sla_business_hours": pool.sla.business_hours,
        "holidays": [{"date": day.isoformat()} for day in pool.holidays],
    }


def read_pool(form: FormData, current: Values) -> Values:
    out = dict(current)
    for key in ("name", "strategy", "timezone", "timezone_other", "fallback_kind"):
        out[key] = posted_text(form, key, current[key])
    for key in ("fallback_queue", "fallback_rep", "manager", "max_extra_per_day", "slack_channel"):
        out[key] = posted_text(form, key, current[key])
    for key in (*(f"sla_{step}" for step, _ in SLA_STEPS), "sla_max_reassignments"):
        out[key] = posted_text(form, key, current[key])
    out["catch_up"] = checked(form, "catch_up", current["catch_up"])
    out["sla_business_hours"] = checked(form, "sla_business_hours", current["sla_business_hours"])
    rows = posted_rows(form, "members", ("rep", "weight", "daily_cap", "weekly_cap"))
    out["members"] = rows if rows is not None else current["members"]
    days = posted_rows(form, "holidays", ("date",))
    out["holidays"] = days if days is not None else current["holidays"]
    return out


def pool_row_action(values: Values, action: str) -> bool:
    """Apply a row action of the pool form: ``add_holidays``, ``remove_holidays:<n>``,
    or a members' one (``web.admin.config_forms.row_action``)."""
    verb, _, number = action.partition(":")
    if verb == "add_holidays":
        values["holidays"].append({"date": ""})
        return True
    if verb == "remove_holidays":
        if number.isdigit() and int(number) < len(values["holidays"]):
            del values["holidays"][int(number)]
            return True
        return False
    return row_action(values, action)


def sla_of(values: Values, errors: Errors) -> dict[str, Any]:
    """The SLA the form describes, as plain data, with the errors of its inputs: each
    duration in the form admins write it, and in order (remind, reassign, escalate)."""
    parsed: dict[str, timedelta] = {}
    for key, _ in SLA_STEPS:
        name, text = f"sla_{key}", values[f"sla_{key}"]
        if not text:
            errors[name] = f"is required: {FORM}"
            continue
        try:
            parsed[key] = parse_duration(text)
        except ValueError as err:
            errors[name] = str(err)
    for (first, first_words), (then, then_words) in pairwise(SLA_STEPS):
        if first in parsed and then in parsed and parsed[first] > parsed[then]:
            errors.setdefault(
                f"sla_{then}",
                f"{then_words.capitalize()} comes after {first_words} "
                f"({format_duration(parsed[first])}): give at least that much",
            )
    return {
        **{key: values[f"sla_{key}"] or None for key, _ in SLA_STEPS},
        "max_reassignments": whole_number(
            values["sla_max_reassignments"], "sla_max_reassignments", errors, default=2
        ),
        "business_hours": values["sla_business_hours"],
    }


def holidays_of(values: Values, errors: Errors) -> list[str]:
    """The holidays the form lists; an empty row or a day listed twice is an error."""
    seen: dict[str, int] = {}
    for index, row in enumerate(values["holidays"]):
        day = row["date"]
        if not day:
            errors[f"holidays.{index}.date"] = "give a date (or remove the row)"
        elif day in seen:
            errors[f"holidays.{index}.date"] = f"{day} is listed twice"
        seen.setdefault(day, index)
    return [row["date"] for row in values["holidays"]]


def pool_of(values: Values) -> tuple[PoolConfig | None, Errors]:
    errors: Errors = {}
    members = []
    for index, row in enumerate(values["members"]):
        if not row["rep"]:
            errors[f"members.{index}.rep"] = "choose a rep (or remove the row)"
            continue
        member = member_of(row, f"members.{index}", row["rep"], errors)
        if member is not None:
            members.append(member.model_dump(mode="json"))
    kind = values["fallback_kind"]
    fallback: dict[str, Any] | None = None
    if kind == "queue":
        fallback = {"queue": values["fallback_queue"] or None}
        if not values["fallback_queue"]:
            errors["fallback_queue"] = "name the queue"
    elif kind == "rep":
        fallback = {"rep": values["fallback_rep"] or None}
        if not values["fallback_rep"]:
            errors["fallback_rep"] = "choose a rep"
    data = {
        "name": values["name"],
        "strategy": values["strategy"],
        "timezone": zone_of(values),
        "members": members,
        "fallback": fallback,
        "manager": values["manager"] or None,
        "slack_channel": values["slack_channel"] or None,
        "on_return": {
            "catch_up": values["catch_up"],
            "max_extra_per_day": whole_number(
                values["max_extra_per_day"], "max_extra_per_day", errors, default=0
            ),
        },
        "sla": sla_of(values, errors),
        "holidays": holidays_of(values, errors),
    }

    def place(loc: tuple[Any, ...]) -> str:
        if loc[:1] == ("timezone",):
            return "timezone_other" if values["timezone_other"] else "timezone"
        if loc[:1] == ("fallback",):
            return f"fallback_{kind}"
        if loc[:1] == ("on_return",):
            return "max_extra_per_day"
        if loc[:1] == ("members",) and len(loc) > 2:
            return f"members.{loc[1]}.{loc[2]}"
        if loc[:1] == ("sla",):
            # The order check of the SLA as a whole: ours has placed it already.
            return f"sla_{loc[1]}" if len(loc) > 1 else "sla_reassign_after"
        if loc[:1] == ("holidays",):
            return f"holidays.{loc[1]}.date" if len(loc) > 1 else "holidays"
        return str(loc[0]) if loc else "name"

    try:
        pool = PoolConfig.model_validate(data)
    except ValidationError as err:
        for name, message in placed(err, place).items():
            if name == "sla_max_reassignments":
                message = "give 0..20 times"
            errors.setdefault(name, message)  # ours say it better ("choose a rep")
        return None, errors
    return (pool, errors) if not errors else (None, errors)


# ------------------------------------------------------------------------------ territories


def territory_values(territory: Territory | None) -> Values:
    territory = territory or Territory.model_construct(name="")
    return {
        "name": territory.name,
        "countries": ", ".join(territory.countries),
        "states": ", ".join(territory.states),
        "postal_prefixes": ", ".join(territory.postal_prefixes),
    }


def read_territory(form: FormData, current: Values) -> Values:
    return {key: posted_text(form, key, value) for key, value in current.items()}


def territory_of(values: Values) -> tuple[Territory | None, Errors]:
    data = {
        "name": values["name"],
        "countries": comma_list(values["countries"]),
        "states": comma_list(values["states"]),
        "postal_prefixes": comma_list(values["postal_prefixes"]),
    }
    errors: Errors = {}
    if not (data["countries"] or data["states"] or data["postal_prefixes"]):
        errors["countries"] = "give at least one country, state or postal prefix"
    try:
        territory = Territory.model_validate(data)
    except ValidationError as err:
        errors.update(placed(err, lambda loc: str(loc[0]) if loc else "name"))
        return None, errors
    return (territory, errors) if not errors else (None, errors)
