"""The needs-attention page: the leads with a step that failed for good, newest failure
first, each with what failed, and a Retry button (team leads and admins) that asks the
lead's lifecycle to run those steps again, as ``POST /api/v1/leads/{lead_id}/retry``
does. Above them, the CRM's notices that could not be brought in (``store.crm_failures``),
each with a Retry that runs the notice again. Viewers see the lists without the
buttons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from domain.crm import CRM_LABELS
from domain.users import Role, at_least
from store import attention as attention_store
from store import crm_failures
from store import leads as lead_store
from store.attention import NeedsAttention
from store.models import utcnow
from store.models_crm import CrmNoticeFailure
from web.admin import nav
from web.admin.deps import CsrfForm, TeamLead, Viewer
from web.admin.explain import age
from web.admin.leads import name_of
from web.admin.lifecycle import failed_steps, step_title
from web.admin.render import flash, render
from web.api_attention import RetryRefused, retry_lead
from web.api_crm_notices import retry_crm_notice
from web.deps import AppContext, Context
from web.leads import LEAD_ID

router = APIRouter()
PATH = "/admin/needs-attention"
nav.register("Leads", "Needs attention", PATH, Role.viewer, order=15)

PAGE_SIZE = 50
MAX_PAGE = 100_000
NOTICES_SHOWN = 20


@router.get("/needs-attention", response_class=HTMLResponse)
async def needs_attention_page(
    request: Request, context: Context, user: Viewer, page: str = "1"
) -> HTMLResponse:
    """The leads that need attention, 50 a page."""
    number = min(max(int(page), 1), MAX_PAGE) if page.isdigit() and len(page) < 10 else 1
    found = await run_in_threadpool(_list, context, number)
    pages = max(1, -(-found["total"] // PAGE_SIZE))
    return render(
        request,
        user,
        "admin/attention.html",
        {
            **found,
            "page": number,
            "pages": pages,
            "first": (number - 1) * PAGE_SIZE + 1,
            "previous_url": f"{PATH}?page={number - 1}" if number > 1 else None,
            "next_url": f"{PATH}?page={number + 1}" if number < pages else None,
            "can_retry": at_least(user.role, Role.team_lead),
        },
    )


def _list(context: AppContext, page: int) -> dict[str, Any]:
    now = utcnow()
    with context.db.read() as session:
        found, total = attention_store.needs_attention(session, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        rows = [_row(item, now) for item in found]
        notices, notices_total = crm_failures.open_failures(session, NOTICES_SHOWN)
    return {
        "rows": rows,
        "total": total,
        "notices": [_notice_row(n, now) for n in notices],
        "notices_total": notices_total,
    }


def _notice_row(row: CrmNoticeFailure, now: datetime) -> dict[str, Any]:
    notice = row.notice
    fields = ", ".join(
        f"{k} → {v if v is not None else '(empty)'}" for k, v in notice["fields"].items()
    )
    step = (
        "Reading what changed"
        if row.step == "read"
        else f"Sending change {row.step[5:]} to its lead"
    )
    return {
        "id": row.id,
        "crm": CRM_LABELS.get(row.crm, row.crm),
        "record": f"{notice['object']} {notice['object_id']}",
        "fields": fields or "no field named",
        "step": step,
        "error": row.error_type,
        "message": row.message,
        "at": row.failed_at,
        "ago": age(row.failed_at, now),
    }


def _row(item: NeedsAttention, now: datetime) -> dict[str, Any]:
    lead = item.lead
    data = lead.data or {}
    owner = lead.owner
    return {
        "id": lead.id,
        "name": name_of(data),
        "email": lead.email,
        "company": data.get("company"),
        "stage": lead.stage,
        "owner": owner.name if owner is not None else None,
        "owner_email": owner.email if owner is not None else None,
        "failed": failed_steps(item.attention, now),
        "failed_at": item.failed_at,
    }


@router.post("/needs-attention/{lead_id}/retry")
async def retry(
    request: Request, context: Context, user: TeamLead, form: CsrfForm, lead_id: str
) -> RedirectResponse:
    """Signal the lead's lifecycle to run its failed steps again; back to the page the
    button was on (the lead's page, or this list) with what happened."""
    if not LEAD_ID.match(lead_id):
        raise HTTPException(404)
    back = f"/admin/leads/{lead_id}" if form.get("back") == "lead" else PATH
    try:
        steps = await retry_lead(context, lead_id, user.email)
    except RetryRefused as err:
        flash(request, f"Nothing was retried: {err.message}.", "error")
        return RedirectResponse(back, status_code=303)
    what = ", ".join(f"“{step_title(s)}”" for s in steps) or "the failed steps"
    who = await run_in_threadpool(_name, context, lead_id)
    flash(
        request,
        f"Retry sent: the lifecycle of {who} runs {what} again. If a step fails again, "
        "the lead is back on this list with the new error.",
    )
    return RedirectResponse(back, status_code=303)


def _name(context: AppContext, lead_id: str) -> str:
    with context.db.read() as session:
        lead = lead_store.get_lead(session, lead_id)
        if lead is None:
            return lead_id
        name = name_of(lead.data or {})
        return lead.email if name == "—" else name


@router.post("/needs-attention/crm-notices/{failure_id}/retry")
async def retry_notice(
    request: Request, context: Context, user: TeamLead, _form: CsrfForm, failure_id: int
) -> RedirectResponse:
    """Run a failed CRM notice again from its first step (changes it already brought in
    are recognised by their event ids and not applied twice)."""
    try:
        notice, _ = await retry_crm_notice(context, failure_id, user.email)
    except RetryRefused as err:
        flash(request, f"Nothing was retried: {err.message}.", "error")
        return RedirectResponse(PATH, status_code=303)
    flash(
        request,
        f"Retry sent: the {notice.object} {notice.object_id} notice runs again. If it fails "
        "again, it is back on this list with the new error.",
    )
    return RedirectResponse(PATH, status_code=303)
