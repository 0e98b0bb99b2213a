"""Rule conditions, compiled once per configuration version and evaluated per lead.

A lead is first turned into ``facts``: its fields and the derived ones (email and website
domain, free-mail flag, score, grade), normalised once (text case-folded, countries as
ISO codes, states as their subdivision codes where the country is known), so that each
condition is a cheap comparison. Rules are compiled into closures, and indexed by one
equality condition each where they have one (``country in [...]``, ``source eq ...``):
a lead only evaluates the rules its own values can match, in rule order, and the first
match wins. Semantics do not depend on the index; it only skips rules that cannot match.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import pycountry

from domain.config import NUMERIC_FIELDS, AllOf, AnyOf, Condition, Op, Rule, Territory, When
from domain.geo import country_code
from domain.lead import LeadSubmission

# Free-mail domains: the ``free_mail`` fact of a lead (and its scoring penalty).
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

Facts = dict[str, Any]
Test = Callable[[Facts], bool]
FREEMAIL_DOMAINS = frozenset(FREEMAIL)
# Fields whose equality conditions index rules: one value per lead, compared as is.
INDEXABLE = frozenset(
    {
        "country",
        "state",
        "source",
        "industry",
        "grade",
        "email_domain",
        "website_domain",
        "utm_source",
        "utm_medium",
        "utm_campaign",
    }
)


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split()).casefold()
    return text or None


def _domain_of_url(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url if "//" in url else f"//{url}")
    host = (parts.hostname or "").casefold()
    return host.removeprefix("www.") or None


@lru_cache(maxsize=8192)
def state_code(country: str | None, state: str) -> str:
    """A state or region as its subdivision code within ``country`` ("California" and
    "CA" both give "ca" in the US); the case-folded text when it is not known. Without a
    country (a rule's value, a lead that names none) a name is looked up in every country,
    the US first, so that "California" in a rule matches a Californian lead."""
    key = _text(state) or ""
    if country:
        return _subdivisions(country).get(key, key)
    return _subdivision_names().get(key, key)


@lru_cache(maxsize=512)
def _subdivisions(country: str) -> dict[str, str]:
    """The subdivisions of ``country``: their codes by case-folded code and name."""
    codes: dict[str, str] = {}
    for sub in pycountry.subdivisions:
        if sub.country_code == country:
            code = str(sub.code).split("-", 1)[1].casefold()
            codes.setdefault(code, code)
            codes.setdefault(str(sub.name).casefold(), code)
    return codes


@lru_cache(maxsize=1)
def _subdivision_names() -> dict[str, str]:
    """Every subdivision's case-folded name and its code; where two countries share a
    name, the US's code, then the first country's in ISO order."""
    names: dict[str, str] = {}
    for sub in sorted(pycountry.subdivisions, key=lambda s: (s.country_code != "US", s.code)):
        names.setdefault(str(sub.name).casefold(), str(sub.code).split("-", 1)[1].casefold())
    return names


# The submission's text fields (a dump of the model costs more than reading them).
_TEXT_FIELDS = tuple(n for n in LeadSubmission.model_fields if n not in ("extra", "company_size"))


def facts_of(submission: LeadSubmission, score: int | None, grade: str | None) -> Facts:
    """The lead as conditions see it."""
    facts: Facts = {}
    for name in _TEXT_FIELDS:
        value = getattr(submission, name)
        if isinstance(value, str):
            facts[name] = _text(value)
    country = country_code(submission.country) if submission.country else None
    facts["country"] = country or _text(submission.country)
    if submission.state:
        facts["state"] = state_code(country, submission.state)
    if submission.postal_code:
        facts["postal_code"] = submission.postal_code.replace(" ", "").casefold()
    facts["company_size"] = submission.company_size
    email_domain = submission.email.rpartition("@")[2].casefold()
    facts["email_domain"] = email_domain
    facts["website_domain"] = _domain_of_url(submission.website)
    facts["free_mail"] = email_domain in FREEMAIL_DOMAINS
    facts["score"] = score
    facts["grade"] = _text(grade)
    for key, value in submission.extra.items():
        facts[f"extra.{key}"] = _text(value)
    return facts


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _expected(field_name: str, value: object) -> object:
    """A condition's value in the form facts hold."""
    if isinstance(value, list):
        return [_expected(field_name, v) for v in value]
    if isinstance(value, bool):
        return value
    if field_name in NUMERIC_FIELDS:
        number = _number(value)
        return _text(value) if number is None else number
    # Facts of other fields are text: a number in a rule (``extra.tier eq 3``) is too.
    if field_name == "country" and isinstance(value, str):
        return country_code(value) or _text(value)
    if field_name == "state" and isinstance(value, str):
        return state_code(None, value)
    if field_name == "postal_code":
        return str(value).replace(" ", "").casefold()
    return _text(value)


def _expected_list(field_name: str, value: object) -> list[object]:
    items = value if isinstance(value, list) else [value]
    return [_expected(field_name, v) for v in items]


def territory_test(territory: Territory) -> Test:
    """A lead is in a territory when it is in one of its countries (if any are given), in
    one of its states (if any) and under one of its postal prefixes (if any)."""
    countries = frozenset(territory.countries)
    country = territory.countries[0] if len(territory.countries) == 1 else None
    states = frozenset(state_code(country, s) for s in territory.states)
    prefixes = tuple(p.replace(" ", "").casefold() for p in territory.postal_prefixes)

    def test(facts: Facts) -> bool:
        if countries and facts.get("country") not in countries:
            return False
        if states:
            state = facts.get("state")
            if state is None or state not in states:
                return False
        if prefixes:
            postal = facts.get("postal_code")
            if not postal or not postal.startswith(prefixes):
                return False
        return bool(countries or states or prefixes)

    return test


def compile_condition(cond: Condition, territories: dict[str, Territory]) -> Test:
    """A closure for one condition. Text compares case-insensitively; a missing value
    matches only ``ne``, ``not_in`` and ``empty``."""
    name, op = cond.field, cond.op
    value = _expected(name, cond.value)
    if op is Op.eq:
        return lambda f: f.get(name) == value
    if op is Op.ne:
        return lambda f: f.get(name) != value
    if op is Op.in_:
        members = frozenset(_expected_list(name, cond.value))
        return lambda f: f.get(name) in members
    if op is Op.not_in:
        excluded = frozenset(_expected_list(name, cond.value))
        return lambda f: f.get(name) not in excluded
    if op in (Op.contains, Op.starts_with, Op.ends_with):
        needle = str(value)
        if op is Op.contains:
            return lambda f: isinstance(v := f.get(name), str) and needle in v
        if op is Op.starts_with:
            return lambda f: isinstance(v := f.get(name), str) and v.startswith(needle)
        return lambda f: isinstance(v := f.get(name), str) and v.endswith(needle)
    if op is Op.regex:
        pattern = re.compile(str(cond.value), re.IGNORECASE)
        return lambda f: isinstance(v := f.get(name), str) and pattern.search(v) is not None
    if op in (Op.gt, Op.gte, Op.lt, Op.lte, Op.between):
        compare = _comparison(op, cond.value)

        def in_range(f: Facts) -> bool:
            x = f.get(name)
            if x.__class__ is not int and x.__class__ is not float:  # text, None, a bool
                x = _number(x)
                if x is None:
                    return False
            return compare(x)

        return in_range
    if op is Op.empty:
        return lambda f: f.get(name) in (None, "")
    if op is Op.not_empty:
        return lambda f: f.get(name) not in (None, "")
    assert op is Op.in_territory
    return territory_test(territories[str(cond.value)])


def _comparison(op: Op, value: Any) -> Callable[[float], bool]:
    if op is Op.between:
        low, high = float(value[0]), float(value[1])
        return lambda x: low <= x <= high
    bound = float(value)
    # bound.__lt__(x) is x > bound, and so on: one call into C per test, no lambda.
    comparisons = {Op.gt: bound.__lt__, Op.gte: bound.__le__, Op.lt: bound.__gt__}
    return comparisons.get(op, bound.__ge__)


def compile_when(node: When, territories: dict[str, Territory]) -> Test:
    # Nested pairs of closures rather than all()/any() over a list: no generator per test.
    if isinstance(node, AllOf | AnyOf):
        both = isinstance(node, AllOf)
        children = node.all if isinstance(node, AllOf) else node.any
        tests = [compile_when(child, territories) for child in children]
        test = tests[-1]
        for earlier in reversed(tests[:-1]):
            test = _pair(earlier, test, both)
        return test
    return compile_condition(node, territories)


def _pair(first: Test, second: Test, both: bool) -> Test:
    if both:
        return lambda f: first(f) and second(f)
    return lambda f: first(f) or second(f)


def explain(node: When, facts: Facts, territories: dict[str, Territory]) -> list[dict[str, Any]]:
    """Each condition of ``node`` with the lead's value and whether it held."""
    return [_explained(c, compile_condition(c, territories), facts) for c in _conditions(node)]


def _conditions(node: When) -> list[Condition]:
    if isinstance(node, AllOf | AnyOf):
        children = node.all if isinstance(node, AllOf) else node.any
        return [cond for child in children for cond in _conditions(child)]
    return [node]


def _explained(node: Condition, test: Test, facts: Facts) -> dict[str, Any]:
    return {
        "field": node.field,
        "op": node.op.value,
        "value": node.value,
        "lead_value": facts.get(node.field)
        if node.op is not Op.in_territory
        else {k: facts.get(k) for k in ("country", "state", "postal_code")},
        "matched": test(facts),
    }


def _index_key(node: When | None, territories: dict[str, Territory]) -> tuple[str, set[Any]] | None:
    """An equality constraint every lead matching ``node`` satisfies: the field and the
    values it may hold, or None."""
    if node is None:
        return None
    conditions: Iterable[When] = node.all if isinstance(node, AllOf) else [node]
    for cond in conditions:
        if not isinstance(cond, Condition) or cond.field not in INDEXABLE:
            continue
        if cond.op is Op.eq:
            return cond.field, {_expected(cond.field, cond.value)}
        if cond.op is Op.in_:
            return cond.field, set(_expected_list(cond.field, cond.value))
        if cond.op is Op.in_territory and cond.field == "country":
            countries = territories[str(cond.value)].countries
            if countries:
                return "country", set(countries)
    return None


@dataclass
class CompiledRules:
    """The enabled rules of a configuration, compiled and indexed."""

    rules: list[Rule]
    tests: list[Test]
    unindexed: list[int] = field(default_factory=list)
    index: dict[str, dict[Any, list[int]]] = field(default_factory=dict)
    territories: dict[str, Territory] = field(default_factory=dict)
    # Each rule's conditions and their closures, compiled the first time it is explained.
    conditions: dict[int, list[tuple[Condition, Test]]] = field(default_factory=dict)

    @classmethod
    def build(cls, rules: list[Rule], territories: list[Territory]) -> CompiledRules:
        by_name = {t.name: t for t in territories}
        enabled = [r for r in rules if r.enabled]
        compiled = cls(
            rules=enabled,
            tests=[
                compile_when(r.when, by_name) if r.when is not None else (lambda _f: True)
                for r in enabled
            ],
            territories=by_name,
        )
        for position, rule in enumerate(enabled):
            key = _index_key(rule.when, by_name)
            if key is None:
                compiled.unindexed.append(position)
                continue
            name, values = key
            per_value = compiled.index.setdefault(name, {})
            for value in values:
                per_value.setdefault(value, []).append(position)
        return compiled

    def explain(self, position: int, facts: Facts) -> list[dict[str, Any]]:
        """Each condition of the rule at ``position`` with the lead's value and whether it
        held (as ``explain``)."""
        conditions = self.conditions.get(position)
        if conditions is None:
            when = self.rules[position].when
            conditions = [
                (c, compile_condition(c, self.territories))
                for c in (_conditions(when) if when is not None else [])
            ]
            self.conditions[position] = conditions
        return [_explained(c, test, facts) for c, test in conditions]

    def first_match(self, facts: Facts) -> tuple[int | None, int]:
        """The position of the first rule that matches and how many rules were tested."""
        lists = [self.unindexed]
        for name, per_value in self.index.items():
            found = per_value.get(facts.get(name))
            if found:
                lists.append(found)
        candidates = lists[0] if len(lists) == 1 else heapq.merge(*lists)
        tested = 0
        last = -1
        for position in candidates:
            if position == last:
                continue
            last = position
            tested += 1
            if self.tests[position](facts):
                return position, tested
        return None, tested
