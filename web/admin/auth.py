"""Signing in and out of the admin app.

- ``GET /admin/login`` shows the form; ``POST /admin/login`` checks the password and
  starts a server-side session: the ``leadflow_session`` cookie (HttpOnly, SameSite=Lax,
  Secure in production) holds only a random token; the database keeps its SHA-256.
- The login form is protected by a double-submit token (a cookie and a hidden field),
  as there is no session yet; every other admin form by ``CsrfForm``.
- Failed logins are counted per account and per client address in fixed windows
  (``LEADFLOW_LOGIN_*``); past the limit the answer is ``429``, "too many attempts, try
  again in N minutes". A wrong password and an unknown email get the same answer after
  the same work (a dummy hash is verified).
- ``next`` is followed only to a path under ``/admin``.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from domain.lead import normalize_email
from domain.users import minutes_text
from store import users as user_store
from web.admin.deps import SESSION_COOKIE, CsrfForm, OptionalUser, login_state
from web.admin.render import flash, render
from web.deps import AppContext, Context

router = APIRouter()

LOGIN_CSRF_COOKIE = "leadflow_login_csrf"
WRONG = "Wrong email or password."


def safe_next(value: str | None) -> str:
    """``value`` when it is a path under /admin on this site, else ``/admin``."""
    if not value or "\\" in value or any(ord(c) < 32 for c in value):
        return "/admin"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return "/admin"
    if parts.path != "/admin" and not parts.path.startswith("/admin/"):
        return "/admin"
    if parts.path.startswith("/admin/login"):
        return "/admin"
    return value


def _cookie_flags(context: AppContext) -> dict[str, object]:
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": context.settings.is_production,
        "path": "/admin",
    }


def _login_page(
    request: Request,
    context: AppContext,
    next_path: str,
    *,
    email: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if len(token) < 32:
        token = secrets.token_urlsafe(32)
    response = render(
        request,
        None,
        "admin/login.html",
        {
            "csrf_token": token,
            "next": next_path,
            "values": {"email": email},
            "error": error,
        },
        status=status,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **_cookie_flags(context))  # type: ignore[arg-type]
    return response


@router.get("/login")
async def login_form(
    request: Request, context: Context, user: OptionalUser, next: str | None = None
) -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, context, safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    context: Context,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/admin",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    target = safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        return _login_page(
            request,
            context,
            target,
            email=email,
            error="This sign-in form expired. Please sign in again.",
            status=403,
        )
    address = normalize_email(email)
    client = request.client.host if request.client else "unknown"
    outcome = await run_in_threadpool(_attempt, context, address, password, client)
    if outcome.wait is not None:
        return _login_page(request, context, target, email=email, error=outcome.wait, status=429)
    if outcome.token is None:
        return _login_page(request, context, target, email=email, error=WRONG, status=401)
    response = RedirectResponse(target, status_code=303)
    max_age = int(context.settings.session_max_age.total_seconds())
    response.set_cookie(SESSION_COOKIE, outcome.token, max_age=max_age, **_cookie_flags(context))  # type: ignore[arg-type]
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin")
    return response


@dataclass(frozen=True)
class Outcome:
    token: str | None = None  # the new session's token (signed in)
    wait: str | None = None  # why the account or the address must wait


def _attempt(context: AppContext, email: str, password: str, client: str) -> Outcome:
    """A login attempt: signed in (``token``), refused for a wrong email or password
    (neither set), or refused without checking because of the failed-login limits
    (``wait``)."""
    settings = context.settings
    account_key, address_key = f"account:{email}", f"address:{client}"
    limits = [
        user_store.Limit(account_key, settings.login_max_failures_per_account),
        user_store.Limit(address_key, settings.login_max_failures_per_address),
    ]
    with context.db.read() as session:
        wait = user_store.login_wait(session, limits, settings.login_window)
    if wait is not None:
        return Outcome(wait=f"Too many attempts, try again in {minutes_text(wait)}.")
    with context.db.session() as session:
        user = user_store.authenticate(session, email, password)
        if user is None:
            user_store.record_failure(session, [account_key, address_key], settings.login_window)
            return Outcome()
        user_store.clear_failures(session, account_key)
        return Outcome(token=user_store.start_session(session, user, settings.session_max_age))


@router.post("/logout")
async def logout(request: Request, context: Context, _form: CsrfForm) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:

        def end() -> None:
            with context.db.session() as session:
                user_store.end_session(session, token)

        await run_in_threadpool(end)
    request.state.admin_login = None
    flash(request, "You are signed out.")
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, **_cookie_flags(context))  # type: ignore[arg-type]
    return response


__all__ = ["login_state", "router", "safe_next"]
