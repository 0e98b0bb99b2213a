"""The routing configuration in words, for the admin pages: field and operator labels,
and rules summarised as "country in territory DACH and company size ≥ 1000 → pool EMEA
AE"."""

from __future__ import annotations

from domain.config import (
    DERIVED_FIELDS,
    LEAD_FIELDS,
    AllOf,
    AnyOf,
    Assign,
    Condition,
    Op,
    RepConfig,
    Rule,
    When,
)
from web.admin.rule_forms import EXTRA, text_of

OPS: dict[str, str] = {
    Op.eq.value: "is",
    Op.ne.value: "is not",
    Op.in_.value: "is one of",
    Op.not_in.value: "is none of",
    Op.contains.value: "contains",
    Op.starts_with.value: "starts with",
    Op.ends_with.value: "ends with",
    Op.regex.value: "matches the pattern",
    Op.gt.value: ">",
    Op.gte.value: "≥",
    Op.lt.value: "<",
    Op.lte.value: "≤",
    Op.between.value: "between",
    Op.empty.value: "is empty",
    Op.not_empty.value: "is not empty",
    Op.in_territory.value: "in territory",
}
# Labels of the operator picker (the summary's words, spelled out where a symbol is short).
OP_CHOICES: list[tuple[str, str]] = [
    (op, {">": "> greater than", "≥": "≥ at least", "<": "< less than", "≤": "≤ at most"}.get(w, w))
    for op, w in OPS.items()
]
STRATEGIES = {
    "round_robin": "Round robin",
    "weighted": "Weighted",
    "least_loaded": "Least loaded",
    "named": "Named order",
}
DAYS = [
    ("mon", "Mon"),
    ("tue", "Tue"),
    ("wed", "Wed"),
    ("thu", "Thu"),
    ("fri", "Fri"),
    ("sat", "Sat"),
    ("sun", "Sun"),
]


def field_label(name: str) -> str:
    """``company_size`` → ``company size``; ``extra.tier`` stays as it is."""
    if name.startswith(EXTRA):
        return name
    return name.replace("_", " ")


def field_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The field picker's groups: lead fields, derived fields, extra fields."""
    return [
        ("Lead fields", [(f, field_label(f).capitalize()) for f in LEAD_FIELDS]),
        ("Derived fields", [(f, field_label(f).capitalize()) for f in DERIVED_FIELDS]),
        ("Extra fields", [(EXTRA, "extra.<name> …")]),
    ]


def condition_words(node: When, top: bool = True) -> str:
    if isinstance(node, AllOf | AnyOf):
        joiner = " and " if isinstance(node, AllOf) else " or "
        items = node.all if isinstance(node, AllOf) else node.any
        text = joiner.join(condition_words(child, False) for child in items)
        return text if top or len(items) == 1 else f"({text})"
    return _condition(node)


def _condition(cond: Condition) -> str:
    name, op = field_label(cond.field), cond.op
    if op in (Op.empty, Op.not_empty):
        return f"{name} {OPS[op.value]}"
    if op is Op.between and isinstance(cond.value, list) and len(cond.value) == 2:
        return f"{name} between {text_of(cond.value[0])} and {text_of(cond.value[1])}"
    if op is Op.in_territory:
        return f"{name} in territory {text_of(cond.value)}"
    if op in (Op.in_, Op.not_in) and isinstance(cond.value, list):
        return f"{name} {OPS[op.value]} {', '.join(text_of(v) for v in cond.value)}"
    return f"{name} {OPS[op.value]} {text_of(cond.value)}"


def assign_words(assign: Assign, reps: dict[str, RepConfig]) -> str:
    if assign.account_owner:
        otherwise = assign_words(assign.else_, reps) if assign.else_ else "—"
        return f"account owner, else {otherwise}"
    if assign.rep is not None:
        rep = reps.get(assign.rep)
        return f"rep {rep.name if rep else assign.rep}"
    return f"pool {assign.pool}"


def rule_words(rule: Rule, reps: dict[str, RepConfig]) -> str:
    """The rule in one line: its conditions → where its leads go."""
    when = condition_words(rule.when) if rule.when is not None else "every lead"
    return f"{when} → {assign_words(rule.assign, reps)}"
