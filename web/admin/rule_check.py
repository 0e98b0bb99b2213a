"""The rule a rule form describes (``web.admin.rule_forms``), as plain data, and the
shape errors of what was typed, by input name: condition values typed as their field and
operator need (numbers, lists, true/false)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from domain.config import NUMERIC_FIELDS, Condition, Op, Rule
from web.admin.rule_forms import EXTRA, CondRow, Group, RuleForm, value_input


def rule_data(form: RuleForm) -> tuple[dict[str, Any], dict[str, str]]:
    """The rule the form describes, as plain data, and the shape errors of what was typed
    (input name → message). A rule with errors is not saved."""
    errors: dict[str, str] = {}
    if not form.name:
        errors["name"] = "give the rule a name"
    root = form.root
    when: Any = None
    if len(root.children) == 1 and isinstance(root.children[0], CondRow):
        when = _when(root.children[0], errors)
    elif root.children:
        when = _when(root, errors)
    data: dict[str, Any] = {"name": form.name, "enabled": form.enabled, "when": when}
    data["assign"] = _assign(form, errors)
    if not errors:
        try:
            Rule.model_validate(data)
        except ValidationError as err:
            errors["name"] = "; ".join(str(e["msg"]) for e in err.errors(include_url=False))
    return data, errors


def _when(node: CondRow | Group, errors: dict[str, str]) -> dict[str, Any]:
    if isinstance(node, Group):
        if not node.children:
            errors[f"{node.path}.match"] = "an empty group: add a condition or remove it"
        return {node.match: [_when(child, errors) for child in node.children]}
    name = f"{EXTRA}{node.extra}" if node.field == EXTRA else node.field
    data: dict[str, Any] = {"field": name, "op": node.op, "value": None}
    if not node.field:
        errors[f"{node.path}.field"] = "choose a field"
        return data
    if node.field == EXTRA and not node.extra:
        errors[f"{node.path}.extra"] = "name the extra field"
        return data
    where = value_input(node)
    try:
        data["value"] = typed_value(name, node)
        Condition.model_validate(data)
    except ValueError as err:  # ValidationError is one
        errors[where] = _first_message(err)
        if isinstance(err, ValidationError):
            for e in err.errors(include_url=False):
                if e["loc"] and e["loc"][0] in ("field", "op"):
                    errors[f"{node.path}.{e['loc'][0]}"] = _clean(str(e["msg"]))
                    errors.pop(where, None)
    return data


def _first_message(err: ValueError) -> str:
    if isinstance(err, ValidationError):
        return _clean(str(err.errors(include_url=False)[0]["msg"]))
    return str(err)


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ")


def typed_value(name: str, node: CondRow) -> Any:
    """The value of a condition row, typed as its field and operator need: numbers for
    comparisons and numeric fields, a list for ``in``/``not_in``, true/false for
    ``free_mail``, none for ``empty``/``not_empty``. ``ValueError`` for a number that is
    not one."""
    op = node.op
    if op in (Op.empty.value, Op.not_empty.value):
        return None
    if op == Op.in_territory.value:
        return node.territory or None
    if op == Op.between.value:
        if not node.low or not node.high:
            raise ValueError("give both the low and the high number")
        return [_number(node.low), _number(node.high)]
    if op in (Op.gt.value, Op.gte.value, Op.lt.value, Op.lte.value):
        if not node.value:
            raise ValueError("give a number")
        return _number(node.value)
    if op in (Op.in_.value, Op.not_in.value):
        items = [item.strip() for item in node.value.split(",") if item.strip()]
        return [_scalar(name, item) for item in items]
    if not node.value:
        return None
    return _scalar(name, node.value)


def _scalar(name: str, text: str) -> Any:
    if name == "free_mail" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if name in NUMERIC_FIELDS:
        try:
            return _number(text)
        except ValueError:
            return text
    return text


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{text!r} is not a number")
    return number


def _assign(form: RuleForm, errors: dict[str, str]) -> dict[str, Any]:
    def target(kind: str, pool: str, rep: str, prefix: str) -> dict[str, Any]:
        if kind == "rep":
            if not rep:
                errors[f"{prefix}_rep"] = "choose a rep"
            return {"rep": rep or None}
        if not pool:
            errors[f"{prefix}_pool"] = "choose a pool"
        return {"pool": pool or None}

    if form.assign_kind == "account_owner":
        otherwise = target(form.else_kind, form.else_pool, form.else_rep, "else")
        return {"account_owner": True, "else": otherwise}
    return target(form.assign_kind, form.assign_pool, form.assign_rep, "assign")
