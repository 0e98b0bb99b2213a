"""Lead intake (``POST /leads``) and the lead status API (``GET /leads/{lead_id}``).

The intake validates into ``LeadSubmission`` and hands the lead to its workflow with
signal-with-start; it answers 202 only after Temporal has recorded the start (or the
signal), so an accepted lead is durable. Nothing here decides what happens to the lead.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from domain.lead import LeadSubmission, lead_key, workflow_id_for
from domain.lifecycle import LeadLifecycleInput, SubmissionReceived
from store import leads as lead_store
from store import reps as rep_store
from web.deps import Authorized, Context
from workflows.lead_lifecycle import LeadLifecycleWorkflow

log = logging.getLogger("leadflow.intake")
router = APIRouter()

HONEYPOT_FIELD = "_hp"
REDIRECT_FIELD = "_redirect"
EXTRA_PREFIX = "extra."
KNOWN_FIELDS = set(LeadSubmission.model_fields) - {"extra"}
LEAD_ID = re.compile(r"^[0-9a-f]{24}$")
START_TIMEOUT = timedelta(seconds=10)


class IntakeError(Exception):
    def __init__(self, status: int, reason: str, errors: list[dict[str, str]]) -> None:
        self.status = status
        self.reason = reason
        self.errors = errors


def _field_errors(err: ValidationError) -> list[dict[str, str]]:
    out = []
    for item in err.errors():
        field = ".".join(str(p) for p in item["loc"]) or "body"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field; send free-form fields inside 'extra'"
        elif item["type"] == "missing":
            message = "is required"
        out.append({"field": field, "message": message})
    return out


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise IntakeError(
            413,
            "too_large",
            [{"field": "body", "message": f"request body is larger than {limit} bytes"}],
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise IntakeError(
                413,
                "too_large",
                [{"field": "body", "message": f"request body is larger than {limit} bytes"}],
            )
    return bytes(body)


def _parse(content_type: str, body: bytes) -> tuple[dict[str, Any], bool]:
    """The submitted fields, and whether they came from an HTML form."""
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json":
        try:
            parsed = json.loads(body or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise IntakeError(
                400, "bad_json", [{"field": "body", "message": f"body is not valid JSON: {err}"}]
            ) from err
        if not isinstance(parsed, dict):
            raise IntakeError(
                422, "invalid", [{"field": "body", "message": "body must be a JSON object"}]
            )
        return parsed, False
    if media == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
        except (UnicodeDecodeError, ValueError) as err:
            raise IntakeError(
                400,
                "bad_form",
                [{"field": "body", "message": f"body is not a valid URL-encoded form: {err}"}],
            ) from err
        data: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for key, value in pairs:
            value = value.strip()
            if key in KNOWN_FIELDS or key in (HONEYPOT_FIELD, REDIRECT_FIELD):
                if value != "":
                    data[key] = value
            elif value != "":
                # Free-form fields of a form: "extra.<name>" or any other field name.
                extra[key.removeprefix(EXTRA_PREFIX)] = value
        if extra:
            data["extra"] = extra
        return data, True
    raise IntakeError(
        415,
        "unsupported_media_type",
        [
            {
                "field": "content-type",
                "message": "send application/json or application/x-www-form-urlencoded",
            }
        ],
    )


def _safe_redirect(target: object, host: str | None) -> str | None:
    """Only same-site paths or the host the form was posted to: no open redirects."""
    if target is None or target == "":
        return None
    if isinstance(target, str):
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and target.startswith("/")
            and not target.startswith("//")
        ):
            return target
        if parts.scheme in ("http", "https") and parts.netloc == host:
            return target
    raise IntakeError(
        422,
        "invalid",
        [{"field": REDIRECT_FIELD, "message": "must be a path on this site (e.g. /form/thanks)"}],
    )


def validate_fields(
    data: dict[str, Any], host: str | None, redirect_param: str | None = None
) -> tuple[LeadSubmission | None, str | None]:
    """The submission (None when the honeypot is filled: a bot, to be dropped) and the
    redirect target; ``IntakeError`` naming each bad field otherwise."""
    redirect = _safe_redirect(data.pop(REDIRECT_FIELD, None) or redirect_param, host)
    if data.pop(HONEYPOT_FIELD, None):
        return None, redirect
    try:
        return LeadSubmission.model_validate(data), redirect
    except ValidationError as err:
        raise IntakeError(422, "invalid", _field_errors(err)) from err


def _reject(context: Context, err: IntakeError) -> JSONResponse:
    context.metrics.rejected.labels(reason=err.reason).inc()
    return JSONResponse({"detail": err.errors}, status_code=err.status)


@router.post("/leads", status_code=202)
async def submit_lead(request: Request, context: Context) -> Response:
    """Accept a web-form lead (JSON or URL-encoded form)."""
    received_at = datetime.now(UTC)
    try:
        body = await _read_body(request, context.settings.max_body_bytes)
        data, from_form = _parse(request.headers.get("content-type", ""), body)
        submission, redirect = validate_fields(
            data, request.headers.get("host"), request.query_params.get("redirect")
        )
    except IntakeError as err:
        return _reject(context, err)

    if submission is None:
        # The honeypot was filled: looks accepted to the bot; nothing is started.
        context.metrics.rejected.labels(reason="honeypot").inc()
        log.info("honeypot filled; submission dropped")
        return _accepted(request, secrets.token_hex(12), redirect, from_form)

    lead_id = lead_key(submission.email)
    workflow_id = workflow_id_for(lead_id)
    try:
        await context.temporal.start_workflow(
            LeadLifecycleWorkflow.run,
            LeadLifecycleInput(
                lead_id=lead_id,
                idle_timeout_s=context.settings.lifecycle_idle_timeout_s,
                activity_timeout_s=context.settings.activity_timeout_s,
            ),
            id=workflow_id,
            task_queue=context.settings.temporal_task_queue,
            start_signal="submission_received",
            start_signal_args=[
                SubmissionReceived(
                    submission=submission,
                    received_at=received_at,
                    submission_id=uuid.uuid4().hex,
                )
            ],
            rpc_timeout=START_TIMEOUT,
        )
    except (RPCError, RuntimeError) as err:
        # RPCError once connected; RuntimeError when the (re)connect itself fails.
        context.metrics.rejected.labels(reason="temporal_unavailable").inc()
        log.error(
            "could not hand lead %s to Temporal: %s",
            lead_id,
            err,
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


def _accepted(request: Request, lead_id: str, redirect: str | None, from_form: bool) -> Response:
    status_url = str(request.url_for("lead_status", lead_id=lead_id))
    if redirect and from_form:
        joiner = "&" if "?" in redirect else "?"
        return RedirectResponse(
            f"{redirect}{joiner}{urlencode({'lead_id': lead_id})}", status_code=303
        )
    return JSONResponse({"lead_id": lead_id, "status_url": status_url}, status_code=202)


@router.get("/leads/{lead_id}", name="lead_status")
async def lead_status(lead_id: str, context: Context, _auth: Authorized) -> Response:
    """Where the lead is: stage, score, owner and its timeline."""
    found = None
    if LEAD_ID.match(lead_id):
        found = await run_in_threadpool(_lead_from_db, context, lead_id)
        if found is None:
            try:
                found = await _pending_lead(context, lead_id)
            except (RPCError, RuntimeError):
                return JSONResponse(
                    {"detail": "lead not recorded yet and the workflow service is unavailable"},
                    status_code=503,
                    headers={"Retry-After": "5"},
                )
    if found is None:
        return JSONResponse({"detail": f"no lead with id {lead_id!r}"}, status_code=404)
    return JSONResponse(found)


def _lead_from_db(context: Context, lead_id: str) -> dict[str, Any] | None:
    with context.db.read() as session:
        lead = lead_store.get_lead(session, lead_id)
        if lead is None:
            return None
        owner = rep_store.get_rep(session, lead.owner_rep_id) if lead.owner_rep_id else None
        events = lead_store.lead_events(session, lead_id)
        return {
            "lead_id": lead.id,
            "workflow_id": lead.workflow_id,
            "email": lead.email,
            "stage": lead.stage,
            "score": lead.score,
            "grade": lead.grade,
            "owner": {"name": owner.name, "email": owner.email} if owner else None,
            "crm_id": lead.crm_id,
            "received_at": lead.received_at.isoformat(),
            "speed_to_lead_ms": lead.speed_to_lead_ms,
            "events": [
                {"type": e.type, "stage": e.stage, "at": e.occurred_at.isoformat(), "data": e.data}
                for e in events
            ],
        }


async def _pending_lead(context: Context, lead_id: str) -> dict[str, Any] | None:
    """A lead Temporal accepted but no activity has recorded yet."""
    try:
        desc = await context.temporal.get_workflow_handle(workflow_id_for(lead_id)).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if desc.status != WorkflowExecutionStatus.RUNNING:
        return None
    return {
        "lead_id": lead_id,
        "workflow_id": desc.id,
        "stage": "captured",
        "score": None,
        "grade": None,
        "owner": None,
        "crm_id": None,
        "events": [],
    }
