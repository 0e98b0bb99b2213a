"""The admin app under ``/admin``: server-rendered pages behind a login.

Each page module has its own ``router = APIRouter()`` and registers its navigation item
(``web.admin.nav.register``) at import; this package's ``router`` includes them all, and
``install`` adds the admin's error pages (login redirect, 403, 404) to the app."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from web.admin import (
    approvals,
    attention,
    audit,
    auth,
    dashboard,
    imports,
    inbox,
    kpis,
    leads,
    lifecycle_settings,
    pools,
    publish,
    replay,
    reps,
    rules,
    simulate,
    territories,
    tokens,
    users,
)
from web.admin.deps import Forbidden, LoginRequired, login_state, login_url
from web.admin.render import render

router = APIRouter(prefix="/admin", include_in_schema=False)
router.include_router(auth.router)
# The landing page is /admin itself: a route with an empty path of this router.
router.add_api_route("", dashboard.dashboard, methods=["GET"], response_class=HTMLResponse)
router.include_router(users.router)
router.include_router(tokens.router)
router.include_router(audit.router)
router.include_router(inbox.router)
router.include_router(leads.router)
router.include_router(imports.router)
router.include_router(attention.router)
router.include_router(approvals.router)
router.include_router(simulate.router)
router.include_router(replay.router)
router.include_router(publish.router)
router.include_router(reps.router)
router.include_router(pools.router)
router.include_router(territories.router)
router.include_router(rules.router)
router.include_router(lifecycle_settings.router)
router.include_router(kpis.router)


def install(app: FastAPI) -> None:
    """Mount the admin app's routes and its error pages on ``app``."""
    app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def _login(_request: Request, err: LoginRequired) -> Response:
        return RedirectResponse(login_url(err.next_path), status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, err: Forbidden) -> Response:
        return await error_page(request, 403, err)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/admin") and err.status_code in (403, 404):
            return await error_page(request, err.status_code, None)
        return await http_exception_handler(request, err)


async def error_page(request: Request, status: int, err: Forbidden | None) -> Response:
    """The admin's 403 (naming the role needed) or 404 page."""
    login = await login_state(request)
    user = login.user if login is not None else None
    if status == 404:
        heading, message, needed = (
            "Page not found",
            "There is nothing at this address. It may have moved, or the link is wrong.",
            None,
        )
    elif err is not None and err.needed is not None:
        heading = "You don't have access to this"
        message = f"This page or action needs the {err.needed.label} role."
        needed = err.needed
    else:
        heading = "Not allowed"
        message = err.reason if err is not None and err.reason else "You may not do this."
        needed = None
    return render(
        request,
        user,
        "admin/error.html",
        {"code": status, "heading": heading, "message": message, "needed": needed},
        status=status,
    )
