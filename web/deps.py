"""Shared objects of the web app and the FastAPI dependencies that hand them out."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
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


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]


def require_token(request: Request, context: Context) -> None:
    """Bearer-token check for the JSON API."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            status_code=401,
            detail="missing 'Authorization: Bearer <LEADFLOW_API_TOKEN>' header",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(token.strip().encode(), context.api_token.encode()):
        raise HTTPException(
            status_code=401, detail="invalid API token", headers={"WWW-Authenticate": "Bearer"}
        )


Authorized = Annotated[None, Depends(require_token)]
