"""API tokens (every user, for themselves): create one (shown once), list them with
their prefix, creation and last use, and revoke one. A token acts in ``/api/v1`` with
its user's role; it is stored as its SHA-256 only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from domain.users import Role
from store import users as user_store
from web.admin import nav
from web.admin.deps import AdminUser, CsrfForm, Viewer
from web.admin.render import flash, render
from web.deps import AppContext, Context

router = APIRouter()
nav.register("Admin", "API tokens", "/admin/tokens", Role.viewer, order=20)

MAX_NAME = 100


def _tokens(context: AppContext, user_id: int) -> list[Any]:
    with context.db.read() as session:
        return user_store.list_tokens(session, user_id)


async def _page(
    request: Request,
    context: AppContext,
    user: AdminUser,
    *,
    created: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    tokens = await run_in_threadpool(_tokens, context, user.id)
    return render(
        request,
        user,
        "admin/tokens.html",
        {
            "tokens": tokens,
            "created": created,
            "errors": errors or {},
            "values": values or {},
            "base_url": context.settings.base_url,
        },
        status=status,
    )


@router.get("/tokens", response_class=HTMLResponse)
async def tokens_page(request: Request, context: Context, user: Viewer) -> HTMLResponse:
    return await _page(request, context, user)


@router.post("/tokens", response_class=HTMLResponse)
async def create_token(
    request: Request, context: Context, user: Viewer, form: CsrfForm
) -> HTMLResponse:
    """The new token is shown on this page's answer only (not after a redirect, so it
    never sits in a cookie or a URL)."""
    raw = form.get("name")
    name = raw.strip() if isinstance(raw, str) else ""
    if not name or len(name) > MAX_NAME:
        return await _page(
            request,
            context,
            user,
            errors={"name": f"Give the token a name of 1 to {MAX_NAME} characters."},
            values={"name": name},
            status=422,
        )

    def create() -> str:
        with context.db.session() as session:
            owner = user_store.get_user(session, user.id)
            assert owner is not None
            _row, token = user_store.create_token(session, owner, name, user.email)
            return token

    token = await run_in_threadpool(create)
    response = await _page(request, context, user, created=token)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, context: Context, user: Viewer, _form: CsrfForm, token_id: int
) -> Response:
    def revoke() -> bool:
        with context.db.session() as session:
            owner = user_store.get_user(session, user.id)
            return owner is not None and user_store.revoke_token(
                session, owner, token_id, user.email
            )

    if await run_in_threadpool(revoke):
        flash(request, "The token is revoked; it no longer works.")
    else:
        flash(request, "There is no such token of yours, or it was revoked already.", "error")
    return RedirectResponse("/admin/tokens", status_code=303)
