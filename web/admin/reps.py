"""Reps (``/admin/reps``): who takes leads, their availability and pool memberships, in
the draft. Admins edit everything; a team lead edits the availability of the reps in the
pools they manage and the weights and caps of those pools' members; viewers read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from domain.config import Member, RepConfig, RoutingConfig
from domain.crm import crm_label
from domain.rotation import SkipReason, available
from domain.users import Role, at_least
from store import crm_users
from store.routing import open_leads
from web.admin import draft, nav
from web.admin.config_forms import COMMON_ZONES, read_rep, rep_of, rep_values, row_action
from web.admin.deps import Admin, AdminUser, CsrfForm, Forbidden, TeamLead, Viewer
from web.admin.draft import DraftView, StaleDraft
from web.admin.render import flash, not_found, nothing_deleted, render
from web.admin.words import DAYS
from web.deps import AppContext, Context

router = APIRouter()
nav.register("Routing", "Reps", "/admin/reps", Role.viewer, order=10)

STATUS = {
    SkipReason.away: ("Away now", "warn"),
    SkipReason.outside_hours: ("Outside hours", "muted-badge"),
}


@router.get("/reps", response_class=HTMLResponse)
def list_reps(request: Request, context: Context, user: Viewer) -> HTMLResponse:
    view = draft.load(context)
    crm = context.settings.crm_backend.value
    with context.db.read() as session:
        loads = open_leads(session)
        links = {
            rep.email: crm_link(session, crm, rep.email, rep.crm_owner_id)
            for rep in view.config.reps
        }
    now = datetime.now(UTC)
    counts = view.counts("reps")
    rows = []
    for index, rep in enumerate(view.config.reps):
        reason = available(rep, now)
        rows.append(
            {
                "index": index,
                "rep": rep,
                "status": STATUS.get(reason) if reason else ("Available", "ok"),
                "pools": [
                    (pool.name, member)
                    for pool in view.config.pools
                    for member in pool.members
                    if member.rep == rep.email
                ],
                "open": loads.get(rep.email, 0),
                "crm": links[rep.email],
                "problems": counts.get(index, 0),
                "editable": draft.may_edit_rep(view.config, user, rep.email),
            }
        )
    return render(
        request, user, "admin/reps.html", {"rows": rows, "crm": crm_label(crm), **view.bar()}
    )


def crm_link(session: Session, crm: str, email: str, configured: str | None) -> dict[str, str]:
    """How a rep is linked to a user of the CRM in use, for the reps page."""
    if crm == "local":
        return {"id": configured or email, "name": "embedded CRM", "state": "ok"}
    found = crm_users.linked_user(session, crm, email, configured)
    if found is None:
        return {"id": "", "name": "", "state": "missing"}
    return {"id": found.owner_id, "name": found.name or found.email, "state": "ok"}


@router.get("/reps/new", response_class=HTMLResponse)
def new_rep(request: Request, context: Context, user: Admin) -> HTMLResponse:
    view = draft.load(context)
    return _form(request, user, view, None, rep_values(None, view.config.pools))


@router.get("/reps/{index}", response_class=HTMLResponse)
def edit_rep(request: Request, index: int, context: Context, user: Viewer) -> HTMLResponse:
    view = draft.load(context)
    if not 0 <= index < len(view.config.reps):
        return _missing(request, user)
    rep = view.config.reps[index]
    return _form(request, user, view, index, rep_values(rep, view.config.pools))


@router.post("/reps/new", response_model=None)
def create_rep(request: Request, context: Context, user: Admin, form: CsrfForm) -> Response:
    return _save(request, context, user, form, None)


@router.post("/reps/{index}", response_model=None)
def update_rep(
    request: Request, index: int, context: Context, user: TeamLead, form: CsrfForm
) -> Response:
    return _save(request, context, user, form, index)


@router.post("/reps/{index}/delete", response_model=None)
def delete_rep(
    request: Request, index: int, context: Context, user: Admin, form: CsrfForm
) -> Response:
    view = draft.load(context)
    key = form.get("key")
    found = draft.locate(view.config.reps, key, index, "email")
    if draft.revision_of(form) != view.revision or found is None:
        return nothing_deleted(request, "/admin/reps")
    data = view.config.dump()
    removed = data["reps"].pop(found)
    try:
        revision = draft.save(context, user, RoutingConfig.model_validate(data), view.revision)
    except StaleDraft:
        flash(request, "Somebody saved the draft at the same moment: nothing was deleted.", "error")
        return RedirectResponse("/admin/reps", status_code=303)
    flash(
        request,
        f"Deleted rep {removed['name']} from the draft (revision {revision}). "
        "Pools and rules that named them show a problem until you change them.",
    )
    return RedirectResponse("/admin/reps", status_code=303)


# ------------------------------------------------------------------------ helpers


def _save(
    request: Request, context: AppContext, user: AdminUser, form: FormData, hint: int | None
) -> Response:
    view = draft.load(context)
    key = draft.posted_key(form, view.config.reps, hint, "email")
    index = draft.locate(view.config.reps, key, hint, "email")
    if key and index is None:
        if not at_least(user.role, Role.admin):
            raise Forbidden(Role.admin)
        message = (
            "This rep was deleted from the draft since you opened the form; saving adds it again."
        )
        return _form(
            request,
            user,
            view,
            None,
            read_rep(form, rep_values(None, view.config.pools)),
            stale=message,
        )
    old = view.config.reps[index] if index is not None else None
    if old is not None and not draft.may_edit_rep(view.config, user, old.email):
        raise Forbidden(Role.admin)
    values = read_rep(form, rep_values(old, view.config.pools))
    action = str(form.get("action") or "save")
    if action != "save" and row_action(values, action):
        return _form(request, user, view, index, values, revision=draft.revision_of(form))
    rep, memberships, errors = rep_of(values)
    if rep is None or errors:
        return _form(
            request,
            user,
            view,
            index,
            values,
            errors=errors,
            revision=draft.revision_of(form),
            status=422,
        )
    config = _with_rep(view.config, index, rep, memberships)
    if not draft.team_lead_may(view.config, config, user):
        raise Forbidden(Role.admin)
    try:
        if draft.revision_of(form) != view.revision:
            raise StaleDraft(draft.revision_of(form), view.revision, view.updated_by)
        revision = draft.save(context, user, config, view.revision)
    except StaleDraft:
        view = draft.load(context)
        return _form(request, user, view, index, values, stale=draft.stale_text(view), status=409)
    flash(request, f"Saved {rep.name} to the draft (revision {revision}).")
    return RedirectResponse("/admin/reps", status_code=303)


def _with_rep(
    config: RoutingConfig, index: int | None, rep: RepConfig, memberships: dict[str, Member | None]
) -> RoutingConfig:
    data = config.dump()
    rep_data = rep.model_dump(mode="json", by_alias=True)
    if index is None:
        data["reps"].append(rep_data)
    else:
        old = data["reps"][index]["email"]
        data["reps"][index] = rep_data
        draft.renamed(data, "rep", old, rep.email)
    for pool in data["pools"]:
        if pool["name"] not in memberships:
            continue
        wanted = memberships[pool["name"]]
        at = next((i for i, m in enumerate(pool["members"]) if m["rep"] == rep.email), None)
        if wanted is None and at is not None:
            del pool["members"][at]
        elif wanted is not None:
            member = wanted.model_dump(mode="json")
            if at is None:
                pool["members"].append(member)
            else:
                pool["members"][at] = member
    return RoutingConfig.model_validate(data)


def _missing(request: Request, user: AdminUser) -> HTMLResponse:
    return not_found(
        request,
        user,
        "Rep not found",
        "There is no such rep in the draft (any more): see the list of reps.",
    )


def _form(
    request: Request,
    user: AdminUser,
    view: DraftView,
    index: int | None,
    values: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    stale: str = "",
    revision: int | None = None,
    status: int = 200,
) -> HTMLResponse:
    rep = view.config.reps[index] if index is not None else None
    admin = at_least(user.role, Role.admin)
    editable_pools = (
        {p.name for p in view.config.pools} if admin else draft.managed(view.config, user)
    )
    can_edit = admin or (rep is not None and draft.may_edit_rep(view.config, user, rep.email))
    context = {
        "values": values,
        "errors": errors or {},
        "index": index,
        "key": rep.email if rep else "",
        "revision": view.revision if revision is None else revision,
        "admin": admin,
        "can_edit": can_edit,
        "editable_pools": editable_pools if can_edit else set(),
        "zones": COMMON_ZONES,
        "days": DAYS,
        "problems": view.under("reps", index) if index is not None else [],
        "stale": stale,
        **view.bar(),
    }
    return render(request, user, "admin/rep_form.html", context, status=status)
