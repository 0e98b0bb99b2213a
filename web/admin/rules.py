"""Rules (``/admin/rules``, admins): the draft's rules in order, summarised in words,
with enable/disable, move up/down, duplicate and delete (each a small form), and the rule
form with its condition builder (``web.admin.rule_forms``). The first enabled rule that
matches a lead decides; the configuration's fallback takes the rest."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.config import Problem, RoutingConfig, Rule
from domain.users import Role
from web.admin import draft, nav
from web.admin.deps import Admin, AdminUser, CsrfForm
from web.admin.draft import DraftView, StaleDraft
from web.admin.render import flash, not_found, render
from web.admin.rule_check import rule_data
from web.admin.rule_forms import (
    RuleForm,
    apply_action,
    form_of,
    problem_inputs,
    read_form,
)
from web.admin.words import OP_CHOICES, assign_words, field_choices, rule_words
from web.deps import Context

router = APIRouter()
nav.register("Routing", "Rules", "/admin/rules", Role.admin, order=30)
LIST = "/admin/rules"
MOVES = ("toggle", "up", "down", "duplicate", "delete")


@router.get("/rules", response_class=HTMLResponse)
def list_rules(request: Request, context: Context, user: Admin) -> HTMLResponse:
    view = draft.load(context)
    reps = {r.email: r for r in view.config.reps}
    rows = [
        {
            "index": index,
            "rule": rule,
            "words": rule_words(rule, reps),
            "problems": view.under("rules", index),
        }
        for index, rule in enumerate(view.config.rules)
    ]
    fallback = [p for p in view.problems if p.location.startswith("fallback")]
    page = {
        "rows": rows,
        "fallback": assign_words(view.config.fallback, reps),
        "fallback_problems": fallback,
        **view.bar(),
    }
    return render(request, user, "admin/rules.html", page)


@router.get("/rules/new", response_class=HTMLResponse)
def new_rule(request: Request, context: Context, user: Admin) -> HTMLResponse:
    return _form(request, user, draft.load(context), None, RuleForm())


@router.get("/rules/{index}", response_class=HTMLResponse)
def edit_rule(request: Request, index: int, context: Context, user: Admin) -> HTMLResponse:
    view = draft.load(context)
    if not 0 <= index < len(view.config.rules):
        return not_found(
            request,
            user,
            "Rule not found",
            "There is no such rule in the draft (any more): see the list of rules.",
        )
    return _form(request, user, view, index, form_of(view.config.rules[index]))


@router.post("/rules/new", response_model=None)
def create_rule(request: Request, context: Context, user: Admin, form: CsrfForm) -> Response:
    return _save(request, context, user, form, None)


@router.post("/rules/{index}", response_model=None)
def update_rule(
    request: Request, index: int, context: Context, user: Admin, form: CsrfForm
) -> Response:
    return _save(request, context, user, form, index)


@router.post("/rules/{index}/{move}", response_model=None)
def move_rule(
    request: Request, index: int, move: str, context: Context, user: Admin, form: CsrfForm
) -> Response:
    """Enable/disable, move up or down, duplicate or delete rule ``index``."""
    view = draft.load(context)
    rules = view.config.rules
    known = 0 <= index < len(rules) and rules[index].name == form.get("key")
    if move not in MOVES or draft.revision_of(form) != view.revision or not known:
        flash(request, _changed(view), "error")
        return RedirectResponse(LIST, status_code=303)
    data = view.config.dump()
    items, name = data["rules"], rules[index].name
    target = index
    if move == "toggle":
        items[index]["enabled"] = not items[index]["enabled"]
        text = f"{'Enabled' if items[index]['enabled'] else 'Disabled'} rule {name}"
    elif move in ("up", "down"):
        target = index - 1 if move == "up" else index + 1
        if not 0 <= target < len(items):
            return RedirectResponse(f"{LIST}#rule-{index}", status_code=303)
        items[index], items[target] = items[target], items[index]
        text = f"Moved rule {name} {move} to position {target + 1}"
    elif move == "duplicate":
        copy = {**items[index], "name": _copy_name(name, [r.name for r in rules])}
        items.insert(index + 1, copy)
        target, text = index + 1, f"Duplicated rule {name} as {copy['name']}"
    else:
        del items[index]
        target, text = max(0, index - 1), f"Deleted rule {name}"
    try:
        saved = draft.save(context, user, RoutingConfig.model_validate(data), view.revision)
    except StaleDraft:
        flash(request, _changed(draft.load(context)), "error")
        return RedirectResponse(LIST, status_code=303)
    flash(request, f"{text} (draft revision {saved}).")
    return RedirectResponse(f"{LIST}#rule-{target}", status_code=303)


def _copy_name(name: str, taken: list[str]) -> str:
    lowered = {t.casefold() for t in taken}
    for n in range(1, 1000):
        candidate = f"{name} (copy)" if n == 1 else f"{name} (copy {n})"
        if candidate.casefold() not in lowered and len(candidate) <= 100:
            return candidate
    return name


def _changed(view: DraftView) -> str:
    by = f" by {view.updated_by}" if view.updated_by else ""
    return (
        f"The draft changed since you loaded the page (it is now at revision {view.revision}"
        f"{by}): nothing was changed. This is the current list; try again."
    )


def _save(
    request: Request, context: Context, user: AdminUser, form: Any, url_index: int | None
) -> Response:
    view = draft.load(context)
    rules = view.config.rules
    key = draft.posted_key(form, rules, url_index)
    index: int | None = None
    stale = ""
    if isinstance(key, str) and key:
        index = draft.locate(rules, key, url_index)
        if index is None:
            stale = (
                "This rule was deleted from the draft since you opened the form; saving "
                "adds it again."
            )
    typed = read_form(form)
    revision = draft.revision_of(form)
    action = str(form.get("action") or "save")
    if stale or (action != "save" and apply_action(typed, action)):
        return _form(request, user, view, index, typed, revision=revision, stale=stale)
    data, errors = rule_data(typed)
    if errors:
        return _form(
            request, user, view, index, typed, errors=errors, revision=revision, status=422
        )
    rule = Rule.model_validate(data)
    config = draft.replaced(
        view.config, "rules", index, rule.model_dump(mode="json", by_alias=True)
    )
    try:
        if revision != view.revision:
            raise StaleDraft(revision, view.revision, view.updated_by)
        saved = draft.save(context, user, config, view.revision)
    except StaleDraft:
        view = draft.load(context)
        return _form(request, user, view, index, typed, stale=draft.stale_text(view), status=409)
    position = index if index is not None else len(config.rules) - 1
    flash(request, f"Saved rule {rule.name} to the draft (revision {saved}).")
    return RedirectResponse(f"{LIST}#rule-{position}", status_code=303)


def _form(
    request: Request,
    user: AdminUser,
    view: DraftView,
    index: int | None,
    typed: RuleForm,
    *,
    errors: dict[str, str] | None = None,
    stale: str = "",
    revision: int | None = None,
    status: int = 200,
) -> HTMLResponse:
    config = view.config
    shown: dict[str, str] = {}
    general: list[Problem] = []
    for problem in view.under("rules", index) if index is not None else []:
        where = problem_inputs(problem.location, index or 0, typed)
        if where is None:
            general.append(problem)
        else:
            shown.setdefault(where, problem.message)
    shown.update(errors or {})
    page = {
        "form": typed,
        "errors": shown,
        "general": general,
        "refused": bool(errors),
        "index": index,
        "key": config.rules[index].name if index is not None else "",
        "revision": view.revision if revision is None else revision,
        "fields": field_choices(),
        "ops": OP_CHOICES,
        "territories": [t.name for t in config.territories],
        "pools": [p.name for p in config.pools],
        "reps": [(r.email, f"{r.name} ({r.email})") for r in config.reps],
        "stale": stale,
        **view.bar(),
    }
    return render(request, user, "admin/rule_form.html", page, status=status)
