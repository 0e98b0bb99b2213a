"""Pools (``/admin/pools``): routing groups of reps with a strategy, weights and caps,
a fallback, a manager, a speed-to-lead SLA and holidays, in the draft. Admins edit them;
the manager of a pool (a team lead) edits its members' weights and caps; viewers read.
The hand-off to account management may name a pool: renaming it follows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from domain.config import PoolConfig, RoutingConfig
from domain.durations import format_duration
from domain.users import Role, at_least
from web.admin import draft, nav
from web.admin.config_forms import COMMON_ZONES
from web.admin.deps import Admin, AdminUser, CsrfForm, Forbidden, TeamLead, Viewer
from web.admin.draft import DraftView, StaleDraft
from web.admin.pool_forms import pool_of, pool_row_action, pool_values, read_pool
from web.admin.render import flash, not_found, nothing_deleted, render
from web.admin.words import STRATEGIES
from web.deps import AppContext, Context

router = APIRouter()
nav.register("Routing", "Pools & territories", "/admin/pools", Role.viewer, order=20)


@router.get("/pools", response_class=HTMLResponse)
def list_pools(request: Request, context: Context, user: Viewer) -> HTMLResponse:
    view = draft.load(context)
    reps = {r.email: r for r in view.config.reps}
    counts = view.counts("pools")
    rows = [
        {
            "index": index,
            "pool": pool,
            "members": [(reps[m.rep].name if m.rep in reps else m.rep, m) for m in pool.members],
            "manager": reps[pool.manager].name if pool.manager in reps else pool.manager,
            "fallback_rep": (
                reps[pool.fallback.rep].name
                if pool.fallback and pool.fallback.rep in reps
                else pool.fallback.rep
                if pool.fallback
                else None
            ),
            "used_by": _users_of(view.config, pool.name),
            "problems": counts.get(index, 0),
            "sla": _sla_words(pool),
        }
        for index, pool in enumerate(view.config.pools)
    ]
    page = {"rows": rows, "strategies": STRATEGIES, "tab": "pools", **view.bar()}
    return render(request, user, "admin/pools.html", page)


@router.get("/pools/new", response_class=HTMLResponse)
def new_pool(request: Request, context: Context, user: Admin) -> HTMLResponse:
    view = draft.load(context)
    return _form(request, user, view, None, pool_values(None))


@router.get("/pools/{index}", response_class=HTMLResponse)
def edit_pool(request: Request, index: int, context: Context, user: Viewer) -> HTMLResponse:
    view = draft.load(context)
    if not 0 <= index < len(view.config.pools):
        return not_found(
            request,
            user,
            "Pool not found",
            "There is no such pool in the draft (any more): see the list of pools.",
        )
    return _form(request, user, view, index, pool_values(view.config.pools[index]))


@router.post("/pools/new", response_model=None)
def create_pool(request: Request, context: Context, user: Admin, form: CsrfForm) -> Response:
    return _save(request, context, user, form, None)


@router.post("/pools/{index}", response_model=None)
def update_pool(
    request: Request, index: int, context: Context, user: TeamLead, form: CsrfForm
) -> Response:
    return _save(request, context, user, form, index)


@router.post("/pools/{index}/delete", response_model=None)
def delete_pool(
    request: Request, index: int, context: Context, user: Admin, form: CsrfForm
) -> Response:
    view = draft.load(context)
    found = draft.locate(view.config.pools, form.get("key"), index)
    if draft.revision_of(form) != view.revision or found is None:
        return nothing_deleted(request, "/admin/pools")
    name = view.config.pools[found].name
    used = _users_of(view.config, name)
    data = view.config.dump()
    del data["pools"][found]
    try:
        revision = draft.save(context, user, RoutingConfig.model_validate(data), view.revision)
    except StaleDraft:
        flash(request, "Somebody saved the draft at the same moment: nothing was deleted.", "error")
        return RedirectResponse("/admin/pools", status_code=303)
    text = f"Deleted pool {name} from the draft (revision {revision})."
    if used:
        text += (
            f" It is still named by {', '.join(used)}: that shows as a problem until you change it."
        )
    flash(request, text, "error" if used else "ok")
    return RedirectResponse("/admin/pools", status_code=303)


def _save(
    request: Request, context: AppContext, user: AdminUser, form: FormData, hint: int | None
) -> Response:
    view = draft.load(context)
    key = draft.posted_key(form, view.config.pools, hint)
    index = draft.locate(view.config.pools, key, hint)
    admin = at_least(user.role, Role.admin)
    if (key and index is None and not admin) or (not admin and key not in user.managed_pools):
        raise Forbidden(Role.admin)
    old = view.config.pools[index] if index is not None else None
    values = read_pool(form, pool_values(old))
    revision = draft.revision_of(form)
    if key and index is None:
        message = (
            "This pool was deleted from the draft since you opened the form; saving adds it again."
        )
        return _form(request, user, view, None, values, stale=message)
    action = str(form.get("action") or "save")
    if action != "save" and pool_row_action(values, action):
        return _form(request, user, view, index, values, revision=revision)
    pool, errors = pool_of(values)
    if pool is None or errors:
        return _form(
            request, user, view, index, values, errors=errors, revision=revision, status=422
        )
    item = pool.model_dump(mode="json", by_alias=True)
    config = _handoff_follows(
        view.config, draft.replaced(view.config, "pools", index, item, "pool")
    )
    if not draft.team_lead_may(view.config, config, user):
        raise Forbidden(Role.admin)
    try:
        if revision != view.revision:
            raise StaleDraft(revision, view.revision, view.updated_by)
        saved = draft.save(context, user, config, view.revision)
    except StaleDraft:
        view = draft.load(context)
        return _form(request, user, view, index, values, stale=draft.stale_text(view), status=409)
    flash(request, f"Saved pool {pool.name} to the draft (revision {saved}).")
    return RedirectResponse("/admin/pools", status_code=303)


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
    admin = at_least(user.role, Role.admin)
    pool = view.config.pools[index] if index is not None else None
    lead = pool is not None and pool.name in draft.managed(view.config, user)
    page = {
        "values": values,
        "errors": errors or {},
        "index": index,
        "key": pool.name if pool else "",
        "revision": view.revision if revision is None else revision,
        "admin": admin,
        "can_edit": admin or lead,
        "reps": [(r.email, f"{r.name} ({r.email})") for r in view.config.reps],
        "rep_names": {r.email: r.name for r in view.config.reps},
        "strategies": list(STRATEGIES.items()),
        "zones": COMMON_ZONES,
        "problems": view.under("pools", index) if index is not None else [],
        "used_by": _users_of(view.config, pool.name) if pool else [],
        "stale": stale,
        **view.bar(),
    }
    return render(request, user, "admin/pool_form.html", page, status=status)


def _users_of(config: RoutingConfig, name: str) -> list[str]:
    """What names pool ``name``: rules, the fallback and the hand-off."""
    used = draft.users_of(config, "pool", name)
    return [*used, "the hand-off"] if config.handoff.pool == name else used


def _handoff_follows(old: RoutingConfig, new: RoutingConfig) -> RoutingConfig:
    """``new`` with its hand-off pool renamed as the pool it named was (same position,
    new name), so that saving a pool under a new name keeps the hand-off."""
    pool = old.handoff.pool
    if pool is None or any(p.name == pool for p in new.pools):
        return new
    before = [p.name for p in old.pools]
    after = [p.name for p in new.pools]
    if pool not in before or len(before) != len(after):
        return new
    renamed = after[before.index(pool)]
    handoff = new.handoff.model_copy(update={"pool": renamed})
    return new.model_copy(update={"handoff": handoff})


def _sla_words(pool: PoolConfig) -> tuple[list[str], str]:
    """A pool's SLA in the list: its three steps, and how they are counted."""
    sla = pool.sla
    steps = [
        f"remind {format_duration(sla.remind_after)}",
        f"reassign {format_duration(sla.reassign_after)}",
        f"escalate {format_duration(sla.escalate_after)}",
    ]
    times = {0: "no reassignment", 1: "1 reassignment"}.get(
        sla.max_reassignments, f"{sla.max_reassignments} reassignments"
    )
    days = len(pool.holidays)
    if sla.business_hours:
        counted = "working hours" + (
            f" less {days} holiday{'s' if days != 1 else ''}" if days else ""
        )
    else:
        counted = "round the clock"
    return (
        steps,
        f"at most {times} · {counted}" if sla.max_reassignments else f"{times} · {counted}",
    )
