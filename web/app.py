"""The ASGI application factory and the operational endpoints (metrics here; liveness and
readiness in ``web.health``)."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from connectors.base import CRM
from settings import Settings, stored_secret
from store.db import Database
from web import (
    admin,
    api_approvals,
    api_attention,
    api_config,
    api_crm_notices,
    api_kpis,
    api_routing,
    health,
    intake,
    lead_events,
    leads,
    pages,
    slack,
    webhooks,
)
from web.admin.render import FlashMiddleware
from web.deps import AppContext, Context, require_token
from web.metrics import Metrics
from web.security import SecurityHeaders

log = logging.getLogger("leadflow.web")
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def create_app(
    settings: Settings, db: Database, temporal: Client, api_token: str, crm: CRM | None = None
) -> FastAPI:
    """The web app around already-connected collaborators (``crm``: the CRM connector to
    read from; by default the one the settings name, connected on first use).

    In production ``/docs`` and ``/redoc`` are off and ``/openapi.json`` needs the bearer
    token, unless LEADFLOW_API_DOCS_PUBLIC; ``/metrics`` needs it unless
    LEADFLOW_METRICS_PUBLIC. In development all of them are open."""
    docs_open = not settings.is_production or settings.api_docs_public
    metrics_open = not settings.is_production or settings.metrics_public
    app = FastAPI(
        title="Leadflow",
        version="0.1.0",
        docs_url="/docs" if docs_open else None,
        redoc_url="/redoc" if docs_open else None,
        openapi_url="/openapi.json" if docs_open else None,
    )
    app.state.context = AppContext(
        settings=settings,
        db=db,
        temporal=temporal,
        metrics=Metrics(db),
        templates=Jinja2Templates(directory=TEMPLATES),
        api_token=api_token,
        _crm=crm,
        lead_id_secret=stored_secret(
            settings.lead_id_secret, settings.lead_id_secret_file
        ).encode(),
    )
    app.include_router(intake.router)
    app.include_router(leads.router)
    app.include_router(lead_events.router)
    app.include_router(pages.router)
    app.include_router(health.router)
    app.include_router(api_config.router)
    app.include_router(api_routing.router)
    app.include_router(api_attention.router)
    app.include_router(api_crm_notices.router)
    app.include_router(api_approvals.router)
    app.include_router(api_kpis.router)
    app.include_router(webhooks.router)
    app.include_router(slack.router)
    app.state.slack = slack.slack_handler(settings, db, temporal)
    admin.install(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(
        FlashMiddleware,
        secret=app.state.context.lead_id_secret,
        secure=settings.is_production,
    )
    app.add_middleware(SecurityHeaders)

    if not docs_open:

        @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
        async def openapi() -> JSONResponse:
            return JSONResponse(app.openapi())

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, err: RequestValidationError) -> JSONResponse:
        detail = [
            {
                "field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]),
                "message": e["msg"],
            }
            for e in err.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.get("/metrics", dependencies=[] if metrics_open else [Depends(require_token)])
    async def metrics(context: Context) -> Response:
        body = await run_in_threadpool(generate_latest, context.metrics.registry)
        return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)

    return app
