"""Scoring rules (``/admin/lifecycle/scoring/rules/…``): the points a lead earns or loses
when it matches a condition, listed on the *Scoring* tab of Lifecycle & scoring
(``web.admin.lifecycle_settings``). The rule form has the routing rules' condition
builder (``web.admin.rule_forms``: nested ``all``/``any`` groups, the same inputs and
``/static/rules.js``) with a number of points instead of a destination; ``score`` and
``grade`` are not offered, since they are what scoring computes. Admins edit; everyone
else reads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from domain.config import SCORE_FIELDS, Assign, Problem, RoutingConfig, Rule, ScoringRule
from domain.config_checks import problems
from domain.users import Role, at_least
from web.admin import draft
from web.admin.config_forms import Errors, posted_text
from web.admin.deps import Admin, AdminUser, CsrfForm, Viewer
from web.admin.draft import DraftView, StaleDraft
from web.admin.render import flash, not_found, nothing_deleted, render
from web.admin.rule_check import rule_data
from web.admin.rule_forms import ROOT, RuleForm, apply_action, form_of, problem_inputs, read_form
from web.admin.words import OP_CHOICES, condition_words, field_choices
from web.deps import AppContext, Context

router = APIRouter()
LIST = "/admin/lifecycle/scoring"
FORM = "/admin/lifecycle/scoring/rules"


def rule_rows(view: DraftView) -> list[dict[str, Any]]:
    """The scoring rules as the Scoring tab lists them."""
    return [
        {
            "index": index,
            "rule": rule,
            "points": points_text(rule.points),
            "words": condition_words(rule.when),
            "problems": view.under("scoring.rules", index),
        }
        for index, rule in enumerate(view.config.scoring.rules)
    ]


def points_text(points: int) -> str:
    """``+20``, or ``-10`` written with a minus sign (U+2212), not a hyphen."""
    return f"+{points}" if points > 0 else f"\N{MINUS SIGN}{-points}"


@router.get("/lifecycle/scoring/rules/new", response_class=HTMLResponse)
def new_scoring_rule(request: Request, context: Context, user: Admin) -> HTMLResponse:
    return _form(request, user, draft.load(context), None, RuleForm(), "")


@router.get("/lifecycle/scoring/rules/{index}", response_class=HTMLResponse)
def edit_scoring_rule(request: Request, index: int, context: Context, user: Viewer) -> HTMLResponse:
    view = draft.load(context)
    rules = view.config.scoring.rules
    if not 0 <= index < len(rules):
        return _missing(request, user)
    rule = rules[index]
    # The routing rules' form reads a rule; this one's destination is never shown.
    shown = form_of(Rule(name=rule.name, when=rule.when, assign=Assign(pool=rule.name)))
    return _form(request, user, view, index, shown, str(rule.points))


@router.post("/lifecycle/scoring/rules/new", response_model=None)
def create_scoring_rule(
    request: Request, context: Context, user: Admin, form: CsrfForm
) -> Response:
    return _save(request, context, user, form, None)


@router.post("/lifecycle/scoring/rules/{index}", response_model=None)
def update_scoring_rule(
    request: Request, index: int, context: Context, user: Admin, form: CsrfForm
) -> Response:
    return _save(request, context, user, form, index)


@router.post("/lifecycle/scoring/rules/{index}/delete", response_model=None)
def delete_scoring_rule(
    request: Request, index: int, context: Context, user: Admin, form: CsrfForm
) -> Response:
    view = draft.load(context)
    found = draft.locate(view.config.scoring.rules, form.get("key"), index)
    if draft.revision_of(form) != view.revision or found is None:
        return nothing_deleted(request, LIST)
    data = view.config.dump()
    removed = data["scoring"]["rules"].pop(found)
    try:
        saved = draft.save(context, user, RoutingConfig.model_validate(data), view.revision)
    except StaleDraft:
        flash(request, "Somebody saved the draft at the same moment: nothing was deleted.", "error")
        return RedirectResponse(LIST, status_code=303)
    flash(request, f"Deleted scoring rule {removed['name']} from the draft (revision {saved}).")
    return RedirectResponse(f"{LIST}#scoring-rules", status_code=303)


def _save(
    request: Request, context: AppContext, user: AdminUser, form: FormData, hint: int | None
) -> Response:
    view = draft.load(context)
    rules = view.config.scoring.rules
    key = draft.posted_key(form, rules, hint)
    index = draft.locate(rules, key, hint)
    typed, points = read_form(form), posted_text(form, "points", "")
    revision = draft.revision_of(form)
    if key and index is None:
        stale = (
            "This scoring rule was deleted from the draft since you opened the form; saving "
            "adds it again."
        )
        return _form(request, user, view, None, typed, points, revision=revision, stale=stale)
    action = str(form.get("action") or "save")
    if action != "save" and apply_action(typed, action):
        return _form(request, user, view, index, typed, points, revision=revision)
    config, errors = _applied(view.config, index, typed, points)
    if config is None:
        return _form(
            request, user, view, index, typed, points, errors=errors, revision=revision, status=422
        )
    try:
        if revision != view.revision:
            raise StaleDraft(revision, view.revision, view.updated_by)
        saved = draft.save(context, user, config, view.revision)
    except StaleDraft:
        view = draft.load(context)
        stale = draft.stale_text(view)
        return _form(request, user, view, index, typed, points, stale=stale, status=409)
    position = index if index is not None else len(config.scoring.rules) - 1
    flash(request, f"Saved scoring rule {typed.name} to the draft (revision {saved}).")
    return RedirectResponse(f"{LIST}#scoring-rule-{position}", status_code=303)


def _applied(
    config: RoutingConfig, index: int | None, typed: RuleForm, points: str
) -> tuple[RoutingConfig | None, Errors]:
    """``config`` with the scoring rule as typed at ``index`` (added at the end when
    None), or None and the errors by input name."""
    probe = RuleForm(name=typed.name, root=typed.root, assign_kind="pool", assign_pool="-")
    data, errors = rule_data(probe)
    if not typed.root.children:
        errors[f"{ROOT}.match"] = "add a condition: a rule's points go to the leads it matches"
    others = [r.name for i, r in enumerate(config.scoring.rules) if i != index]
    same = next((n for n in others if n.casefold() == typed.name.casefold()), None)
    if typed.name and same is not None:
        errors["name"] = f"duplicate name: another scoring rule is called {same!r}"
    number: int | None = None
    try:
        number = int(points)
    except ValueError:
        errors["points"] = f"{points!r} is not a whole number" if points else "is required"
    if errors:
        return None, errors
    try:
        rule = ScoringRule.model_validate(
            {"name": typed.name, "points": number, "when": data["when"]}
        )
    except ValidationError as err:
        for e in err.errors(include_url=False):
            where = str(e["loc"][0]) if e["loc"] and e["loc"][0] in ("name", "points") else None
            message = str(e["msg"]).removeprefix("Value error, ")
            if e["type"] in ("greater_than_equal", "less_than_equal"):
                message = "give -100..100 points (not 0)"
            errors.setdefault(where or f"{ROOT}.match", message)
        return None, errors
    document = config.dump()
    items = document["scoring"]["rules"]
    item = rule.model_dump(mode="json", by_alias=True)
    at = len(items) if index is None else index
    if index is None:
        items.append(item)
    else:
        items[index] = item
    changed = RoutingConfig.model_validate(document)
    for problem in problems(changed):
        where = _input_of(problem, at, typed)
        if where is not None:
            errors.setdefault(where or f"{ROOT}.match", problem.message)
    return (None, errors) if errors else (changed, errors)


def _input_of(problem: Problem, index: int, typed: RuleForm) -> str | None:
    """The input a problem of ``scoring.rules[index]`` concerns (the name for the rule as
    a whole; "" for none of them), or None when it is another rule's."""
    prefix = f"scoring.rules[{index}]"
    if problem.location == prefix:
        return "name"
    if not problem.location.startswith(f"{prefix}."):
        return None
    local = f"rules[{index}]{problem.location.removeprefix(prefix)}"
    return problem_inputs(local, index, typed) or ""


def _missing(request: Request, user: AdminUser) -> HTMLResponse:
    return not_found(
        request,
        user,
        "Scoring rule not found",
        "There is no such scoring rule in the draft (any more): see the Scoring tab.",
    )


def _form(
    request: Request,
    user: AdminUser,
    view: DraftView,
    index: int | None,
    typed: RuleForm,
    points: str,
    *,
    errors: Errors | None = None,
    stale: str = "",
    revision: int | None = None,
    status: int = 200,
) -> HTMLResponse:
    config = view.config
    shown: Errors = {}
    general: list[Problem] = []
    for problem in view.under("scoring.rules", index) if index is not None else []:
        where = _input_of(problem, index or 0, typed)
        if where:
            shown.setdefault(where, problem.message)
        elif where is not None:
            general.append(problem)
    shown.update(errors or {})
    fields = [
        (group, [(v, label) for v, label in options if v not in SCORE_FIELDS])
        for group, options in field_choices()
    ]
    page = {
        "form": typed,
        "points": points,
        "errors": shown,
        "general": general,
        "refused": bool(errors),
        "index": index,
        "key": config.scoring.rules[index].name if index is not None else "",
        "revision": view.revision if revision is None else revision,
        "admin": at_least(user.role, Role.admin),
        "fields": fields,
        "ops": OP_CHOICES,
        "territories": [t.name for t in config.territories],
        "stale": stale,
        "active": "/admin/lifecycle",
        **view.bar(),
    }
    return render(request, user, "admin/scoring_rule_form.html", page, status=status)
