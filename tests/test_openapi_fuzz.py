"""Property-based fuzzing of the public HTTP API from its own OpenAPI schema (schemathesis)
against the real app served over HTTP, with a worker on the real Temporal server: no
request may get a 5xx, and every 4xx carries a JSON ``detail`` with a message.

Each operation gets ``EXAMPLES_PER_MODE`` schema-valid and as many schema-invalid requests
through ``APIOperation.as_strategy`` under Hypothesis. (``schemathesis.pytest.from_fixture``
with ``@schema.parametrize()`` would be the shorter spelling, but schemathesis 4.32 sets
``Node._nodeid``, which pytest 9.2 no longer has.)"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from queue import Queue
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.core.result import Err
from schemathesis.core.transport import Response
from schemathesis.generation import GenerationMode
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from store import reps as rep_store
from store.db import Database
from store.migrate import upgrade
from tests.conftest import API_TOKEN, running_stack

STARTUP_S = 60
# Per operation and generation mode (valid, invalid data): 60 requests per operation.
EXAMPLES_PER_MODE = 15


@pytest.fixture
def served_url(temporal_target: str, sqlite_url: str, tmp_path: Path) -> Iterator[str]:
    """The stack (worker + web app over HTTP) on a thread with its own event loop:
    schemathesis's tests are synchronous, and would block the test session's loop."""
    db = Database(sqlite_url)
    upgrade(db)
    with db.session() as session:
        rep_store.seed_demo(session)
    started: Queue[str | BaseException] = Queue()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        try:
            client = await Client.connect(temporal_target, data_converter=pydantic_data_converter)
            task_queue = f"fuzz-{uuid.uuid4().hex[:12]}"
            async with running_stack(client, db, task_queue, tmp_path) as stack:
                started.put(stack.base_url)
                await stop.wait()
        except BaseException as err:
            started.put(err)
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    first = started.get(timeout=STARTUP_S)
    if isinstance(first, BaseException):
        raise first
    try:
        yield first
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(STARTUP_S)
        loop.close()
        db.dispose()


AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def detail_with_message(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Every 4xx answers JSON ``{"detail": ...}``: a message, or a list of
    ``{"field", "message"}``."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str) and detail:
        return None
    if (
        isinstance(detail, list)
        and detail
        and all(isinstance(d, dict) and d.get("message") for d in detail)
    ):
        return None
    raise Failure(
        operation=case.operation.label,
        title="4xx without a detail message",
        message=f"{response.status_code}: {response.text[:300]!r}",
    )


def test_public_api_answers_every_generated_request_without_5xx(served_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{served_url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations.append(result.ok())
    assert {op.label for op in operations} >= {"POST /leads", "GET /leads/{lead_id}"}
    post = schema["/leads"]["POST"]
    assert post.body, "POST /leads declares no request body"
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_MODE,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            def no_server_error(case: Case[Any]) -> None:
                case.call_and_validate(
                    headers=AUTH, checks=[not_a_server_error, detail_with_message], timeout=30
                )

            try:
                no_server_error()
            except Unsatisfiable:
                # Nothing in the operation can be made invalid (no parameters, or only
                # free strings): there is no negative case to send.
                if mode is not GenerationMode.NEGATIVE:
                    raise
