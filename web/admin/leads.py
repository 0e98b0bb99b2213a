"""The leads pages: the list (search, filters, 50 a page, newest or oldest first) and a
lead's page (its lifecycle, fields, timeline, routing explanation and score). Read only
(the lifecycle's Retry button posts to the needs-attention page); every value is shown
as text (the templates escape it)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from domain.config import LEAD_FIELDS
from domain.lead import Stage
from domain.lifecycle import Attention
from domain.users import Role, at_least
from store import attention as attention_store
from store import leads as lead_store
from store import reps as rep_store
from store.leads import LeadQuery
from store.models import Lead, utcnow
from web.admin import nav
from web.admin.deps import Viewer
from web.admin.explain import age, duration, event_view, label, routing_view, text
from web.admin.lifecycle import lifecycle_state, lifecycle_view
from web.admin.render import render
from web.deps import AppContext, Context
from web.leads import LEAD_ID

router = APIRouter()
nav.register("Leads", "Leads", "/admin/leads", Role.viewer, order=10)

PAGE_SIZE = 50
MAX_PAGE = 100_000
# The lead's fields in the order a person reads them (the rest follow, then ``extra``).
FIELDS = LEAD_FIELDS


def _whole(value: str, default: int, low: int, high: int) -> int:
    """A query parameter as a whole number within bounds (anything else: ``default``)."""
    return min(max(int(value), low), high) if value.strip().isdigit() else default


def name_of(data: dict[str, Any]) -> str:
    name = " ".join(str(data[k]) for k in ("first_name", "last_name") if data.get(k))
    return name or "—"


@router.get("/leads", response_class=HTMLResponse)
async def leads_list(
    request: Request,
    context: Context,
    user: Viewer,
    q: str = "",
    stage: str = "",
    owner: str = "",
    source: str = "",
    attention: str = "",
    sort: str = "newest",
    page: str = "1",
) -> HTMLResponse:
    """Leads matching the search and filters, a page at a time."""
    values = {
        "q": q[:200],
        "stage": stage if stage in Stage.__members__ else "",
        "owner": owner if owner == "none" or owner.isdigit() else "",
        "source": source[:200],
        "attention": "1" if attention else "",
        "sort": "oldest" if sort == "oldest" else "newest",
    }
    number = _whole(page, 1, 1, MAX_PAGE)
    owner_id = None
    if values["owner"]:
        owner_id = 0 if values["owner"] == "none" else _whole(values["owner"], 0, 0, 2**31 - 1)
    query = LeadQuery(
        text=values["q"],
        stage=values["stage"] or None,
        owner=owner_id,
        source=values["source"] or None,
        needs_attention=bool(values["attention"]),
        newest_first=values["sort"] == "newest",
    )
    found = await run_in_threadpool(_list, context, query, number)
    kept = {k: v for k, v in values.items() if v and not (k == "sort" and v == "newest")}

    def link(**changes: Any) -> str:
        return "/admin/leads?" + urlencode({**kept, **changes})

    pages = max(1, -(-found["total"] // PAGE_SIZE))
    return render(
        request,
        user,
        "admin/leads.html",
        {
            **found,
            "values": values,
            "page": number,
            "pages": pages,
            "first": (number - 1) * PAGE_SIZE + 1,
            "previous_url": link(page=number - 1) if number > 1 else None,
            "next_url": link(page=number + 1) if number < pages else None,
            "sort_url": link(sort="oldest" if values["sort"] == "newest" else "newest"),
            "stages": [s.value for s in Stage],
        },
    )


def _list(context: AppContext, query: LeadQuery, page: int) -> dict[str, Any]:
    now = utcnow()
    with context.db.read() as session:
        leads, total = lead_store.search_leads(
            session, query, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
        )
        rows = [_row(lead, now) for lead in leads]
        reps = [(str(r.id), r.name) for r in rep_store.list_reps(session)]
        sources = lead_store.lead_sources(session)
    return {"rows": rows, "total": total, "reps": reps, "sources": sources}


def _row(lead: Lead, now: datetime) -> dict[str, Any]:
    data = lead.data or {}
    return {
        "id": lead.id,
        "name": name_of(data),
        "email": lead.email,
        "company": text(data.get("company")),
        "stage": lead.stage,
        "owner": lead.owner.name if lead.owner is not None else None,
        "score": lead.score,
        "grade": lead.grade,
        "source": text(data.get("source")),
        "received": lead.received_at,
        "age": age(lead.received_at, now),
        "speed": duration(lead.speed_to_lead_ms),
        "needs_attention": lead.needs_attention,
    }


@router.get("/leads/{lead_id}", response_class=HTMLResponse)
async def lead_page(request: Request, context: Context, user: Viewer, lead_id: str) -> HTMLResponse:
    """One lead: its lifecycle (stage, timers, failed steps, from its workflow when it
    answers), fields, timeline, routing explanation and score."""
    if not LEAD_ID.match(lead_id):
        return render(request, user, "admin/lead.html", {"lead": None}, status=404)
    loaded, (live, state) = await asyncio.gather(
        run_in_threadpool(_lead, context, lead_id), lifecycle_state(context, lead_id)
    )
    if loaded is None:
        return render(request, user, "admin/lead.html", {"lead": None}, status=404)
    found, lead, stored = loaded
    found["lifecycle"] = lifecycle_view(lead, stored, live, state, utcnow())
    found["can_retry"] = at_least(user.role, Role.team_lead)
    return render(request, user, "admin/lead.html", found)


def _lead(context: AppContext, lead_id: str) -> tuple[dict[str, Any], Lead, list[Attention]] | None:
    """The page's values, the stored lead (its owner loaded) and its failed steps."""
    now = utcnow()
    with context.db.read() as session:
        lead = lead_store.get_lead(session, lead_id)
        if lead is None:
            return None
        events = lead_store.lead_events(session, lead_id, limit=1000)
        names = {r.email: r.name for r in rep_store.list_reps(session)}
        owner = lead.owner
        data = dict(lead.data or {})
        stored = attention_store.lead_attention(session, lead)
    extra = data.pop("extra", None) or {}
    known = [k for k in FIELDS if k in data] + sorted(k for k in data if k not in FIELDS)
    scored = next((e for e in reversed(events) if e.type == "scored"), None)
    parts = scored.data.get("parts") if scored is not None else None
    decision = (lead.routing or {}).get("decision")
    page = {
        "lead": {
            "id": lead.id,
            "name": name_of(data),
            "email": lead.email,
            "stage": lead.stage,
            "score": lead.score,
            "grade": lead.grade,
            "owner": f"{owner.name} <{owner.email}>" if owner is not None else None,
            "crm_id": lead.crm_id,
            "received": lead.received_at,
            "age": age(lead.received_at, now),
            "assigned": lead.assigned_at,
            "speed": duration(lead.speed_to_lead_ms),
            "submissions": lead.submissions,
            "needs_attention": lead.needs_attention,
        },
        "fields": [(label(k), text(data[k])) for k in known],
        "extra": [(k, text(v)) for k, v in sorted(extra.items())],
        "timeline": [event_view(e.type, e.stage, e.occurred_at, e.data, names) for e in events],
        "routing": routing_view(decision, names) if isinstance(decision, dict) else None,
        "score_parts": [_part(p) for p in parts or [] if isinstance(p, dict)],
    }
    return page, lead, stored


def _part(part: dict[str, Any]) -> dict[str, str]:
    points = part.get("points")
    shown = f"{points:+g}" if isinstance(points, int | float) else text(points)
    return {"rule": text(part.get("rule")), "category": text(part.get("category")), "points": shown}
