"""Lifecycle & scoring (``/admin/lifecycle``): the parts of the configuration that drive
a lead's life after routing, in the draft. One page holds the nurture loop's timings and
the hand-off to account management; its *Scoring* tab (``/admin/lifecycle/scoring``)
the scoring rules (``web.admin.scoring_rules``), the grades and the engagement points.

Each section is a form of its own (``web.admin.lifecycle_forms``) that saves only its
part of the draft, with the draft revision it was rendered from (a save based on an
older revision is refused, keeping what was typed). Admins edit; everyone else reads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.users import Role, at_least
from web.admin import draft, nav, scoring_rules
from web.admin.config_forms import Errors, Values
from web.admin.deps import Admin, AdminUser, CsrfForm, Viewer
from web.admin.draft import DraftView, StaleDraft
from web.admin.lifecycle_forms import (
    NURTURE_DURATIONS,
    SECTIONS,
    Section,
    applied,
    page_errors,
    read_section,
    row_action,
)
from web.admin.render import flash, not_found, render
from web.deps import Context

router = APIRouter()
router.include_router(scoring_rules.router)
PATH = "/admin/lifecycle"
nav.register("Routing", "Lifecycle & scoring", PATH, Role.viewer, order=35)
PAGES = {"lifecycle": PATH, "scoring": f"{PATH}/scoring"}
TEMPLATES = {"lifecycle": "admin/lifecycle.html", "scoring": "admin/scoring.html"}


@router.get("/lifecycle", response_class=HTMLResponse)
def lifecycle_page(request: Request, context: Context, user: Viewer) -> HTMLResponse:
    return _page(request, user, draft.load(context), "lifecycle")


@router.get("/lifecycle/scoring", response_class=HTMLResponse)
def scoring_page(request: Request, context: Context, user: Viewer) -> HTMLResponse:
    return _page(request, user, draft.load(context), "scoring")


@router.post("/lifecycle/{name}", response_model=None)
def save_section(
    request: Request, name: str, context: Context, user: Admin, form: CsrfForm
) -> Response:
    """Save one section of the page (``nurture``, ``handoff``, ``grades``,
    ``engagement``), or apply one of its row actions."""
    section = SECTIONS.get(name)
    if section is None:
        return not_found(request, user, "No such section", "There is no such settings form.")
    view = draft.load(context)
    values = read_section(section, form, section.values(view.config))
    revision = draft.revision_of(form)
    action = str(form.get("action") or "save")
    if action != "save" and row_action(section, values, action):
        return _page(request, user, view, section.page, posted=(section, values, {}), at=revision)
    config, errors = applied(section, view.config, values)
    if config is None:
        posted = (section, values, errors)
        return _page(request, user, view, section.page, posted=posted, at=revision, status=422)
    back = f"{PAGES[section.page]}#{section.name}"
    try:
        if revision != view.revision:
            raise StaleDraft(revision, view.revision, view.updated_by)
        if config == view.config:
            flash(request, f"Nothing to save: the {section.title} are as in the draft.")
            return RedirectResponse(back, status_code=303)
        saved = draft.save(context, user, config, view.revision)
    except StaleDraft:
        view = draft.load(context)
        stale = draft.stale_text(view)
        posted = (section, values, {})
        return _page(request, user, view, section.page, posted=posted, stale=stale, status=409)
    flash(request, f"Saved the {section.title} to the draft (revision {saved}).")
    return RedirectResponse(back, status_code=303)


def _page(
    request: Request,
    user: AdminUser,
    view: DraftView,
    page: str,
    *,
    posted: tuple[Section, Values, Errors] | None = None,
    at: int | None = None,
    stale: str = "",
    status: int = 200,
) -> HTMLResponse:
    """The page ``page`` ("lifecycle" or "scoring") with every section's form as in the
    draft, but the one ``posted``: as typed, with its errors, the revision it was
    rendered from (``at``, or the draft's now after a stale save) and ``stale``."""
    sections = [s for s in SECTIONS.values() if s.page == page]
    found = page_errors(sections, view.problems, posted[0].name if posted else None)
    forms: dict[str, dict[str, Any]] = {
        s.name: {
            "values": s.values(view.config),
            "errors": found[s.name],
            "revision": view.revision,
            "stale": "",
            "refused": False,
        }
        for s in sections
    }
    if posted is not None:
        section, values, errors = posted
        forms[section.name] = {
            "values": values,
            "errors": errors,
            "revision": view.revision if at is None else at,
            "stale": stale,
            "refused": bool(errors),
        }
    config = view.config
    context: dict[str, Any] = {
        "forms": forms,
        "admin": at_least(user.role, Role.admin),
        "tab": page,
        "durations": NURTURE_DURATIONS,
        "pools": [p.name for p in config.pools],
        "max_score": config.scoring.max_score,
        "handoff_pool_index": next(
            (i for i, p in enumerate(config.pools) if p.name == config.handoff.pool), None
        ),
        "active": PATH,
        **view.bar(),
    }
    if page == "scoring":
        context["rules"] = scoring_rules.rule_rows(view)
    return render(request, user, TEMPLATES[page], context, status=status)
