"""Lead intake (``POST /leads``).

The intake validates into ``LeadSubmission`` (``web/submission.py``), applies the
per-address flood limit, and hands the lead to its workflow with signal-with-start
(``activities.lead_start``, shared with the bulk import); it answers 202 only after
Temporal has recorded the start (or the signal), so an accepted lead is durable. Nothing
here decides what happens to the lead.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError

from activities.lead_start import START_TIMEOUT, LifecycleLimits, hand_to_lifecycle
from domain.intake import Admission, FloodPolicy
from domain.lead import (
    LeadSubmission,
    lead_key,
    workflow_id_for,
)
from domain.lifecycle import Origin, SubmissionReceived
from domain.users import Role, at_least
from store import intake as intake_store
from store import reps as rep_store
from web.deps import AppContext, Context, authorize
from web.intake_openapi import LEAD_RESPONSES, lead_request_body
from web.submission import IntakeError, parse_body, read_body, validate_fields

log = logging.getLogger("leadflow.intake")
router = APIRouter()

# The rep who entered an outbound lead; not a field of the lead itself.
OWNER_FIELD = "owner_email"


def _reject(context: Context, err: IntakeError) -> JSONResponse:
    context.metrics.rejected.labels(reason=err.reason).inc()
    return JSONResponse({"detail": err.errors}, status_code=err.status)


@router.post(
    "/leads",
    status_code=202,
    openapi_extra={"requestBody": lead_request_body()},
    responses=LEAD_RESPONSES,
)
async def submit_lead(request: Request, context: Context) -> Response:
    """Accept a web-form lead (JSON or URL-encoded form)."""
    received_at = datetime.now(UTC)
    try:
        body = await read_body(request, context.settings.max_body_bytes)
        data, from_form = parse_body(request.headers.get("content-type", ""), body)
        owner_email = await _outbound_owner(request, context, data)
        submission, redirect, bot = validate_fields(
            data, request.headers.get("host"), request.query_params.get("redirect")
        )
    except IntakeError as err:
        return _reject(context, err)
    origin = Origin.outbound if owner_email is not None else Origin.inbound

    lead_id = lead_key(submission.email, context.lead_id_secret)
    if bot:
        # The honeypot was filled: the bot gets the answer a person would (same id for the
        # same address); nothing is started.
        context.metrics.rejected.labels(reason="honeypot").inc()
        log.info("honeypot filled; submission dropped")
        return _accepted(request, lead_id, redirect, from_form)

    admission = await _admit(context, lead_id, received_at)
    if admission is not None and not admission.allowed:
        context.metrics.rejected.labels(reason="flood").inc()
        return JSONResponse(
            {
                "detail": [
                    {
                        "field": "email",
                        "message": "too many submissions for this address; "
                        f"retry in {admission.retry_after_s} s",
                    }
                ]
            },
            status_code=429,
            headers={"Retry-After": str(admission.retry_after_s)},
        )
    detailed = admission is None or admission.detailed
    workflow_id = workflow_id_for(lead_id)
    settings = context.settings
    try:
        await hand_to_lifecycle(
            context.temporal,
            LifecycleLimits.from_settings(settings).input_for(lead_id, origin),
            SubmissionReceived(
                # Past the detail cap only the identity travels: the post is counted.
                submission=submission if detailed else LeadSubmission(email=submission.email),
                received_at=received_at,
                submission_id=uuid.uuid4().hex,
                detailed=detailed,
                origin=origin,
                owner_email=owner_email,
            ),
            task_queue=settings.temporal_task_queue,
            rpc_timeout=START_TIMEOUT,
        )
    except (RPCError, RuntimeError) as err:
        # RPCError once connected; RuntimeError when the (re)connect itself fails.
        context.metrics.rejected.labels(reason="temporal_unavailable").inc()
        log.error(
            "could not hand lead %s to Temporal: %s",
            lead_id,
            type(err).__name__,
            extra={"lead_id": lead_id, "workflow_id": workflow_id},
        )
        return JSONResponse(
            {
                "detail": [
                    {
                        "field": "body",
                        "message": "the lead was not accepted: the workflow service is "
                        "unavailable; please retry",
                    }
                ]
            },
            status_code=503,
            headers={"Retry-After": "5"},
        )
    context.metrics.accepted.inc()
    log.info("lead accepted", extra={"lead_id": lead_id, "workflow_id": workflow_id})
    return _accepted(request, lead_id, redirect, from_form)


async def _outbound_owner(
    request: Request, context: AppContext, data: dict[str, object]
) -> str | None:
    """The rep who entered an outbound lead (``"source": "outbound"`` with
    ``owner_email``), or None for a web-form lead. Only a caller with the API token (or a
    team lead's token) may enter one; the rep must be active."""
    owner = data.pop(OWNER_FIELD, None)
    outbound = str(data.get("source") or "").strip().lower() == "outbound"
    if owner is None and not outbound:
        return None
    try:
        principal = authorize(request, context)
    except HTTPException as err:
        raise IntakeError(
            401, "unauthorized", [{"field": "owner_email", "message": f"{err.detail}"}]
        ) from None
    if not at_least(principal.role, Role.team_lead):
        raise IntakeError(
            403,
            "forbidden",
            [
                {
                    "field": "owner_email",
                    "message": "entering outbound leads needs the team_lead role",
                }
            ],
        )
    if not isinstance(owner, str) or not owner.strip():
        raise IntakeError(
            422,
            "invalid",
            [
                {
                    "field": "owner_email",
                    "message": "an outbound lead names the rep who found it (owner_email)",
                }
            ],
        )
    if not outbound:
        raise IntakeError(
            422,
            "invalid",
            [
                {
                    "field": "source",
                    "message": 'owner_email is for outbound leads: send "source": "outbound"',
                }
            ],
        )

    def active() -> bool:
        with context.db.read() as session:
            return rep_store.active_rep_by_email(session, owner) is not None

    if not await run_in_threadpool(active):
        raise IntakeError(
            422,
            "invalid",
            [{"field": "owner_email", "message": f"no active rep has the email {owner!r}"}],
        )
    return owner.strip().lower()


async def _admit(context: AppContext, lead_id: str, now: datetime) -> Admission | None:
    """The flood limit's decision on this post, taken in the database before anything
    reaches the workflow; None when there is nothing to claim (a lead's first post
    through this process: see ``FirstPosts``) or the database cannot say (the post is let
    through in detail: the workflow caps details itself and its history stays bounded)."""
    if context.first_posts.first(lead_id):
        return None
    settings = context.settings
    policy = FloodPolicy(
        window_s=settings.intake_flood_window_s,
        max_posts=settings.intake_flood_max_posts,
        detail_cap=settings.resubmission_detail_cap,
    )

    def claim() -> Admission:
        with context.db.session() as session:
            return intake_store.admit_post(session, lead_id, policy, now)

    try:
        return await run_in_threadpool(claim)
    except SQLAlchemyError as err:
        log.warning(
            "flood limit not applied, the database failed: %s",
            type(err).__name__,
            extra={"lead_id": lead_id},
        )
        return None


def _accepted(request: Request, lead_id: str, redirect: str | None, from_form: bool) -> Response:
    status_url = str(request.url_for("lead_status", lead_id=lead_id))
    if redirect and from_form:
        return RedirectResponse(_with_lead_id(redirect, lead_id), status_code=303)
    return JSONResponse({"lead_id": lead_id, "status_url": status_url}, status_code=202)


def _with_lead_id(target: str, lead_id: str) -> str:
    """``target`` with ``lead_id`` added to its query (kept), before any #fragment."""
    parts = urlsplit(target)
    added = urlencode({"lead_id": lead_id})
    return urlunsplit(parts._replace(query=f"{parts.query}&{added}" if parts.query else added))
