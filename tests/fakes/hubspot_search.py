"""The CRM search endpoint of the HubSpot fake (``POST /crm/v3/objects/{type}/search``):
filter groups (OR of ANDed filters), sorts, ``after``/``limit`` paging, HubSpot's limits
(200 per page, 10,000 results, 5 groups, 6 filters a group, 18 in all)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.fakes.hubspot_properties import PropDef
from tests.fakes.hubspot_schema import HubSpotError, parse_time

MAX_LIMIT = 200
MAX_RESULTS = 10_000
Row = tuple[str, dict[str, str]]  # (record id, stored property values)


def _bad(message: str) -> HubSpotError:
    return HubSpotError(400, message, "VALIDATION_ERROR")


def _typed(defn: PropDef, raw: str) -> Decimal | int | str | None:
    """A stored or filter value as what it is compared as."""
    if defn.type in ("datetime", "date"):
        return parse_time(raw)
    if defn.type == "number":
        try:
            return Decimal(raw)
        except InvalidOperation:
            return None
    return raw.casefold()


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^\w*]+", text.casefold()) if t]


def _contains_token(stored: str, wanted: str) -> bool:
    have = _tokens(stored)
    return all(any(fnmatch.fnmatchcase(h, w) for h in have) for w in _tokens(wanted))


def _matches(props: dict[str, str], flt: dict[str, Any], defs: dict[str, PropDef]) -> bool:
    name = flt.get("propertyName")
    operator = flt.get("operator")
    if not isinstance(name, str) or name not in defs:
        raise _bad(f"Unable to find a property named {name!r}")
    defn = defs[name]
    stored = props.get(name)
    has = stored not in (None, "")
    if operator == "HAS_PROPERTY":
        return has
    if operator == "NOT_HAS_PROPERTY":
        return not has
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        found = has and _contains_token(str(stored), str(flt.get("value", "")))
        return found if operator == "CONTAINS_TOKEN" else not found
    if operator in ("IN", "NOT_IN"):
        values = flt.get("values")
        if not isinstance(values, list):
            raise _bad(f"{operator} needs 'values'")
        inside = has and _typed(defn, str(stored)) in {_typed(defn, str(v)) for v in values}
        return inside if operator == "IN" else not inside
    if "value" not in flt:
        raise _bad(f"{operator} needs 'value'")
    if operator == "NEQ":
        return not has or _typed(defn, str(stored)) != _typed(defn, str(flt["value"]))
    if not has:
        return False
    left = _typed(defn, str(stored))
    right = _typed(defn, str(flt["value"]))
    if left is None or right is None:
        raise _bad(f"{flt['value']!r} is not a valid value for {name}")
    if operator == "BETWEEN":
        high = _typed(defn, str(flt.get("highValue", "")))
        return high is not None and right <= left <= high  # type: ignore[operator]
    comparisons = {
        "EQ": lambda a, b: a == b,
        "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b,
        "GT": lambda a, b: a > b,
        "GTE": lambda a, b: a >= b,
    }
    if operator not in comparisons:
        raise _bad(f"unknown operator {operator!r}")
    return bool(comparisons[operator](left, right))


def _check_shape(groups: Sequence[Any]) -> None:
    if len(groups) > 5:
        raise _bad("A search can have at most 5 filterGroups")
    total = 0
    for group in groups:
        filters = group.get("filters", []) if isinstance(group, dict) else None
        if not isinstance(filters, list) or len(filters) > 6:
            raise _bad("A filterGroup has at most 6 filters")
        total += len(filters)
    if total > 18:
        raise _bad("A search can have at most 18 filters")


def _sort_key(defn: PropDef | None, raw: str | None) -> tuple[int, Any]:
    if raw in (None, "") or defn is None:
        return (1, "")
    value = _typed(defn, raw)
    return (0, value if value is not None else "")


def run(
    rows: list[Row], body: dict[str, Any], defs: dict[str, PropDef]
) -> tuple[list[Row], int, str | None]:
    """The page of ``rows`` a search request asks for, the total and the next ``after``."""
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        raise _bad("filterGroups must be a list")
    _check_shape(groups)
    try:
        limit = int(body.get("limit") or 10)
        offset = int(body.get("after") or 0)
    except (TypeError, ValueError) as err:
        raise _bad("limit and after must be integers") from err
    if not 0 < limit <= MAX_LIMIT:
        raise _bad(f"limit must be between 1 and {MAX_LIMIT}")
    if offset + limit > MAX_RESULTS:
        raise _bad(f"a search can page through at most {MAX_RESULTS} results")
    hits = [
        row
        for row in rows
        if not groups or any(all(_matches(row[1], f, defs) for f in g["filters"]) for g in groups)
    ]
    hits.sort(key=lambda row: int(row[0]))
    for sort in reversed(body.get("sorts") or []):
        if isinstance(sort, str):
            name, descending = sort.lstrip("-"), sort.startswith("-")
        else:
            name = sort.get("propertyName", "")
            descending = sort.get("direction", "ASCENDING") == "DESCENDING"
        defn = defs.get(name)
        if defn is None:
            raise _bad(f"Unable to sort by unknown property {name!r}")
        hits.sort(key=lambda row, d=defn, n=name: _sort_key(d, row[1].get(n)), reverse=descending)  # type: ignore[misc]
    page = hits[offset : offset + limit]
    more = offset + limit < len(hits) and offset + limit < MAX_RESULTS
    return page, len(hits), str(offset + limit) if more else None
