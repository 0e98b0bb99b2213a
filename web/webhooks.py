"""CRM webhooks: changes made in HubSpot or Salesforce, brought into the lifecycle.

``POST /webhooks/hubspot`` takes HubSpot's webhook deliveries, verified by their v3
signature (``LEADFLOW_HUBSPOT_CLIENT_SECRET``); ``POST /webhooks/salesforce/{secret}``
takes Salesforce Outbound Messages, checked by the path secret
(``LEADFLOW_SALESFORCE_OUTBOUND_SECRET``) and the organisation id
(``LEADFLOW_SALESFORCE_ORG_ID``). Unsigned, stale, forged or foreign requests get 401 and
change nothing.

Each notice starts a ``CrmNotice`` workflow whose id is the delivery's own id, so a
delivery the CRM repeats starts nothing new; the notice's changes then reach the lead
through the lifecycle's one entry point (``workflows/crm_inbound.py``). The answer goes
back at once (HubSpot and Salesforce wait only seconds): the work is Temporal's.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from connectors import hubspot_webhooks, salesforce_outbound
from domain.crm import CrmNotice
from settings import CrmBackend
from store import crm_users
from web.deps import AppContext, Context
from web.submission import IntakeError, read_body
from workflows.crm_inbound import CrmNoticeWorkflow

log = logging.getLogger("leadflow.webhooks")
router = APIRouter(include_in_schema=False)

MAX_WEBHOOK_BYTES = 1024 * 1024


@router.post("/webhooks/hubspot")
async def hubspot(request: Request, context: Context) -> Response:
    settings = context.settings
    secret = settings.hubspot_client_secret
    if settings.crm_backend is not CrmBackend.hubspot or secret is None:
        return _refuse(404, "HubSpot webhooks are not enabled (LEADFLOW_HUBSPOT_CLIENT_SECRET)")
    try:
        body = await read_body(request, MAX_WEBHOOK_BYTES)
    except IntakeError as err:
        return _refuse(err.status, "the body could not be read")
    try:
        hubspot_webhooks.verify(
            secret.get_secret_value(),
            request.method,
            _called_uri(request, settings.public_url),
            body,
            request.headers.get("x-hubspot-signature-v3"),
            request.headers.get("x-hubspot-request-timestamp"),
        )
    except hubspot_webhooks.WebhookRefused as err:
        context.metrics.webhooks.labels("hubspot", "refused").inc()
        log.warning("refused a HubSpot webhook: %s", err)
        return _refuse(401, str(err))
    try:
        notices = hubspot_webhooks.notices(body)
    except hubspot_webhooks.WebhookRefused as err:
        return _refuse(400, str(err))
    if not await _start_all(context, "hubspot", notices):
        return _refuse(503, "the workflow service is unavailable; deliver again later")
    return JSONResponse({"accepted": len(notices)})


@router.post("/webhooks/salesforce/{secret}")
async def salesforce(secret: str, request: Request, context: Context) -> Response:
    settings = context.settings
    expected = settings.salesforce_outbound_secret
    org_id = settings.salesforce_org_id
    if settings.crm_backend is not CrmBackend.salesforce or expected is None or not org_id:
        return _refuse(404, "Salesforce Outbound Messages are not enabled")
    if not hmac.compare_digest(secret.encode(), expected.get_secret_value().encode()):
        context.metrics.webhooks.labels("salesforce", "refused").inc()
        return _refuse(401, "unknown path secret")
    try:
        body = await read_body(request, MAX_WEBHOOK_BYTES)
        message = salesforce_outbound.parse(body)
    except IntakeError as err:
        return _refuse(err.status, "the body could not be read")
    except salesforce_outbound.OutboundRefused as err:
        return _refuse(400, str(err))
    if not salesforce_outbound.same_org(org_id, message.organization_id):
        context.metrics.webhooks.labels("salesforce", "refused").inc()
        log.warning("refused an Outbound Message of another organisation")
        return _refuse(401, "the message is from another Salesforce organisation")
    if not await _start_all(context, "salesforce", message.notices):
        return _refuse(503, "the workflow service is unavailable; deliver again later")
    return Response(salesforce_outbound.ACK, media_type="text/xml; charset=utf-8")


def _called_uri(request: Request, public_url: str | None) -> str:
    """The URI the CRM called: behind a proxy the app sees another host and scheme, so it
    is rebuilt from ``LEADFLOW_PUBLIC_URL`` when that is set."""
    if not public_url:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{public_url.rstrip('/')}{request.url.path}{query}"


async def _start_all(context: AppContext, source: str, notices: list[CrmNotice]) -> bool:
    """Start one ``CrmNotice`` workflow per notice not seen before; False when Temporal
    cannot be reached (the CRM delivers again)."""
    for notice in notices:
        key = hashlib.sha256(notice.notice_id.encode()).hexdigest()[:40]
        if await run_in_threadpool(_seen, context, source, notice.notice_id):
            context.metrics.webhooks.labels(source, "repeated").inc()
            continue
        try:
            await _start(
                context.temporal, context.settings.temporal_task_queue, source, key, notice
            )
            context.metrics.webhooks.labels(source, "accepted").inc()
        except WorkflowAlreadyStartedError:
            context.metrics.webhooks.labels(source, "repeated").inc()
        except RPCError as err:
            log.warning("could not start the %s notice workflow: %s", source, err.status)
            return False
        await run_in_threadpool(_remember, context, source, notice.notice_id)
    return True


async def _start(client: Client, task_queue: str, source: str, key: str, notice: CrmNotice) -> None:
    await start_notice(client, task_queue, f"crm-notice-{source}-{key}", notice)


async def start_notice(
    client: Client, task_queue: str, workflow_id: str, notice: CrmNotice
) -> None:
    """Start the ``CrmNotice`` workflow of ``notice`` under ``workflow_id`` (once: an id
    used before raises ``WorkflowAlreadyStartedError``)."""
    await client.start_workflow(
        CrmNoticeWorkflow.run,
        notice,
        id=workflow_id,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


def _seen(context: AppContext, source: str, notice_id: str) -> bool:
    with context.db.read() as session:
        return crm_users.seen_inbound(session, source, notice_id)


def _remember(context: AppContext, source: str, notice_id: str) -> None:
    try:
        with context.db.session() as session:
            crm_users.record_inbound(session, source, notice_id)
    except Exception as err:  # a concurrent delivery of the same notice recorded it
        log.debug("notice %s already recorded: %s", notice_id, type(err).__name__)


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)
