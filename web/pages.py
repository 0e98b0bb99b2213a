"""Server-rendered public pages: the start page and the sample web form (the offline
inbox moved to ``/admin/inbox``, behind the login)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from web.deps import Context

router = APIRouter()


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


@router.get("/inbox", include_in_schema=False)
async def inbox() -> RedirectResponse:
    """The inbox moved behind the admin login."""
    return RedirectResponse("/admin/inbox", status_code=303)
