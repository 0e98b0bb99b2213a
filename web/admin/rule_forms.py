"""The rule form: the condition builder's rows as flat form fields, the builder's actions
(add a condition, add a group, remove), and the rule the form describes.

Each node of the condition tree has a path: ``c`` is the root group, ``c.0`` its first
child, ``c.1.0`` the first child of its second child. A node posts ``<path>.type``
(``group`` or ``cond``); a group ``<path>.match`` (``all`` or ``any``); a condition
``<path>.field`` (and ``<path>.extra`` for ``extra.<name>``), ``<path>.op``,
``<path>.value`` (lists comma-separated), ``<path>.low``/``<path>.high`` (``between``) and
``<path>.territory`` (``in_territory``). Children are ordered by their last number, which
need not be consecutive (the script numbers new rows past the highest one); a re-render
numbers them 0, 1, 2 again.

The root group with no condition means "every lead"; with a single condition it is saved
as that condition; anything else is saved as the group it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from domain.config import AllOf, AnyOf, Op, Rule, When

ROOT = "c"
EXTRA = "extra."
_PATH = re.compile(r"^c(?:\.\d{1,3}){0,8}$")
MAX_NODES = 500


@dataclass
class CondRow:
    path: str
    field: str = ""
    extra: str = ""
    op: str = "eq"
    value: str = ""
    low: str = ""
    high: str = ""
    territory: str = ""
    kind: str = "cond"


@dataclass
class Group:
    path: str
    match: str = "all"
    children: list[CondRow | Group] = field(default_factory=list)
    kind: str = "group"


@dataclass
class RuleForm:
    """What the rule form shows: its fields as typed, the condition tree and the action."""

    name: str = ""
    enabled: bool = True
    root: Group = field(default_factory=lambda: Group(ROOT))
    assign_kind: str = "pool"
    assign_pool: str = ""
    assign_rep: str = ""
    else_kind: str = "pool"
    else_pool: str = ""
    else_rep: str = ""


# ------------------------------------------------------------------ rule → form


def form_of(rule: Rule) -> RuleForm:
    """The form showing ``rule``."""
    root = Group(ROOT)
    if isinstance(rule.when, AllOf | AnyOf):
        root = _node(rule.when, ROOT)  # type: ignore[assignment]
    elif rule.when is not None:
        root.children.append(_node(rule.when, f"{ROOT}.0"))
    assign, out = rule.assign, RuleForm(name=rule.name, enabled=rule.enabled, root=root)
    if assign.account_owner:
        out.assign_kind = "account_owner"
        if assign.else_ is not None:
            out.else_kind = "rep" if assign.else_.rep else "pool"
            out.else_pool, out.else_rep = assign.else_.pool or "", assign.else_.rep or ""
    else:
        out.assign_kind = "rep" if assign.rep else "pool"
        out.assign_pool, out.assign_rep = assign.pool or "", assign.rep or ""
    return out


def _node(node: When, path: str) -> CondRow | Group:
    if isinstance(node, AllOf | AnyOf):
        items = node.all if isinstance(node, AllOf) else node.any
        match = "all" if isinstance(node, AllOf) else "any"
        return Group(path, match, [_node(c, f"{path}.{i}") for i, c in enumerate(items)])
    row = CondRow(path, field=node.field, op=node.op.value)
    if node.field.startswith(EXTRA):
        row.field, row.extra = EXTRA, node.field.removeprefix(EXTRA)
    if node.op is Op.between and isinstance(node.value, list):
        row.low, row.high = (text_of(v) for v in node.value)
    elif node.op is Op.in_territory:
        row.territory = text_of(node.value)
    else:
        row.value = text_of(node.value)
    return row


def text_of(value: Any) -> str:
    """A condition value as its input shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(text_of(v) for v in value)
    return str(value)


# ------------------------------------------------------------------ form → form


def read_form(form: FormData) -> RuleForm:
    """The rule form as posted (nothing checked yet)."""
    out = RuleForm(
        name=_get(form, "name"),
        enabled=form.get("enabled") is not None,
        assign_kind=_get(form, "assign_kind") or "pool",
        assign_pool=_get(form, "assign_pool"),
        assign_rep=_get(form, "assign_rep"),
        else_kind=_get(form, "else_kind") or "pool",
        else_pool=_get(form, "else_pool"),
        else_rep=_get(form, "else_rep"),
    )
    paths = [
        key.removesuffix(".type")
        for key in form
        if key.endswith(".type") and _PATH.match(key.removesuffix(".type"))
    ][:MAX_NODES]
    out.root = _tree(form, ROOT, set(paths))
    return renumbered(out)


def _tree(form: FormData, path: str, paths: set[str]) -> Group:
    group = Group(path, "any" if _get(form, f"{path}.match") == "any" else "all")
    depth = path.count(".") + 1
    children = sorted(
        (p for p in paths if p.startswith(f"{path}.") and p.count(".") == depth),
        key=lambda p: int(p.rpartition(".")[2]),
    )
    for child in children:
        if _get(form, f"{child}.type") == "group":
            group.children.append(_tree(form, child, paths))
        else:
            group.children.append(
                CondRow(
                    child,
                    **{
                        name: _get(form, f"{child}.{name}")
                        for name in ("field", "extra", "op", "value", "low", "high", "territory")
                    },
                )
            )
    return group


def _get(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def renumbered(form: RuleForm) -> RuleForm:
    """The form with its nodes numbered 0, 1, 2 … under each group."""

    def walk(node: CondRow | Group, path: str) -> None:
        node.path = path
        if isinstance(node, Group):
            for index, child in enumerate(node.children):
                walk(child, f"{path}.{index}")

    walk(form.root, ROOT)
    return form


def apply_action(form: RuleForm, action: str) -> bool:
    """Apply a builder action (``add_cond:<path>``, ``add_group:<path>``,
    ``remove:<path>``) to the form; False when it names no node of it."""
    verb, _, path = action.partition(":")
    found = _find(form.root, path)
    if found is None:
        return False
    node, parent = found
    if verb in ("add_cond", "add_group") and isinstance(node, Group):
        new_path = f"{node.path}.{len(node.children)}"
        if verb == "add_cond":
            node.children.append(CondRow(new_path))
        else:
            match = "any" if node.match == "all" else "all"
            node.children.append(Group(new_path, match, [CondRow(f"{new_path}.0")]))
    elif verb == "remove" and parent is not None:
        parent.children.remove(node)
    else:
        return False
    renumbered(form)
    return True


def _find(node: CondRow | Group, path: str, parent: Group | None = None) -> Any:
    if node.path == path:
        return node, parent
    if isinstance(node, Group):
        for child in node.children:
            found = _find(child, path, node)
            if found is not None:
                return found
    return None


def value_input(node: CondRow) -> str:
    if node.op == Op.between.value:
        return f"{node.path}.low"
    if node.op == Op.in_territory.value:
        return f"{node.path}.territory"
    return f"{node.path}.value"


# ------------------------------------------------------------------ problems → inputs


_STEP = re.compile(r"\.(all|any)\[(\d+)\]")


def problem_inputs(location: str, index: int, form: RuleForm) -> str | None:
    """The input a problem of ``rules[index]`` concerns (None: the rule as a whole, or
    not this rule). ``rules[2].when.all[0].value`` → ``c.0.value``."""
    prefix = f"rules[{index}]"
    if location != prefix and not location.startswith(f"{prefix}."):
        return None
    rest = location.removeprefix(prefix)
    if rest.startswith(".assign"):
        part = rest.removeprefix(".assign")
        if part.startswith(".else"):
            return f"else_{form.else_kind}"
        return f"assign_{form.assign_kind if form.assign_kind != 'account_owner' else 'pool'}"
    if rest == ".name":
        return "name"
    if not rest.startswith(".when"):
        return None
    rest = rest.removeprefix(".when")
    path = ROOT
    single = len(form.root.children) == 1 and isinstance(form.root.children[0], CondRow)
    if single and not rest.startswith((".all", ".any")):
        path = f"{ROOT}.0"
    while (step := _STEP.match(rest)) is not None:
        path, rest = f"{path}.{step.group(2)}", rest[step.end() :]
    found = _find(form.root, path)
    if found is None:  # not in the form as it is now: shown with the rule's problems
        return None
    node = found[0]
    if isinstance(node, CondRow) and rest in (".value", ".op", ".field"):
        return value_input(node) if rest == ".value" else f"{path}{rest}"
    if isinstance(node, Group) and rest == "":
        return f"{path}.match"
    return None
