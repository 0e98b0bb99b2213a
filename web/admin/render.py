"""Rendering admin pages: ``render`` adds what every page's layout needs (the user, the
CSRF token, the navigation, the current path and the one-shot flash message), and
``flash`` leaves a message for the next page the user sees (after a redirect).

The flash message travels in a short-lived cookie (``leadflow_flash``) signed with the
installation's secret, written by ``FlashMiddleware`` on the response of the request
that set it and cleared by the page that shows it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.admin import nav
from web.admin.deps import AdminUser, csrf_token_for
from web.deps import get_context

FLASH_COOKIE = "leadflow_flash"
FlashKind = Literal["ok", "error"]


@dataclass(frozen=True)
class Flash:
    text: str
    kind: FlashKind = "ok"


def flash(request: Request, text: str, kind: FlashKind = "ok") -> None:
    """Show ``text`` once, on the next page rendered for this user (this request's page
    when it renders one, else the page a redirect leads to)."""
    request.state.flash_out = Flash(text, kind)


def render(
    request: Request,
    user: AdminUser | None,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> HTMLResponse:
    """The page ``template`` (under ``web/templates``) for ``user``; ``context`` adds to
    (and may override) ``user``, ``csrf_token``, ``nav``, ``active``, ``flash``,
    ``errors`` and ``values``."""
    app = get_context(request)
    login = getattr(request.state, "admin_login", None)
    shown = getattr(request.state, "flash_out", None) or _read_flash(request)
    request.state.flash_out = None
    request.state.flash_shown = shown is not None or FLASH_COOKIE in request.cookies
    page: dict[str, Any] = {
        "user": user,
        "csrf_token": csrf_token_for(login.csrf_secret) if login is not None else "",
        "nav": nav.for_role(user.role) if user is not None else [],
        "nav_active": nav.is_active,
        "active": request.url.path,
        "flash": shown,
        "errors": {},
        "values": {},
        "product": "Leadflow",
    }
    page.update(context or {})
    return app.templates.TemplateResponse(request, template, page, status_code=status)


def not_found(request: Request, user: AdminUser, heading: str, message: str) -> HTMLResponse:
    """The 404 page of something that is not (or no longer) in the draft."""
    page = {"code": 404, "heading": heading, "needed": None, "message": message}
    return render(request, user, "admin/error.html", page, status=404)


def nothing_deleted(request: Request, back_to: str) -> RedirectResponse:
    """Back to a list when a delete form came from an older draft than the stored one."""
    flash(
        request,
        "The draft changed since you opened the page: nothing was deleted. "
        "Check the list and try again.",
        "error",
    )
    return RedirectResponse(back_to, status_code=303)


def _signature(secret: bytes, payload: str) -> str:
    return hmac.new(secret, b"flash:" + payload.encode(), hashlib.sha256).hexdigest()[:32]


def _read_flash(request: Request) -> Flash | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or "." not in raw:
        return None
    payload, _, signature = raw.rpartition(".")
    secret = get_context(request).lead_id_secret
    if not hmac.compare_digest(signature, _signature(secret, payload)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()).decode())
        return Flash(str(data["text"])[:500], "error" if data.get("kind") == "error" else "ok")
    except (ValueError, KeyError, TypeError):
        return None


def flash_cookie_value(secret: bytes, message: Flash) -> str:
    payload = base64.urlsafe_b64encode(
        json.dumps({"text": message.text[:500], "kind": message.kind}).encode()
    ).decode()
    return f"{payload}.{_signature(secret, payload)}"


class FlashMiddleware:
    """Writes a flash message left for the next page into its cookie, and clears the
    cookie once a page showed it."""

    def __init__(self, app: ASGIApp, secret: bytes, secure: bool) -> None:
        self.app = app
        self.secret = secret
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/admin"):
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state", {})
                pending: Flash | None = state.get("flash_out")
                cookie = None
                if pending is not None:
                    cookie = self._cookie(flash_cookie_value(self.secret, pending), 60)
                elif state.get("flash_shown"):
                    cookie = self._cookie("", 0)
                if cookie is not None:
                    headers = list(message.get("headers", []))
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _cookie(self, value: str, max_age: int) -> str:
        secure = "; Secure" if self.secure else ""
        return (
            f"{FLASH_COOKIE}={value}; Max-Age={max_age}; Path=/admin; HttpOnly; "
            f"SameSite=Lax{secure}"
        )
