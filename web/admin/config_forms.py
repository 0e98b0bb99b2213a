"""The rep form, and what the configuration forms share (``web.admin.pool_forms`` has
pools and territories): what a form shows (``values``: the inputs' texts, re-rendered as
typed when a form is refused), what was posted, the row actions of a form without
JavaScript (add or remove an out-of-office period or a pool member), and the part of the
configuration the form describes with the errors of what was typed (input name →
message).

Inputs a form did not show (a team lead's form shows most rep fields read-only) keep the
current value: ``read_*`` starts from ``current``. A checkbox the form did not show is
unchanged, which the form says with ``scope=availability``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from domain.config import Member, PoolConfig, RepConfig

COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Amsterdam",
    "Europe/Zurich",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Helsinki",
    "Europe/Istanbul",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Toronto",
    "America/Mexico_City",
    "America/Sao_Paulo",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)
MAX_ROWS = 200
Errors = dict[str, str]
Values = dict[str, Any]


def posted_text(form: FormData, key: str, current: Any) -> Any:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else current


def checked(form: FormData, key: str, current: bool) -> bool:
    if form.get(key) is not None:
        return True
    return current if form.get("scope") == "availability" else False


def posted_rows(form: FormData, prefix: str, keys: tuple[str, ...]) -> list[dict[str, str]] | None:
    """The rows ``<prefix>.<n>.<key>`` posted, in order of n; None when none was."""
    numbers = sorted(
        {
            int(number)
            for name in form
            if name.startswith(f"{prefix}.")
            and (number := name.split(".")[1]).isdigit()
            and len(number) < 4
        }
    )[:MAX_ROWS]
    if not numbers and form.get(f"{prefix}_shown") is None:
        return None
    return [{k: posted_text(form, f"{prefix}.{n}.{k}", "") for k in keys} for n in numbers]


def row_action(values: Values, action: str) -> bool:
    """Apply ``add_<rows>`` or ``remove_<rows>:<n>`` to the rows of ``values``; False when
    ``action`` is neither."""
    verb, _, number = action.partition(":")
    for rows, blank in (("ooo", {"from": "", "until": ""}), ("members", blank_member())):
        if verb == f"add_{rows}":
            values[rows].append(dict(blank))
            return True
        if verb == f"remove_{rows}" and number.isdigit() and int(number) < len(values[rows]):
            del values[rows][int(number)]
            return True
    return False


def blank_member() -> dict[str, str]:
    return {"rep": "", "weight": "1", "daily_cap": "", "weekly_cap": ""}


def zone_values(zone: str) -> Values:
    if zone in COMMON_ZONES:
        return {"timezone": zone, "timezone_other": ""}
    return {"timezone": "", "timezone_other": zone}


def zone_of(values: Values) -> str:
    return str(values["timezone_other"] or values["timezone"] or "UTC")


def whole_number(text: str, name: str, errors: Errors, *, default: int | None) -> int | None:
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        errors[name] = "a whole number"
        return default


def placed(err: ValidationError, place: Callable[[tuple[Any, ...]], str]) -> Errors:
    out: Errors = {}
    for e in err.errors(include_url=False):
        message = str(e["msg"]).removeprefix("Value error, ")
        if e["type"] == "missing" or (e["type"] == "string_too_short" and not e["input"]):
            message = "is required"
        out.setdefault(place(tuple(e["loc"])), message)
    return out


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]


# ------------------------------------------------------------------------------ reps


def rep_values(rep: RepConfig | None, pools: list[PoolConfig]) -> Values:
    """The rep form showing ``rep`` (None: a new rep) and its pool memberships."""
    shown = rep or RepConfig.model_construct(email="", name="")
    hours = shown.working_hours
    values: Values = {
        "email": shown.email,
        "name": shown.name,
        **zone_values(shown.timezone),
        "active": shown.active,
        "crm_owner_id": shown.crm_owner_id or "",
        "slack_user_id": shown.slack_user_id or "",
        "wh_enabled": hours is not None,
        "wh_days": [d.value for d in hours.days] if hours else ["mon", "tue", "wed", "thu", "fri"],
        "wh_start": hours.start.strftime("%H:%M") if hours else "09:00",
        "wh_end": hours.end.strftime("%H:%M") if hours else "17:00",
        "ooo": [
            {"from": p.from_.isoformat(), "until": p.until.isoformat()} for p in shown.out_of_office
        ],
        "memberships": [],
    }
    for pool in pools:
        member = next((m for m in pool.members if rep and m.rep == rep.email), None)
        values["memberships"].append(
            {
                "pool": pool.name,
                "member": member is not None,
                "weight": str(member.weight if member else 1),
                "daily_cap": cap_text(member.daily_cap if member else None),
                "weekly_cap": cap_text(member.weekly_cap if member else None),
            }
        )
    return values


def cap_text(value: int | None) -> str:
    return "" if value is None else str(value)


def read_rep(form: FormData, current: Values) -> Values:
    """The rep form as posted, over ``current`` (``rep_values``)."""
    out = dict(current)
    for key in ("email", "name", "timezone", "timezone_other", "crm_owner_id", "slack_user_id"):
        out[key] = posted_text(form, key, current[key])
    for key in ("wh_start", "wh_end"):
        out[key] = posted_text(form, key, current[key])
    out["active"] = checked(form, "active", current["active"])
    out["wh_enabled"] = checked(form, "wh_enabled", current["wh_enabled"])
    days = [d for d in form.getlist("wh_days") if isinstance(d, str)]
    out["wh_days"] = days if days or form.get("wh_shown") is not None else current["wh_days"]
    rows = posted_rows(form, "ooo", ("from", "until"))
    out["ooo"] = rows if rows is not None else current["ooo"]
    # Rows are matched by pool name: the draft's pools may have moved since the form.
    posted = {
        value: name.removesuffix(".pool")
        for name, value in form.multi_items()
        if name.startswith("m.") and name.endswith(".pool") and isinstance(value, str)
    }
    out["memberships"] = []
    for row in current["memberships"]:
        row = dict(row)
        prefix = posted.get(row["pool"])
        if prefix is not None:
            row["member"] = checked(form, f"{prefix}.member", row["member"])
            for field in ("weight", "daily_cap", "weekly_cap"):
                row[field] = posted_text(form, f"{prefix}.{field}", row[field])
        out["memberships"].append(row)
    return out


def rep_of(values: Values) -> tuple[RepConfig | None, dict[str, Member | None], Errors]:
    """The rep the form describes, its membership (or None) per pool, and the errors."""
    errors: Errors = {}
    data: dict[str, Any] = {
        "email": values["email"],
        "name": values["name"],
        "timezone": zone_of(values),
        "active": values["active"],
        "crm_owner_id": values["crm_owner_id"] or None,
        "slack_user_id": values["slack_user_id"] or None,
        "working_hours": None,
        "out_of_office": [{"from": r["from"], "until": r["until"]} for r in values["ooo"]],
    }
    if values["wh_enabled"]:
        data["working_hours"] = {
            "days": values["wh_days"],
            "start": values["wh_start"],
            "end": values["wh_end"],
        }

    def place(loc: tuple[Any, ...]) -> str:
        if loc[:1] == ("timezone",):
            return "timezone_other" if values["timezone_other"] else "timezone"
        if loc[:1] == ("working_hours",):
            part = loc[1] if len(loc) > 1 else "end"
            return {"days": "wh_days", "start": "wh_start"}.get(str(part), "wh_end")
        if loc[:1] == ("out_of_office",) and len(loc) > 1:
            return f"ooo.{loc[1]}.{'from' if loc[2:3] == ('from',) else 'until'}"
        return str(loc[0]) if loc else "email"

    rep: RepConfig | None = None
    try:
        rep = RepConfig.model_validate(data)
    except ValidationError as err:
        errors.update(placed(err, place))
    memberships: dict[str, Member | None] = {}
    for index, row in enumerate(values["memberships"]):
        memberships[row["pool"]] = None
        if row["member"]:
            member = member_of(row, f"m.{index}", rep.email if rep else "x@example.com", errors)
            memberships[row["pool"]] = member
    return rep, memberships, errors


def member_of(row: dict[str, Any], key: str, email: str, errors: Errors) -> Member | None:
    data = {
        "rep": email,
        "weight": whole_number(row["weight"], f"{key}.weight", errors, default=1),
        "daily_cap": whole_number(row["daily_cap"], f"{key}.daily_cap", errors, default=None),
        "weekly_cap": whole_number(row["weekly_cap"], f"{key}.weekly_cap", errors, default=None),
    }
    try:
        return Member.model_validate(data)
    except ValidationError as err:
        errors.update(placed(err, lambda loc: f"{key}.{loc[0]}" if loc else f"{key}.rep"))
        return None
