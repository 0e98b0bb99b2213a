"""The admin landing page (``/admin``, mounted by ``web.admin``): where each section
is, the configuration in force, and how many leads came in today and need attention."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from store import config as config_store
from store.dashboard import lead_counts
from web.admin import nav
from web.admin.deps import Viewer
from web.admin.render import render
from web.deps import Context

BLURBS = {
    "/admin/reps": "People who take leads, their hours and time off",
    "/admin/pools": "Routing groups, weights and caps",
    "/admin/territories": "Countries, states and postal areas",
    "/admin/rules": "Which lead goes to which pool",
    "/admin/publish": "Review the draft and publish it",
    "/admin/simulate": "Try a lead against the rules",
    "/admin/replay": "Past leads under the draft",
    "/admin/leads": "Every lead, its owner and timeline",
    "/admin/inbox": "Messages sent to reps",
    "/admin/users": "Who can sign in, and their roles",
    "/admin/tokens": "Your tokens for the JSON API",
    "/admin/audit": "Every change, who made it and when",
    "/admin/kpis": "Funnel, follow-up time, win rates and the leaderboard",
}


async def dashboard(request: Request, context: Context, user: Viewer) -> HTMLResponse:
    def load() -> dict[str, Any]:
        now = datetime.now(UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        with context.db.read() as session:
            latest = config_store.versions(session, limit=1)
            draft = config_store.get_draft(session)
            counts = lead_counts(session, midnight)
        return {
            "published": latest[0] if latest else None,
            "draft": draft,
            "counts": counts,
        }

    data = await run_in_threadpool(load)
    sections = nav.for_role(user.role)
    return render(
        request, user, "admin/dashboard.html", {**data, "sections": sections, "blurbs": BLURBS}
    )
