"""Authentication and production mode: which API tokens, environments and database URLs
a process accepts at start, how the bearer token is matched, and what production closes
(metrics, API docs, inbox) -- over real HTTP against the real app, and as real processes.

New names of ``settings`` are imported inside the tests that need them, so each test
here fails on its own against code without these rules."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from temporalio.client import Client

from cli import ensure_api_token
from settings import Settings
from store import reps as rep_store
from store.db import Database
from store.migrate import upgrade
from tests.conftest import API_TOKEN, make_settings, serve
from tests.processes import Processes, free_port, leadflow_env, tail
from web.app import create_app

UNKNOWN_LEAD = "/leads/" + "0" * 24  # well-formed id of no lead: 404 once authorized
POSTGRES_URL = "postgresql+psycopg://leadflow@db.internal/leadflow"


def production(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "production",
        "api_token": API_TOKEN,
        "database_url": POSTGRES_URL,
    }
    return make_settings(**{**values, **overrides})


def refusal(**overrides: Any) -> str:
    """The message of the ValidationError that ``Settings`` raises for ``overrides``."""
    with pytest.raises(ValidationError) as refused:
        make_settings(**overrides)
    return str(refused.value)


@pytest.fixture
def app_db(sqlite_url: str) -> Iterator[Database]:
    """A migrated SQLite database (these tests need one, never a particular backend)."""
    database = Database(sqlite_url)
    upgrade(database)
    with database.session() as session:
        rep_store.seed_demo(session)
    yield database
    database.dispose()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path / "logs")
    try:
        yield running
    finally:
        running.close()


async def get(app: FastAPI, *requests: tuple[str, dict[str, Any]]) -> list[httpx.Response]:
    async with serve(app) as http:
        return [await http.get(path, headers=headers) for path, headers in requests]


async def raw_statuses(app: FastAPI, path: str, authorizations: list[bytes]) -> list[int]:
    """The status of ``GET path`` with each ``Authorization`` value, sent byte for byte
    (httpx refuses to send a value with trailing whitespace; a client can)."""
    statuses = []
    async with serve(app) as http:
        for value in authorizations:
            reader, writer = await asyncio.open_connection("127.0.0.1", http.base_url.port)
            writer.write(
                b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Authorization: " + value + b"\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            status_line = await reader.readline()
            writer.close()
            await writer.wait_closed()
            statuses.append(int(status_line.split()[1]))
    return statuses


# ------------------------------------------------------------------ 1. the API token


def test_settings_refuse_an_empty_or_short_api_token(tmp_path: Path) -> None:
    for token in ("", " ", "a" * 31, "\xa0" * 8):
        message = refusal(data_dir=tmp_path, api_token=token)
        assert "LEADFLOW_API_TOKEN" in message and "32" in message, message
    secret = "s3cr3t-but-too-short"
    assert secret not in refusal(api_token=secret), "the refused token is echoed"
    # Surrounding whitespace cannot survive every HTTP server: refused, not trimmed.
    assert "LEADFLOW_API_TOKEN" in refusal(api_token=f" {API_TOKEN} ")
    for ok in ("a" * 32, API_TOKEN):
        accepted = make_settings(api_token=ok).api_token
        assert accepted is not None and accepted.get_secret_value() == ok


def test_a_generated_token_file_that_is_empty_or_short_is_replaced(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path)
    path = settings.api_token_file
    first = ensure_api_token(settings)
    assert len(first) >= 32 and path.read_text().strip() == first
    assert path.stat().st_mode & 0o077 == 0, "token file readable by others"
    assert ensure_api_token(settings) == first, "a good token file is kept"
    for content in ("", "\n", "short\n"):
        path.write_text(content)
        token = ensure_api_token(settings)
        assert len(token) >= 32 and token != content.strip()
        assert path.read_text().strip() == token
        assert path.stat().st_mode & 0o077 == 0


async def test_bearer_token_must_match_exactly(
    app_db: Database, client: Client, tmp_path: Path
) -> None:
    settings = make_settings(data_dir=tmp_path, api_token=API_TOKEN)
    refused: dict[str, bytes] = {
        "no-break space (strips to nothing)": b"Bearer \xa0",
        "extra space before": f"Bearer  {API_TOKEN}".encode(),
        "trailing space": f"Bearer {API_TOKEN} ".encode(),
        "trailing tab": f"Bearer {API_TOKEN}\t".encode(),
        "no-break space after": f"Bearer {API_TOKEN}".encode() + b"\xa0",
        "empty": b"Bearer ",
        "scheme only": b"Bearer",
        "prefix of the token": f"Bearer {API_TOKEN[:-1]}".encode(),
    }
    app = create_app(settings, app_db, client, API_TOKEN)
    statuses = await raw_statuses(app, UNKNOWN_LEAD, list(refused.values()))
    wrong = {name: status for name, status in zip(refused, statuses, strict=True) if status != 401}
    assert not wrong, f"accepted: {wrong}"

    # The exact token (any case of the scheme) gets through to the endpoint.
    exact = [f"{scheme} {API_TOKEN}".encode() for scheme in ("Bearer", "bearer")]
    assert await raw_statuses(app, UNKNOWN_LEAD, exact) == [404, 404]

    # An app handed an empty token (LEADFLOW_API_TOKEN= before it was refused) opens to
    # nobody, whatever is presented.
    app = create_app(settings, app_db, client, "")
    assert await raw_statuses(app, UNKNOWN_LEAD, [b"Bearer \xa0", b"Bearer  "]) == [401, 401]


async def test_non_ascii_token_is_matched_on_the_bytes_sent(
    app_db: Database, client: Client, tmp_path: Path
) -> None:
    token = "jeton-secret-ünïcödé-" + "x" * 12
    settings = make_settings(data_dir=tmp_path, api_token=token)
    answers = await get(
        create_app(settings, app_db, client, token),
        (UNKNOWN_LEAD, {"Authorization": b"Bearer " + token.encode("utf-8")}),
        (UNKNOWN_LEAD, {"Authorization": b"Bearer " + token.encode("latin-1")}),
    )
    assert [r.status_code for r in answers] == [404, 401]


def test_dev_worker_and_web_refuse_a_short_token_at_start(procs: Processes, tmp_path: Path) -> None:
    short = "only-twenty-chars-xx"
    runs = []
    for command in ("worker", "web", "dev"):
        env = leadflow_env(
            data_dir=tmp_path / command,
            api_token=short,
            # Were the token accepted, these would fail fast and name other settings.
            temporal_address=f"127.0.0.1:{free_port()}",
            web_port=free_port(),
        )
        runs.append(procs.cli(command, command, env))
    for proc in runs:
        code = proc.wait(60)
        out = tail(proc.log)
        assert code == 2, f"{proc.name} exited with {code}\n{out}"
        assert "leadflow: invalid configuration:\n  LEADFLOW_API_TOKEN must be" in out, out
        assert short not in out and "Traceback" not in out, out
    assert not (tmp_path / "dev" / "temporal.log").exists()


# ------------------------------------------------------------------ 2. environment and database


def test_environment_is_parsed_case_insensitively() -> None:
    spellings = ("production", "Production", " PRODUCTION ", "\tproduction\n")
    for value in spellings:  # production's own rules apply to every spelling
        assert "LEADFLOW_API_TOKEN" in refusal(environment=value, database_url=POSTGRES_URL)

    from settings import Environment

    for value in spellings:
        assert production(environment=value).environment is Environment.production, value
    for value in ("development", "Development", " DEVELOPMENT "):
        assert make_settings(environment=value).environment is Environment.development
    assert make_settings().environment is Environment.development


def test_unknown_environments_are_refused() -> None:
    for value in ("prod", "staging", "", "dev"):
        message = refusal(environment=value, api_token=API_TOKEN, database_url=POSTGRES_URL)
        assert "LEADFLOW_ENVIRONMENT" in message, message
        assert "development" in message and "production" in message, message


def test_production_needs_a_postgresql_url() -> None:
    for url in (
        None,
        "",
        "sqlite:///x.db",
        "SQLITE:///x.db",
        "Sqlite+Pysqlite:///x.db",
        "mysql://u@h/db",
        "not a url",
    ):
        overrides = {} if url is None else {"database_url": url}
        message = refusal(environment="production", api_token=API_TOKEN, **overrides)
        assert "LEADFLOW_DATABASE_URL" in message, (url, message)
    for url in (POSTGRES_URL, "POSTGRESQL+psycopg://u@h/db", "postgresql://u:p@h:5432/db"):
        assert production(database_url=url).database_url == url
    # Unparsable is refused in development too; SQLite is fine there.
    assert "LEADFLOW_DATABASE_URL" in refusal(database_url="not a url")
    assert make_settings(database_url="SQLITE:///x.db").database_url == "SQLITE:///x.db"


async def test_inbox_needs_a_login_for_any_spelling_of_production(
    app_db: Database, client: Client, tmp_path: Path
) -> None:
    settings = production(data_dir=tmp_path, environment=" PRODUCTION ")
    app = create_app(settings, app_db, client, API_TOKEN)
    old, new = await get(app, ("/inbox", {}), ("/admin/inbox", {}))
    assert (old.status_code, old.headers["location"]) == (303, "/admin/inbox")
    assert (new.status_code, new.headers["location"]) == (303, "/admin/login?next=/admin/inbox")


def test_configuration_errors_are_one_line_per_variable(procs: Processes, tmp_path: Path) -> None:
    cases = {
        "staging": (
            {"environment": "staging", "web_port": "eighty"},
            [
                "  LEADFLOW_ENVIRONMENT must be one of development, production",
                "  LEADFLOW_WEB_PORT: Input should be a valid integer",
            ],
        ),
        "sqlite-in-production": (
            {"environment": "Production", "database_url": "SQLITE:///x.db"},
            [
                "  LEADFLOW_DATABASE_URL must point at PostgreSQL",
                "  LEADFLOW_API_TOKEN must be set",
            ],
        ),
    }
    runs = []
    for name, (settings, expected) in cases.items():
        env = leadflow_env(data_dir=tmp_path / name, **settings)
        runs.append((procs.cli(name, "worker", env), expected))
    for proc, expected in runs:
        code = proc.wait(60)
        out = tail(proc.log)
        assert code == 2, f"{proc.name} exited with {code}\n{out}"
        lines = out.splitlines()
        start = lines.index("leadflow: invalid configuration:")
        problems = lines[start + 1 :]
        # One line per problem, each naming its variable (others may add problems).
        assert all(p.startswith("  LEADFLOW_") for p in problems), out
        for line in expected:
            assert any(p.startswith(line) for p in problems), f"no {line!r} in\n{out}"


# ------------------------------------------------------------------ 3. metrics and API docs


async def status_codes(app: FastAPI, auth: bool) -> dict[str, int]:
    headers = {"Authorization": f"Bearer {API_TOKEN}"} if auth else {}
    paths = ("/metrics", "/docs", "/redoc", "/openapi.json")
    answers = await get(app, *((path, headers) for path in paths))
    return {path: r.status_code for path, r in zip(paths, answers, strict=True)}


async def test_metrics_and_api_docs_in_production_and_development(
    app_db: Database, client: Client, tmp_path: Path
) -> None:
    closed = create_app(production(data_dir=tmp_path), app_db, client, API_TOKEN)
    assert await status_codes(closed, auth=False) == {
        "/metrics": 401,
        "/docs": 404,
        "/redoc": 404,
        "/openapi.json": 401,
    }
    assert await status_codes(closed, auth=True) == {
        "/metrics": 200,
        "/docs": 404,
        "/redoc": 404,
        "/openapi.json": 200,
    }
    async with serve(closed) as http:
        schema = await http.get("/openapi.json", headers={"Authorization": f"Bearer {API_TOKEN}"})
        metrics = await http.get("/metrics", headers={"Authorization": "Bearer  " + API_TOKEN})
    assert "/leads" in schema.json()["paths"]
    assert metrics.status_code == 401

    development = make_settings(data_dir=tmp_path, api_token=API_TOKEN)
    open_codes = dict.fromkeys(("/metrics", "/docs", "/redoc", "/openapi.json"), 200)
    app = create_app(development, app_db, client, API_TOKEN)
    assert await status_codes(app, auth=False) == open_codes


async def test_metrics_and_api_docs_can_each_be_opened_in_production(
    app_db: Database, client: Client, tmp_path: Path
) -> None:
    metrics_only = production(data_dir=tmp_path, metrics_public=True)
    app = create_app(metrics_only, app_db, client, API_TOKEN)
    assert await status_codes(app, auth=False) == {
        "/metrics": 200,
        "/docs": 404,
        "/redoc": 404,
        "/openapi.json": 401,
    }
    docs_only = production(data_dir=tmp_path, api_docs_public=True)
    app = create_app(docs_only, app_db, client, API_TOKEN)
    assert await status_codes(app, auth=False) == {
        "/metrics": 401,
        "/docs": 200,
        "/redoc": 200,
        "/openapi.json": 200,
    }
    both = production(data_dir=tmp_path, metrics_public="true", api_docs_public="TRUE")
    codes = await status_codes(create_app(both, app_db, client, API_TOKEN), auth=False)
    assert set(codes.values()) == {200}, codes


def test_production_needs_its_own_lead_id_secret() -> None:
    """Lead ids are keyed with a per-installation secret; replicas must share it, so
    production never generates one."""
    message = refusal(
        environment="production",
        api_token=API_TOKEN,
        database_url=POSTGRES_URL,
        lead_id_secret=None,
    )
    assert "LEADFLOW_LEAD_ID_SECRET must be set" in message
    assert "LEADFLOW_LEAD_ID_SECRET must be at least 32" in refusal(lead_id_secret="short")
    assert production().lead_id_secret is not None
