"""Shared objects of the web app and the FastAPI dependencies that hand them out."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer
from fastapi.templating import Jinja2Templates
from temporalio.client import Client

from connectors.base import CRM
from connectors.factory import make_crm
from domain.intake import FirstPosts
from domain.users import Role, at_least
from settings import Settings
from store import users as user_store
from store.db import Database
from store.kpi_rollup import Refresher
from store.models import utcnow
from web.metrics import Metrics


@dataclass
class AppContext:
    settings: Settings
    db: Database
    temporal: Client
    metrics: Metrics
    templates: Jinja2Templates
    api_token: str
    # Key of the lead ids (``domain.lead.lead_key``).
    lead_id_secret: bytes = b""
    # Leads whose first post went through without a counter write (``domain.intake``).
    first_posts: FirstPosts = field(default_factory=FirstPosts)
    # The KPI rollups' refresh, run after a report has answered (``store.kpi_rollup``).
    rollups: Refresher = field(default_factory=Refresher)
    _crm: CRM | None = None
    _crm_lock: threading.Lock = field(default_factory=threading.Lock)

    def crm(self) -> CRM:
        """The configured CRM (connected on first use), for reads such as a simulation's
        account lookup; blocking: call it from a worker thread."""
        with self._crm_lock:
            if self._crm is None:
                self._crm = make_crm(self.settings, self.db)
            return self._crm


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]


def _bearer(request: Request) -> str:
    """What follows ``Bearer `` in the Authorization header; 401 without one."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            status_code=401,
            detail="missing 'Authorization: Bearer <token>' header (LEADFLOW_API_TOKEN "
            "or a user's API token)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token


def _installation_token(token: str, context: AppContext) -> bool:
    expected = context.api_token.encode("utf-8")
    return bool(expected) and hmac.compare_digest(token.encode("latin-1"), expected)


def _invalid() -> HTTPException:
    return HTTPException(
        status_code=401, detail="invalid API token", headers={"WWW-Authenticate": "Bearer"}
    )


def require_token(request: Request, context: Context) -> None:
    """Bearer-token check of the installation token (``LEADFLOW_API_TOKEN``): what
    metrics and the API docs need in production.

    The token is exactly what follows ``Bearer `` -- nothing is stripped, so a token with
    extra spaces (or one that strips to nothing, like a no-break space) does not match --
    and it is compared as bytes in constant time: header values arrive decoded as
    latin-1, so encoding them back gives the bytes the client sent, and the configured
    token is what a client sends, UTF-8 encoded. An empty token never matches."""
    if not _installation_token(_bearer(request), context):
        raise _invalid()


@dataclass(frozen=True)
class Principal:
    """Who calls the JSON API: the installation token (role admin, recorded as "api")
    or a user's API token (its user's role, recorded under the user's email)."""

    role: Role
    actor: str
    user_id: int | None = None


INSTALLATION = Principal(Role.admin, "api")


def authorize(request: Request, context: Context) -> Principal:
    """The caller of the JSON API: the installation token (checked as ``require_token``
    does) or a user's live API token -- looked up by its SHA-256; a revoked token, or
    one of a deactivated user, is refused at once. 401 otherwise."""
    token = _bearer(request)
    if _installation_token(token, context):
        return INSTALLATION
    if not token.isascii():
        raise _invalid()
    now = utcnow()
    with context.db.read() as session:
        found = user_store.token_user(session, token)
        if found is None:
            raise _invalid()
        row, user = found
        principal = Principal(Role(user.role), user.email, user.id)
        last_used = row.last_used_at
        token_id = row.id
    # Recorded at most once a minute, so reading the API does not write per request.
    if last_used is None or now - last_used >= timedelta(minutes=1):
        with context.db.session() as session:
            user_store.mark_token_used(session, token_id, now)
    return principal


def require_api_role(role: Role) -> Callable[[Principal], Principal]:
    """A dependency answering the caller when its role is at least ``role``; 403
    naming the role otherwise."""

    def dependency(principal: Annotated[Principal, Depends(authorize)]) -> Principal:
        if not at_least(principal.role, role):
            raise HTTPException(
                status_code=403,
                detail=f"this needs the {role.value} role; the token's role is "
                f"{principal.role.value}",
            )
        return principal

    dependency.__name__ = f"require_api_{role.value}"
    return dependency


# Any valid token (installation or user); the routes that change something need more.
Authorized = Annotated[Principal, Depends(authorize)]
ApiViewer = Annotated[Principal, Depends(require_api_role(Role.viewer))]
ApiTeamLead = Annotated[Principal, Depends(require_api_role(Role.team_lead))]
ApiAdmin = Annotated[Principal, Depends(require_api_role(Role.admin))]

# Documents the bearer token of a route in the OpenAPI schema; the check itself is
# ``Authorized`` (this one never refuses: auto_error=False).
BearerDoc = Depends(
    HTTPBearer(auto_error=False, description="LEADFLOW_API_TOKEN or a user's API token")
)
