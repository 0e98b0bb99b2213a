"""The approvals page: the pending requests the signed-in user may decide (an admin sees
every pending request, and decides those they are an approver of), each with Approve
and Reject (a comment is required to reject) -- CSRF-protected forms that send the same
``decide`` update as ``POST /api/v1/approvals/{id}/decision`` and the Slack buttons --
and the decided requests below, with who decided, when and why."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from bots.blocks.approvals import KIND_TITLES
from domain.approvals import ApprovalDecisionIn, ApprovalKind, Decision
from domain.lead import normalize_email
from domain.users import Role
from store import approvals as approval_store
from store import leads as lead_store
from store import reps as rep_store
from store import users as user_store
from store.approvals import PENDING
from store.models import Approval, Lead
from web.admin import nav
from web.admin.deps import AdminUser, CsrfForm, Viewer
from web.admin.leads import name_of
from web.admin.render import flash, render
from web.api_approvals import APPROVAL_ID, DecisionRefused, decide_approval
from web.deps import AppContext, Context

router = APIRouter()
PATH = "/admin/approvals"
nav.register("Leads", "Approvals", PATH, Role.viewer, order=17)

PENDING_LIMIT = 200
DECIDED_LIMIT = 50


@router.get("/approvals", response_class=HTMLResponse)
async def approvals_page(request: Request, context: Context, user: Viewer) -> HTMLResponse:
    return render(
        request, user, "admin/approvals.html", await run_in_threadpool(_load, context, user)
    )


def _load(context: AppContext, user: AdminUser) -> dict[str, Any]:
    me = normalize_email(user.email)
    admin = user.role is Role.admin
    with context.db.read() as session:
        pending, _ = approval_store.list_approvals(session, status=PENDING, limit=PENDING_LIMIT)
        decided, _ = approval_store.list_approvals(session, status="decided", limit=DECIDED_LIMIT)
        mine = [row for row in pending if admin or me in row.approvers]
        leads = lead_store.leads_by_id(session, [row.lead_id for row in [*mine, *decided]])
        return {
            "pending": [_row(row, leads.get(row.lead_id), me) for row in mine],
            "decided": [_row(row, leads.get(row.lead_id), me) for row in decided],
            "others_pending": len(pending) - len(mine),
            "is_admin": admin,
            "people": _people(session),
        }


def _people(session: Any) -> dict[str, str]:
    """Names by email: the reps', then the admin-app users' (who may be approvers)."""
    names = {normalize_email(r.email): r.name for r in rep_store.list_reps(session)}
    names.update({normalize_email(u.email): u.name for u in user_store.list_users(session)})
    return names


def _row(row: Approval, lead: Lead | None, me: str) -> dict[str, Any]:
    data = (lead.data or {}) if lead is not None else {}
    name = name_of(data)
    figures = row.figures
    kind = ApprovalKind(row.kind)
    if kind is ApprovalKind.discount:
        what = f"{figures.get('percent', '?')}% discount"
    elif kind is ApprovalKind.reassignment:
        what = f"to {figures['to']}" if figures.get("to") else "to whoever the rules choose"
    else:
        what = f"to {figures.get('claimant', '?')}"
    return {
        "id": row.id,
        "lead_id": row.lead_id,
        "lead": (lead.email if lead is not None else row.lead_id) if name == "—" else name,
        "company": data.get("company"),
        "kind": KIND_TITLES[kind],
        "what": what,
        "reason": row.reason,
        "requested_by": row.requested_by,
        "requested_at": row.requested_at,
        "status": row.status,
        "timed_out": row.timed_out,
        "level": row.level,
        "levels": row.levels,
        "approvers": row.approvers,
        "deadline": row.deadline,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at,
        "comment": row.comment,
        "can_decide": row.status == PENDING and me in row.approvers,
    }


@router.post("/approvals/{approval_id}/decide")
async def decide(
    request: Request, context: Context, user: Viewer, form: CsrfForm, approval_id: str
) -> RedirectResponse:
    """Approve or reject as the signed-in user; back to the page with what happened."""
    back = RedirectResponse(PATH, status_code=303)
    if not APPROVAL_ID.fullmatch(approval_id):
        flash(request, "Nothing was decided: there is no such approval.", "error")
        return back
    comment = str(form.get("comment") or "").strip() or None
    try:
        decision = ApprovalDecisionIn(
            decision=Decision(str(form.get("decision") or "")), by=user.email, comment=comment
        )
    except (ValidationError, ValueError) as err:
        why = (
            "a rejection needs a comment saying why"
            if "comment" in str(err)
            else "choose Approve or Reject"
        )
        flash(request, f"Nothing was decided: {why}.", "error")
        return back
    try:
        result = await decide_approval(context, approval_id, decision)
    except DecisionRefused as err:
        flash(request, f"Nothing was decided: {err.message}.", "error")
        return back
    verb = "approved" if decision.decision is Decision.approve else "rejected"
    if result.decided_by != decision.by or result.outcome.value != verb:
        flash(request, "This request was decided already.", "error")
    else:
        flash(request, f"You {verb} the request. The requester is told.")
    return back
