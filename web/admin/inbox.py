"""The offline notifier's inbox, behind the login: a user who is also a rep (same
email) sees the messages to them; team leads, admins and viewers who are not reps see
everyone's, and may pick one rep. A message to somebody who is not a rep (a pool's
manager) or to the wins channel shows its recipient: the person's name when they have
an account here, else their email; the channel's name.

A lead's card carries the buttons its Slack message has, for whoever may act on the lead
(``web.admin.inbox_actions``); an approval request links to the approvals page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from domain.lead import normalize_email
from domain.users import Role
from store import reps as rep_store
from store import users as user_store
from store.inbox import recent_notifications
from web.admin import inbox_actions, nav
from web.admin.deps import Viewer
from web.admin.render import render
from web.deps import Context

router = APIRouter()
router.include_router(inbox_actions.router)
nav.register("Leads", "Inbox", "/admin/inbox", Role.viewer, order=20)

# Rep ids are INTEGER keys: a larger number cannot name a rep (and SQLite cannot bind it).
RepId = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(
    request: Request, context: Context, user: Viewer, rep: RepId = None
) -> HTMLResponse:
    def load() -> dict[str, Any]:
        page = read()
        page["cards"] = inbox_actions.card_actions(context, user, page["notifications"])
        return page

    def read() -> dict[str, Any]:
        with context.db.read() as session:
            reps = rep_store.list_reps(session)
            mine = next(
                (r for r in reps if normalize_email(r.email) == normalize_email(user.email)),
                None,
            )
            # A rep who is a user sees their own messages only, unless an admin.
            own_only = mine is not None and user.role is not Role.admin
            selected = mine.id if own_only and mine is not None else rep
            return {
                "notifications": recent_notifications(session, rep_id=selected, limit=200),
                "reps": reps,
                "selected": selected,
                "own_only": own_only,
                "me": mine,
                "people": {
                    normalize_email(u.email): u.name for u in user_store.list_users(session)
                },
            }

    return render(request, user, "admin/inbox.html", await run_in_threadpool(load))
