"""Shared objects of the web app and the FastAPI dependencies that hand them out."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer
from fastapi.templating import Jinja2Templates
from temporalio.client import Client

from settings import Settings
from store.db import Database
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


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]


def require_token(request: Request, context: Context) -> None:
    """Bearer-token check for the JSON API (and, in production, metrics and API docs).

    The token is exactly what follows ``Bearer `` -- nothing is stripped, so a token with
    extra spaces (or one that strips to nothing, like a no-break space) does not match --
    and it is compared as bytes in constant time: header values arrive decoded as
    latin-1, so encoding them back gives the bytes the client sent, and the configured
    token is what a client sends, UTF-8 encoded. An empty token never matches."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            status_code=401,
            detail="missing 'Authorization: Bearer <LEADFLOW_API_TOKEN>' header",
            headers={"WWW-Authenticate": "Bearer"},
        )
    expected = context.api_token.encode("utf-8")
    if not expected or not hmac.compare_digest(token.encode("latin-1"), expected):
        raise HTTPException(
            status_code=401, detail="invalid API token", headers={"WWW-Authenticate": "Bearer"}
        )


Authorized = Annotated[None, Depends(require_token)]

# Documents the bearer token of a route in the OpenAPI schema; the check itself is
# ``Authorized`` (this one never refuses: auto_error=False).
BearerDoc = Depends(HTTPBearer(auto_error=False, description="LEADFLOW_API_TOKEN"))
