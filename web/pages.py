"""Server-rendered pages: the start page, the sample web form and the offline inbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from store import reps as rep_store
from store.inbox import recent_notifications
from web.deps import Context

router = APIRouter()

# Rep ids are INTEGER keys: a larger number cannot name a rep (and SQLite cannot bind it).
RepId = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index(request: Request, context: Context) -> HTMLResponse:
    return context.templates.TemplateResponse(request, "index.html", {"settings": context.settings})


@router.get("/form", response_class=HTMLResponse)
async def sample_form(request: Request, context: Context) -> HTMLResponse:
    """A sample web form that posts to /leads, as a marketing site's form would."""
    return context.templates.TemplateResponse(request, "form.html", {})


@router.get("/form/thanks", response_class=HTMLResponse, include_in_schema=False)
async def thanks(request: Request, context: Context, lead_id: str | None = None) -> HTMLResponse:
    return context.templates.TemplateResponse(request, "thanks.html", {"lead_id": lead_id})


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(request: Request, context: Context, rep: RepId = None) -> HTMLResponse:
    """The offline notifier's messages to reps, newest first. It shows lead details and has
    no login yet, so it is only served in development."""
    if context.settings.environment == "production":
        raise HTTPException(
            status_code=403,
            detail="the inbox is only available with LEADFLOW_ENVIRONMENT=development "
            "until admin login exists",
        )

    def load() -> dict[str, object]:
        with context.db.read() as session:
            return {
                "notifications": recent_notifications(session, rep_id=rep, limit=200),
                "reps": rep_store.list_reps(session),
                "selected": rep,
            }

    return context.templates.TemplateResponse(request, "inbox.html", await run_in_threadpool(load))
