"""Liveness and readiness.

``GET /livez`` answers while the process serves HTTP. ``GET /readyz`` (and ``/healthz``,
its older name) answers 200 only when this replica can accept a lead end to end: the app
database takes a write, and the Temporal frontend answers its health check. A failure is
reported per part with a short code; the detail goes to the log, never to the client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError, RPCStatusCode

from store.health import probe_write
from web.deps import Context

log = logging.getLogger("leadflow.health")
router = APIRouter(tags=["health"])

CHECK_TIMEOUT_S = 2.0
OK = "ok"


class _SingleFlight:
    """Runs a blocking probe in a thread, one at a time: while a probe is stuck (a
    database that hangs), later checks wait on that same probe instead of starting more
    threads, so a load balancer polling a sick replica cannot exhaust its thread pool."""

    def __init__(self, probe: Callable[[], None]) -> None:
        self._probe = probe
        self._running: asyncio.Future[None] | None = None

    async def __call__(self, timeout_s: float) -> None:
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(run_in_threadpool(self._probe))
            # Whoever gave up waiting, the outcome is consumed (no "never retrieved").
            self._running.add_done_callback(lambda f: f.cancelled() or f.exception())
        await asyncio.wait_for(asyncio.shield(self._running), timeout_s)


def _database_probe(app: FastAPI, context: Context) -> _SingleFlight:
    probe: _SingleFlight | None = getattr(app.state, "database_write_probe", None)
    if probe is None:
        db = context.db
        probe = _SingleFlight(lambda: probe_write(db, CHECK_TIMEOUT_S))
        app.state.database_write_probe = probe
    return probe


async def _database(request: Request, context: Context) -> str:
    try:
        await _database_probe(request.app, context)(CHECK_TIMEOUT_S)
    except TimeoutError:
        log.warning("readiness: the database write did not finish in %s s", CHECK_TIMEOUT_S)
        return "timeout"
    except Exception as err:
        # Engines hide statement parameters, and the probe's own carry no lead data.
        log.warning("readiness: the database does not take writes: %s", _short(err))
        return "not_writable"
    return OK


async def _temporal(context: Context) -> str:
    try:
        serving = await asyncio.wait_for(
            context.temporal.service_client.check_health(
                timeout=timedelta(seconds=CHECK_TIMEOUT_S)
            ),
            CHECK_TIMEOUT_S + 0.5,
        )
    except TimeoutError:
        log.warning("readiness: Temporal did not answer in %s s", CHECK_TIMEOUT_S)
        return "timeout"
    except Exception as err:
        if isinstance(err, RPCError) and err.status == RPCStatusCode.DEADLINE_EXCEEDED:
            log.warning("readiness: Temporal did not answer in %s s", CHECK_TIMEOUT_S)
            return "timeout"
        log.warning("readiness: Temporal is unreachable: %s", _short(err))
        return "unreachable"
    if not serving:
        log.warning("readiness: Temporal answers but is not serving")
        return "not_serving"
    return OK


def _short(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:500]


@router.get("/livez")
async def livez() -> Response:
    """200 while the process serves HTTP; nothing else is checked (restart on failure)."""
    return JSONResponse({"status": OK})


@router.get("/readyz")
async def readyz(request: Request, context: Context) -> Response:
    """200 when the database takes a write and Temporal answers (each within 2 s); else
    503 with a short code per part: database ``not_writable`` | ``timeout``, temporal
    ``unreachable`` | ``timeout`` | ``not_serving``."""
    database, temporal = await asyncio.gather(_database(request, context), _temporal(context))
    ready = database == OK and temporal == OK
    return JSONResponse(
        {"status": OK if ready else "unavailable", "database": database, "temporal": temporal},
        status_code=200 if ready else 503,
    )


@router.get("/healthz")
async def healthz(request: Request, context: Context) -> Response:
    """The readiness check under its older name (see ``/readyz``)."""
    return await readyz(request, context)
