"""The replay page: the last N routed leads replayed under the draft (the same code as
``POST /api/v1/replay``: ``web.api_routing.replay_draft``), as a table of the owners that
would change, per-rep totals before and after, and a bar chart of the two distributions
drawn on the server as SVG (no script, no inline styles: the CSP forbids both)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from domain.config import ConfigError
from domain.routing_review import Outcome, RepTotal
from domain.users import Role
from store import leads as lead_store
from web.admin import nav
from web.admin.deps import Viewer
from web.admin.leads import name_of
from web.admin.render import render
from web.api_models import Replayed
from web.api_routing import replay_draft
from web.deps import AppContext, Context

router = APIRouter()
nav.register("Routing", "Replay", "/admin/replay", Role.viewer, order=60)

DEFAULT_LIMIT, MAX_LIMIT = 100, 10_000
SHOWN_CHANGES = 500  # rows of the changed-owner table (the totals count every lead)
# The chart's geometry, in SVG user units.
LABEL_W, BAR_MAX, BAR_H, GAP, ROW_GAP = 130, 270, 14, 3, 14


@dataclass
class Bar:
    label: str
    before: int
    after: int
    y: int
    before_w: int
    after_w: int


def who(outcome: Outcome) -> str:
    if outcome.rep is not None:
        return outcome.rep.name
    return f"queue {outcome.queue}" if outcome.queue else "nobody"


def _short(name: str, most: int = 18) -> str:
    return name if len(name) <= most else name[: most - 1] + "…"


def chart(totals: list[RepTotal]) -> dict[str, Any]:
    """The bars of the chart: per rep (or nobody) its leads before and after, scaled to
    the largest count."""
    top = max([1, *(max(t.before, t.after) for t in totals)])
    bars = []
    for index, total in enumerate(totals):
        y = index * (2 * BAR_H + GAP + ROW_GAP)
        bars.append(
            Bar(
                label=_short(total.rep.name if total.rep is not None else "nobody (queued)"),
                before=total.before,
                after=total.after,
                y=y,
                before_w=round(BAR_MAX * total.before / top),
                after_w=round(BAR_MAX * total.after / top),
            )
        )
    height = max(1, len(bars)) * (2 * BAR_H + GAP + ROW_GAP)
    return {
        "bars": bars,
        "width": LABEL_W + BAR_MAX + 40,
        "height": height,
        "label_w": LABEL_W,
        "bar_h": BAR_H,
        "gap": GAP,
    }


@router.get("/replay", response_class=HTMLResponse)
async def replay_page(
    request: Request, context: Context, user: Viewer, limit: str = ""
) -> HTMLResponse:
    """The form, and the replay of the last ``limit`` leads (default 100)."""
    values = {"limit": limit or str(DEFAULT_LIMIT)}
    text = values["limit"].strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        errors = {"limit": f"give a whole number from 1 to {MAX_LIMIT:,}"}
        page = {"values": values, "errors": errors, "max_limit": MAX_LIMIT}
        return render(request, user, "admin/replay.html", page, status=422)
    try:
        done: Replayed = await run_in_threadpool(replay_draft, context, int(text))
    except ConfigError as err:
        page = {"values": values, "draft_problems": err.problems, "max_limit": MAX_LIMIT}
        return render(request, user, "admin/replay.html", page, status=422)
    changed = [lead for lead in done.leads if lead.changed]
    names = await run_in_threadpool(_names, context, [c.lead_id for c in changed[:SHOWN_CHANGES]])
    rows = [
        {
            "lead_id": lead.lead_id,
            "name": names.get(lead.lead_id, lead.lead_id),
            "at": lead.at,
            "was": who(lead.actual),
            "will": who(lead.draft),
            "rule_was": lead.actual.rule,
            "rule_now": lead.draft.rule,
            "version": lead.actual.config_version,
        }
        for lead in changed[:SHOWN_CHANGES]
    ]
    totals = [
        {
            "rep": t.rep.name if t.rep is not None else "nobody (queued)",
            "email": t.rep.email if t.rep is not None else "",
            "before": t.before,
            "after": t.after,
            "change": t.after - t.before,
        }
        for t in done.totals
    ]
    page = {
        "values": values,
        "max_limit": MAX_LIMIT,
        "replayed": done,
        "rows": rows,
        "shown": len(rows),
        "totals": totals,
        "chart": chart(done.totals),
    }
    return render(request, user, "admin/replay.html", page)


def _names(context: AppContext, lead_ids: list[str]) -> dict[str, str]:
    """Each lead's name (its email when it gave none)."""
    with context.db.read() as session:
        found = lead_store.leads_by_id(session, lead_ids)
    names = {lead_id: name_of(lead.data or {}) for lead_id, lead in found.items()}
    return {k: v if v != "—" else found[k].email for k, v in names.items()}
