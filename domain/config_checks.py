"""Checks of a whole configuration document that its shape alone does not catch:
references between sections, duplicates, empty pools, unreachable rules, overlapping
territories, scoring rules that test the score itself, grades and thresholds a score can
never reach, approval levels out of order, KPI quotas and forecasts of unknown reps and
pools or covering a day twice; and ``validated``, which runs the shape and these checks
together and reports every problem with its location."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from domain.config import (
    NUMERIC_FIELDS,
    SCORE_FIELDS,
    AllOf,
    AnyOf,
    ApprovalKind,
    Assign,
    Condition,
    ConfigError,
    Op,
    Problem,
    RoutingConfig,
    Territory,
    When,
)
from domain.config_kpis import kpi_problems


def problems(config: RoutingConfig) -> list[Problem]:
    """Everything wrong with a document that its shape alone does not catch."""
    found: list[Problem] = []

    def add(location: str, message: str) -> None:
        found.append(Problem(location=location, message=message))

    reps = {r.email: r for r in config.reps}
    pools = {p.name: p for p in config.pools}
    territories = {t.name: t for t in config.territories}
    for section, names in (
        ("reps", [r.email for r in config.reps]),
        ("pools", [p.name for p in config.pools]),
        ("territories", [t.name for t in config.territories]),
        ("rules", [r.name for r in config.rules]),
    ):
        seen: dict[str, int] = {}
        for index, name in enumerate(names):
            key = name.casefold()
            if key in seen:
                add(f"{section}[{index}]", f"duplicate name {name!r} (also {section}[{seen[key]}])")
            seen.setdefault(key, index)

    for i, pool in enumerate(config.pools):
        where = f"pools[{i}]"
        if not pool.members:
            add(f"{where}.members", f"pool {pool.name!r} has no members")
        elif all(m.weight == 0 for m in pool.members):
            add(f"{where}.members", f"every member of pool {pool.name!r} has weight 0")
        member_seen: set[str] = set()
        for j, member in enumerate(pool.members):
            if member.rep not in reps:
                add(f"{where}.members[{j}].rep", f"unknown rep {member.rep!r}")
            if member.rep in member_seen:
                add(f"{where}.members[{j}].rep", f"{member.rep!r} is listed twice")
            member_seen.add(member.rep)
        if pool.fallback and pool.fallback.rep and pool.fallback.rep not in reps:
            add(f"{where}.fallback.rep", f"unknown rep {pool.fallback.rep!r}")
        if pool.manager and pool.manager not in reps:
            add(f"{where}.manager", f"unknown rep {pool.manager!r}")

    def check_assign(assign: Assign, where: str) -> None:
        if assign.pool is not None and assign.pool not in pools:
            add(f"{where}.pool", f"unknown pool {assign.pool!r}")
        if assign.rep is not None and assign.rep not in reps:
            add(f"{where}.rep", f"unknown rep {assign.rep!r}")
        if assign.else_ is not None:
            check_assign(assign.else_, f"{where}.else")

    def check_when(node: When, where: str, used: list[str]) -> None:
        if isinstance(node, AllOf):
            for k, child in enumerate(node.all):
                check_when(child, f"{where}.all[{k}]", used)
        elif isinstance(node, AnyOf):
            for k, child in enumerate(node.any):
                check_when(child, f"{where}.any[{k}]", used)
        elif node.op is Op.in_territory:
            if node.value not in territories:
                add(f"{where}.value", f"unknown territory {node.value!r}")
            else:
                used.append(node.value)
        elif node.field in NUMERIC_FIELDS and node.op in (Op.contains, Op.regex):
            add(f"{where}.op", f"{node.op.value} does not apply to the number {node.field}")

    catch_all: int | None = None
    for i, rule in enumerate(config.rules):
        where = f"rules[{i}]"
        if catch_all is not None and rule.enabled:
            add(
                where,
                f"rule {rule.name!r} can never match: rules[{catch_all}] before it "
                "matches every lead",
            )
        used: list[str] = []
        if rule.when is not None:
            check_when(rule.when, f"{where}.when", used)
        elif rule.enabled and catch_all is None:
            catch_all = i
        check_assign(rule.assign, f"{where}.assign")
        overlap = _overlap([territories[name] for name in dict.fromkeys(used)])
        if overlap:
            add(f"{where}.when", overlap)
    check_assign(config.fallback, "fallback")
    if config.fallback.account_owner:
        add("fallback", "the fallback must be a pool or a rep")

    for i, pool in enumerate(config.pools):
        days: dict[Any, int] = {}
        for j, day in enumerate(pool.holidays):
            if day in days:
                add(
                    f"pools[{i}].holidays[{j}]",
                    f"{day.isoformat()} is listed twice (also holidays[{days[day]}])",
                )
            days.setdefault(day, j)

    grades = [g.name.casefold() for g in config.scoring.grades]
    for i, rule in enumerate(config.rules):
        if rule.when is None:
            continue
        for cond, where in _conditions_at(rule.when, f"rules[{i}].when"):
            if cond.field != "grade" or cond.op not in (Op.eq, Op.ne, Op.in_, Op.not_in):
                continue
            values = cond.value if isinstance(cond.value, list) else [cond.value]
            for value in values:
                if str(value).casefold() not in grades:
                    add(
                        f"{where}.value",
                        f"unknown grade {value!r} (the grades of scoring: "
                        f"{', '.join(g.name for g in config.scoring.grades)})",
                    )
    found.extend(_scoring_problems(config, territories))
    if config.handoff.pool is not None and config.handoff.pool not in pools:
        add("handoff.pool", f"unknown pool {config.handoff.pool!r}")
    found.extend(_approval_problems(config))
    found.extend(kpi_problems(config.kpis, set(reps), set(pools)))
    return found


def _approval_problems(config: RoutingConfig) -> list[Problem]:
    """Approval levels out of order, ``up_to`` where it means nothing, an approver listed
    twice in one level."""
    found: list[Problem] = []

    def add(location: str, message: str) -> None:
        found.append(Problem(location=location, message=message))

    for kind in ApprovalKind:
        chain = config.approvals.chain(kind)
        if chain is None:
            continue
        where = f"approvals.{kind.value}.levels"
        previous: tuple[int, Any] | None = None  # (index, up_to) of the last level with one
        open_ended: int | None = None  # the first level without up_to
        for i, level in enumerate(chain.levels):
            at = f"{where}[{i}]"
            if level.up_to is not None and kind is not ApprovalKind.discount:
                add(f"{at}.up_to", f"up_to only applies to discount levels, not {kind.value}")
            elif level.up_to is not None and open_ended is not None:
                add(
                    f"{at}.up_to",
                    f"levels[{open_ended}] before it has no up_to, so it already covers every "
                    "percent: give up_to to every level but the last",
                )
            elif level.up_to is not None and previous is not None and level.up_to <= previous[1]:
                add(
                    f"{at}.up_to",
                    f"up_to {level.up_to}% must be above levels[{previous[0]}].up_to "
                    f"({previous[1]}%): list the levels from the smallest discount up",
                )
            if level.up_to is not None:
                previous = (i, level.up_to)
            elif open_ended is None:
                open_ended = i
            seen: dict[str, int] = {}
            for j, approver in enumerate(level.approvers):
                if approver in seen:
                    add(
                        f"{at}.approvers[{j}]",
                        f"{approver!r} is listed twice (also approvers[{seen[approver]}])",
                    )
                seen.setdefault(approver, j)
    return found


def _scoring_problems(config: RoutingConfig, territories: dict[str, Territory]) -> list[Problem]:
    """What is wrong with the scoring model and the nurture threshold that depends on it."""
    found: list[Problem] = []

    def add(location: str, message: str) -> None:
        found.append(Problem(location=location, message=message))

    scoring = config.scoring
    names: dict[str, int] = {}
    for i, rule in enumerate(scoring.rules):
        where = f"scoring.rules[{i}]"
        key = rule.name.casefold()
        if key in names:
            add(where, f"duplicate name {rule.name!r} (also scoring.rules[{names[key]}])")
        names.setdefault(key, i)
        for cond, at in _conditions_at(rule.when, f"{where}.when"):
            if cond.field in SCORE_FIELDS:
                add(
                    f"{at}.field",
                    f"a scoring rule cannot test {cond.field}: it is what scoring computes "
                    "(use it in routing rules)",
                )
            elif cond.op is Op.in_territory and cond.value not in territories:
                add(f"{at}.value", f"unknown territory {cond.value!r}")
            elif cond.field in NUMERIC_FIELDS and cond.op in (Op.contains, Op.regex):
                add(f"{at}.op", f"{cond.op.value} does not apply to the number {cond.field}")
    grade_names: dict[str, int] = {}
    minimums: dict[int, int] = {}
    for i, grade in enumerate(scoring.grades):
        where = f"scoring.grades[{i}]"
        key = grade.name.casefold()
        if key in grade_names:
            add(
                f"{where}.name", f"duplicate grade {grade.name!r} (also grades[{grade_names[key]}])"
            )
        grade_names.setdefault(key, i)
        if grade.min_score in minimums:
            add(
                f"{where}.min_score",
                f"grades[{minimums[grade.min_score]}] starts at {grade.min_score} too: "
                "give each grade its own min_score",
            )
        minimums.setdefault(grade.min_score, i)
        if grade.min_score > scoring.max_score:
            add(
                f"{where}.min_score",
                f"grade {grade.name!r} can never be reached: scores stop at max_score "
                f"{scoring.max_score}",
            )
    if config.nurture.recycle_score > scoring.max_score:
        add(
            "nurture.recycle_score",
            f"{config.nurture.recycle_score} can never be reached: scores stop at "
            f"scoring.max_score {scoring.max_score}",
        )
    return found


def _conditions_at(node: When, where: str) -> Iterator[tuple[Condition, str]]:
    """Each condition of ``node`` with its location."""
    if isinstance(node, AllOf):
        for k, child in enumerate(node.all):
            yield from _conditions_at(child, f"{where}.all[{k}]")
    elif isinstance(node, AnyOf):
        for k, child in enumerate(node.any):
            yield from _conditions_at(child, f"{where}.any[{k}]")
    else:
        yield node, where


def _overlap(used: list[Territory]) -> str | None:
    """Why two territories of one rule overlap (a lead could be in both), or None."""
    for a_index, a in enumerate(used):
        for b in used[a_index + 1 :]:
            countries = sorted(set(a.countries) & set(b.countries))
            if countries and not (a.states or b.states or a.postal_prefixes or b.postal_prefixes):
                return f"territories {a.name!r} and {b.name!r} overlap on {', '.join(countries)}"
            states = sorted({s.casefold() for s in a.states} & {s.casefold() for s in b.states})
            if states:
                return f"territories {a.name!r} and {b.name!r} overlap on states {states}"
            for p in a.postal_prefixes:
                for q in b.postal_prefixes:
                    if p.startswith(q) or q.startswith(p):
                        return (
                            f"territories {a.name!r} and {b.name!r} overlap on postal "
                            f"prefixes {p!r} and {q!r}"
                        )
    return None


def validated(data: Any) -> RoutingConfig:
    """The configuration from plain data; ``ConfigError`` listing every problem."""
    try:
        config = RoutingConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(
            [
                Problem(location=_location(e["loc"]), message=_message(e))
                for e in err.errors(include_url=False)
            ]
        ) from None
    found = problems(config)
    if found:
        raise ConfigError(found)
    return config


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("AllOf", "AnyOf", "Condition", "function-after[_timezone(), str]"):
            continue  # union branch names pydantic adds to the path
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "is required"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")
