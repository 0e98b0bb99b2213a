"""The ASGI application factory and the operational endpoints (health, metrics)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from settings import Settings
from store.db import Database
from web import intake, pages
from web.deps import AppContext, Context
from web.metrics import Metrics

log = logging.getLogger("leadflow.web")
TEMPLATES = Path(__file__).parent / "templates"
HEALTH_TIMEOUT_S = 2.0


def create_app(settings: Settings, db: Database, temporal: Client, api_token: str) -> FastAPI:
    """The web app around already-connected collaborators."""
    app = FastAPI(title="Leadflow", version="0.1.0")
    app.state.context = AppContext(
        settings=settings,
        db=db,
        temporal=temporal,
        metrics=Metrics(db),
        templates=Jinja2Templates(directory=TEMPLATES),
        api_token=api_token,
    )
    app.include_router(intake.router)
    app.include_router(pages.router)

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

    @app.get("/healthz")
    async def healthz(context: Context) -> Response:
        """200 when the web app, the database and Temporal all answer; 503 naming any
        part that does not."""
        problems: dict[str, str] = {}
        try:
            await asyncio.wait_for(run_in_threadpool(context.db.ping), HEALTH_TIMEOUT_S)
        except Exception as err:
            problems["database"] = f"unreachable: {type(err).__name__}: {err}"[:300]
        try:
            ok = await asyncio.wait_for(
                context.temporal.service_client.check_health(), HEALTH_TIMEOUT_S
            )
            if not ok:
                problems["temporal"] = "not serving"
        except Exception as err:
            problems["temporal"] = f"unreachable: {type(err).__name__}: {err}"[:300]
        status = {
            "web": "ok",
            "database": problems.get("database", "ok"),
            "temporal": problems.get("temporal", "ok"),
        }
        return JSONResponse(
            {"status": "ok" if not problems else "unavailable", **status},
            status_code=503 if problems else 200,
        )

    @app.get("/metrics")
    async def metrics(context: Context) -> Response:
        body = await run_in_threadpool(generate_latest, context.metrics.registry)
        return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)

    return app
