"""Territories (``/admin/territories``): named sets of countries, states and postal
prefixes that rules test with ``in_territory``, in the draft. Admins edit them; others
read. Countries are typed as ISO codes or names and stored as ISO codes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from domain.config import RoutingConfig
from web.admin import draft
from web.admin.deps import Admin, AdminUser, CsrfForm, Viewer
from web.admin.draft import DraftView, StaleDraft
from web.admin.pool_forms import read_territory, territory_of, territory_values
from web.admin.render import flash, not_found, nothing_deleted, render
from web.deps import AppContext, Context

router = APIRouter()
LIST = "/admin/territories"


@router.get("/territories", response_class=HTMLResponse)
def list_territories(request: Request, context: Context, user: Viewer) -> HTMLResponse:
    view = draft.load(context)
    counts = view.counts("territories")
    rows = [
        {
            "index": index,
            "territory": territory,
            "used_by": draft.users_of(view.config, "territory", territory.name),
            "problems": counts.get(index, 0),
        }
        for index, territory in enumerate(view.config.territories)
    ]
    # Territories sit under the "Pools & territories" item of the navigation.
    page = {"rows": rows, "tab": "territories", "active": "/admin/pools", **view.bar()}
    return render(request, user, "admin/territories.html", page)


@router.get("/territories/new", response_class=HTMLResponse)
def new_territory(request: Request, context: Context, user: Admin) -> HTMLResponse:
    return _form(request, user, draft.load(context), None, territory_values(None))


@router.get("/territories/{index}", response_class=HTMLResponse)
def edit_territory(request: Request, index: int, context: Context, user: Viewer) -> HTMLResponse:
    view = draft.load(context)
    if not 0 <= index < len(view.config.territories):
        return not_found(
            request,
            user,
            "Territory not found",
            "There is no such territory in the draft (any more).",
        )
    return _form(request, user, view, index, territory_values(view.config.territories[index]))


@router.post("/territories/new", response_model=None)
def create_territory(request: Request, context: Context, user: Admin, form: CsrfForm) -> Response:
    return _save(request, context, user, form, None)


@router.post("/territories/{index}", response_model=None)
def update_territory(
    request: Request, index: int, context: Context, user: Admin, form: CsrfForm
) -> Response:
    return _save(request, context, user, form, index)


@router.post("/territories/{index}/delete", response_model=None)
def delete_territory(
    request: Request, index: int, context: Context, user: Admin, form: CsrfForm
) -> Response:
    view = draft.load(context)
    found = draft.locate(view.config.territories, form.get("key"), index)
    if draft.revision_of(form) != view.revision or found is None:
        return nothing_deleted(request, LIST)
    name = view.config.territories[found].name
    used = draft.users_of(view.config, "territory", name)
    data = view.config.dump()
    del data["territories"][found]
    try:
        revision = draft.save(context, user, RoutingConfig.model_validate(data), view.revision)
    except StaleDraft:
        flash(request, "Somebody saved the draft at the same moment: nothing was deleted.", "error")
        return RedirectResponse(LIST, status_code=303)
    text = f"Deleted territory {name} from the draft (revision {revision})."
    if used:
        text += (
            f" It is still named by {', '.join(used)}: that shows as a problem until you change it."
        )
    flash(request, text, "error" if used else "ok")
    return RedirectResponse(LIST, status_code=303)


def _save(
    request: Request, context: AppContext, user: AdminUser, form: FormData, hint: int | None
) -> Response:
    view = draft.load(context)
    key = draft.posted_key(form, view.config.territories, hint)
    index = draft.locate(view.config.territories, key, hint)
    old = view.config.territories[index] if index is not None else None
    values = read_territory(form, territory_values(old))
    revision = draft.revision_of(form)
    if key and index is None:
        message = (
            "This territory was deleted from the draft since you opened the form; saving "
            "adds it again."
        )
        return _form(request, user, view, None, values, stale=message)
    territory, errors = territory_of(values)
    if territory is None or errors:
        return _form(
            request, user, view, index, values, errors=errors, revision=revision, status=422
        )
    item = territory.model_dump(mode="json", by_alias=True)
    config = draft.replaced(view.config, "territories", index, item, "territory")
    try:
        if revision != view.revision:
            raise StaleDraft(revision, view.revision, view.updated_by)
        saved = draft.save(context, user, config, view.revision)
    except StaleDraft:
        view = draft.load(context)
        return _form(request, user, view, index, values, stale=draft.stale_text(view), status=409)
    flash(request, f"Saved territory {territory.name} to the draft (revision {saved}).")
    return RedirectResponse(LIST, status_code=303)


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
    territory = view.config.territories[index] if index is not None else None
    page = {
        "values": values,
        "errors": errors or {},
        "index": index,
        "key": territory.name if territory else "",
        "revision": view.revision if revision is None else revision,
        "problems": view.under("territories", index) if index is not None else [],
        "used_by": draft.users_of(view.config, "territory", territory.name) if territory else [],
        "stale": stale,
        "active": "/admin/pools/territory",
        **view.bar(),
    }
    return render(request, user, "admin/territory_form.html", page, status=status)
