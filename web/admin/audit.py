"""The audit log (viewers and up): every change of the routing configuration (who,
when, action, version, and the YAML diff), of the accounts (users and API tokens) and
every step of the approval requests (asked, escalated, decided, timed out, withdrawn),
newest first, in one list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from bots.blocks.approvals import KIND_TITLES
from domain.approvals import ApprovalKind
from domain.users import Role
from store import approvals as approval_store
from store import config as config_store
from store import leads as lead_store
from store import users as user_store
from store.approvals import TrailEntry
from web.admin import nav
from web.admin.deps import Viewer
from web.admin.leads import name_of
from web.admin.render import render
from web.deps import Context

router = APIRouter()
nav.register("Admin", "Audit log", "/admin/audit", Role.viewer, order=30)

ACTION_TEXT = {
    "draft_saved": "saved the draft",
    "imported": "imported a configuration",
    "published": "published",
    "rolled_back": "rolled back",
    "user_created": "created user",
    "role_changed": "changed the role of",
    "password_reset": "set a new password for",
    "user_deactivated": "deactivated",
    "user_reactivated": "reactivated",
    "token_created": "created an API token for",
    "token_revoked": "revoked an API token of",
    "approval_requested": "asked for",
    "approval_escalated": "escalated",
    "approval_approved": "approved",
    "approval_rejected": "rejected",
    "approval_timed_out": "let time run out on",
    "approval_withdrawn": "withdrew",
}
# Who a step of an approval was taken by when no person took it.
NOBODY = {"timeout": "Leadflow (timeout)", "lifecycle": "Leadflow (the lead moved on)"}


@dataclass(frozen=True)
class DiffLine:
    kind: str  # add | del | hunk | file | same
    text: str


@dataclass(frozen=True)
class Entry:
    at: datetime
    actor: str
    kind: str  # config | account
    action: str
    text: str
    version: int | None
    subject: str
    detail: str
    diff: list[DiffLine]
    link: str | None = None


def diff_lines(diff: str) -> list[DiffLine]:
    """A unified diff's lines, each with the CSS class that colours it."""
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        out.append(DiffLine(kind, line))
    return out


def _entries(session: Any, kind: str, limit: int) -> list[Entry]:
    found: list[Entry] = []
    if kind in ("all", "config"):
        for c in config_store.audit_log(session, limit):
            found.append(
                Entry(
                    c.at,
                    c.actor,
                    "config",
                    c.action,
                    ACTION_TEXT.get(c.action, c.action),
                    c.version,
                    "",
                    "",
                    diff_lines(c.diff),
                )
            )
    if kind in ("all", "account"):
        for u in user_store.user_audit_log(session, limit):
            found.append(
                Entry(
                    u.at,
                    u.actor,
                    "account",
                    u.action,
                    ACTION_TEXT.get(u.action, u.action),
                    None,
                    u.subject,
                    u.detail,
                    [],
                )
            )
    if kind in ("all", "approval"):
        found.extend(_approval_entries(session, limit))
    found.sort(key=lambda e: e.at, reverse=True)
    return found[:limit]


def _approval_entries(session: Any, limit: int) -> list[Entry]:
    trail = approval_store.audit_trail(session, limit)
    leads = lead_store.leads_by_id(session, sorted({t.lead_id for t in trail}))
    entries = []
    for t in trail:
        lead = leads.get(t.lead_id)
        name = name_of(lead.data or {}) if lead is not None else "—"
        if name == "—":
            name = lead.email if lead is not None else t.lead_id
        action = f"approval_{t.action}"
        entries.append(
            Entry(
                t.at,
                NOBODY.get(t.by, t.by),
                "approval",
                action,
                ACTION_TEXT.get(action, t.action),
                None,
                f"{KIND_TITLES[ApprovalKind(t.kind)].lower()} for {name}",
                _approval_detail(t),
                [],
                link=f"/admin/leads/{t.lead_id}",
            )
        )
    return entries


def _approval_detail(t: TrailEntry) -> str:
    """The step's level, whom it waits for, and what was said: "level 1 of 2, waits for
    morgan.hale@example.com", "level 2 of 2: too deep a cut"."""
    level = f"{t.approval_id}, level {t.level} of {t.levels}"
    if t.action in ("requested", "escalated") and t.approvers:
        return f"{level}, waits for {', '.join(t.approvers)}"
    return f"{level}: {t.comment}" if t.comment else level


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    context: Context,
    user: Viewer,
    kind: Annotated[str, Query(pattern="^(all|config|account|approval)$")] = "all",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> HTMLResponse:
    def load() -> list[Entry]:
        with context.db.read() as session:
            return _entries(session, kind, limit)

    entries = await run_in_threadpool(load)
    return render(
        request,
        user,
        "admin/audit.html",
        {"entries": entries, "kind": kind, "limit": limit},
    )
