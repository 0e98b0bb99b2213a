"""Who is asking: the logged-in admin user (server-side session behind the
``leadflow_session`` cookie), role checks and the CSRF check of every admin form.

- ``Viewer`` / ``TeamLead`` / ``Admin``: the user, when logged in with at least that role.
  Not logged in: ``303`` to ``/admin/login?next=<path>``; a lesser role: the 403 page
  naming the role needed.
- ``CsrfForm``: the posted form, once its ``csrf_token`` matched the session's.
- ``OptionalUser``: the user or None, for pages that also serve visitors (the login page).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from domain.users import Role, at_least
from store import config as config_store
from store import users as user_store
from store.models import utcnow
from store.models_auth import User
from web.deps import AppContext, get_context

SESSION_COOKIE = "leadflow_session"
_UNSET = object()  # no login looked up for this request yet


@dataclass(frozen=True)
class AdminUser:
    id: int
    email: str
    name: str
    role: Role
    # Pools of the published configuration whose manager is this user: what a team lead
    # may edit.
    managed_pools: tuple[str, ...] = ()


class LoginRequired(Exception):
    """Not logged in (or the login ended): go to the login page, then back to ``next``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Forbidden(Exception):
    """Logged in, but the action needs ``needed`` (or the CSRF check failed: ``reason``)."""

    def __init__(self, needed: Role | None = None, reason: str = "") -> None:
        super().__init__(reason or f"needs role {needed}")
        self.needed = needed
        self.reason = reason


@dataclass(frozen=True)
class LoginState:
    user: AdminUser
    session_id: str
    csrf_secret: str


def csrf_token_for(csrf_secret: str) -> str:
    """The CSRF token of a session: an HMAC of a fixed label under the session's secret,
    so it is only known to pages served in that session."""
    return hmac.new(bytes.fromhex(csrf_secret), b"leadflow-admin-form", hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------- the login


_managed_cache: dict[tuple[int, int], dict[str, tuple[str, ...]]] = {}


def _managed_pools(session: Any, context: AppContext, email: str) -> tuple[str, ...]:
    """Pools of the published configuration that ``email`` manages (cached per version)."""
    latest = config_store.latest_version(session)
    if latest is None:
        return ()
    key = (id(context.db), latest)
    managers = _managed_cache.get(key)
    if managers is None:
        found = config_store.published(session)
        by_manager: dict[str, list[str]] = {}
        for pool in found[1].pools if found else []:
            if pool.manager:
                by_manager.setdefault(str(pool.manager).lower(), []).append(pool.name)
        managers = {m: tuple(names) for m, names in by_manager.items()}
        _managed_cache.clear()
        _managed_cache[key] = managers
    return managers.get(email.lower(), ())


def admin_user(session: Any, context: AppContext, user: User) -> AdminUser:
    return AdminUser(
        id=user.id,
        email=user.email,
        name=user.name,
        role=Role(user.role),
        managed_pools=_managed_pools(session, context, user.email),
    )


async def login_state(request: Request) -> LoginState | None:
    """The request's live login (cached on the request), or None. A visit is recorded at
    most once a minute (``store.users.session_needs_touch``)."""
    cached: object = getattr(request.state, "admin_login", _UNSET)
    if cached is None or isinstance(cached, LoginState):
        return cached
    context = get_context(request)
    token = request.cookies.get(SESSION_COOKIE)
    state = await run_in_threadpool(_load_login, context, token) if token else None
    request.state.admin_login = state
    return state


def _load_login(context: AppContext, token: str) -> LoginState | None:
    idle = context.settings.session_idle
    now = utcnow()
    with context.db.read() as session:
        found = user_store.find_session(session, token, idle, now)
        if found is None:
            return None
        seen = user_store.last_seen(session, found.session_id)
        state = LoginState(
            admin_user(session, context, found.user), found.session_id, found.csrf_secret
        )
    if seen is not None and user_store.session_needs_touch(seen, idle, now):
        with context.db.session() as session:
            user_store.touch_session(session, found.session_id, now)
    return state


def _next_path(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def require(role: Role) -> Callable[[Request], Coroutine[Any, Any, AdminUser]]:
    """A dependency answering the logged-in user with at least ``role``."""

    async def dependency(request: Request) -> AdminUser:
        state = await login_state(request)
        if state is None:
            raise LoginRequired(_next_path(request))
        if not at_least(state.user.role, role):
            raise Forbidden(role)
        return state.user

    dependency.__name__ = f"require_{role.value}"
    return dependency


async def optional_user(request: Request) -> AdminUser | None:
    state = await login_state(request)
    return state.user if state is not None else None


Viewer = Annotated[AdminUser, Depends(require(Role.viewer))]
TeamLead = Annotated[AdminUser, Depends(require(Role.team_lead))]
Admin = Annotated[AdminUser, Depends(require(Role.admin))]
OptionalUser = Annotated[AdminUser | None, Depends(optional_user)]


async def csrf_form(request: Request) -> FormData:
    """The posted form, once its ``csrf_token`` field matches the login's token;
    ``Forbidden`` (the 403 page) when it is missing or wrong."""
    state = await login_state(request)
    if state is None:
        raise LoginRequired(request.url.path)
    form = await request.form()
    sent = form.get("csrf_token")
    expected = csrf_token_for(state.csrf_secret)
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden(
            reason="This form has expired or did not come from this site (its security "
            "token is missing or wrong). Go back, reload the page and try again."
        )
    return form


CsrfForm = Annotated[FormData, Depends(csrf_form)]


def login_url(next_path: str) -> str:
    return f"/admin/login?next={quote(next_path, safe='/')}"
