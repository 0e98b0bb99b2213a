"""The intake boundary under hostile or broken input, and readiness that means "can take a
lead": control characters, deep or huge JSON, booleans as numbers, redirects with
fragments, clients that vanish or trickle their body, database errors that must not carry
a lead's values, and a database that answers but cannot write."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.lead import LeadSubmission
from store.db import Database
from store.models import Lead, Rep
from tests.conftest import (
    API_TOKEN,
    AdminUsers,
    Stack,
    http_login,
    make_settings,
    serve,
    unique_email,
)
from tests.processes import free_port
from web.app import create_app

TEXT_FIELDS = [
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "country",
    "state",
    "website",
    "industry",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "message",
]


@contextlib.asynccontextmanager
async def intake_only(
    db: Database, client: Client, tmp_path: Path, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The web app alone (no worker): enough for whatever the intake refuses."""
    app = create_app(make_settings(data_dir=tmp_path, **overrides), db, client, API_TOKEN)
    async with serve(app) as http:
        yield http


def fields_named(response: httpx.Response) -> list[str]:
    detail = response.json()["detail"]
    assert all(item["message"] for item in detail), detail
    return [item["field"] for item in detail]


async def stored_lead(stack: Stack, lead_id: str) -> dict[str, Any]:
    await stack.wait_for(lead_id)
    with stack.db.read() as session:
        row = session.scalars(select(Lead).where(Lead.id == lead_id)).one()
        return dict(row.data)


# ------------------------------------------------------------- 1. control characters


async def test_control_characters_are_refused_in_every_text_field(
    db: Database, client: Client, tmp_path: Path
) -> None:
    async with intake_only(db, client, tmp_path) as http:
        for field in TEXT_FIELDS:
            # (In the message U+2028 is a line break, made "\n": see the test below.)
            separators = [] if field == "message" else ["\u2028", "\u2029"]
            for bad in ["\x00", "\x1b", "\x7f", "\x85", *separators]:
                response = await http.post(
                    "/leads", json={"email": unique_email(), field: f"a{bad}b"}
                )
                assert response.status_code == 422, (field, bad, response.text)
                assert fields_named(response) == [field], (field, bad)
                assert f"U+{ord(bad):04X}" in response.text
        for extra in ({"note": "x\x00y"}, {"no\x00te": "x"}, {"note\x1b": "x"}):
            response = await http.post("/leads", json={"email": unique_email(), "extra": extra})
            assert response.status_code == 422, (extra, response.text)
            assert fields_named(response) == ["extra"]
        # The same through an HTML form, where unknown fields become extra fields.
        response = await http.post("/leads", data={"email": unique_email(), "budget": "5\x00k"})
        assert response.status_code == 422 and fields_named(response) == ["extra"]
        response = await http.post("/leads", data={"email": unique_email(), "company": "A\x00"})
        assert response.status_code == 422 and fields_named(response) == ["company"]
    with db.read() as session:
        assert session.scalars(select(Lead)).first() is None


async def test_message_keeps_tabs_and_newlines_with_crlf_normalised(stack: Stack) -> None:
    response = await stack.http.post(
        "/leads",
        data={"email": unique_email(), "message": "Hello,\r\nplease\rcall\u2028me:\tsoon"},
    )
    assert response.status_code == 202, response.text
    data = await stored_lead(stack, response.json()["lead_id"])
    assert data["message"] == "Hello,\nplease\ncall\nme:\tsoon"
    refused = await stack.submit(email=unique_email(), message="a\x0cb")
    assert refused.status_code == 422 and fields_named(refused) == ["message"]


def test_submissions_accepted_before_the_rule_are_cleaned_not_refused() -> None:
    """Read back from a Temporal history or a stored row (no intake context), an old
    submission holding control characters is cleaned, so its workflow and activities do
    not fail on every retry; at the intake the same input is refused."""
    old = {
        "email": "old@example.com",
        "first_name": "Ja\x00ne",
        "message": "line\r\nnext\x0b",
        "extra": {"note": "x\x1by"},
    }
    cleaned = LeadSubmission.model_validate(old)
    assert cleaned.first_name == "Jane"
    assert cleaned.message == "line\nnext"
    assert cleaned.extra == {"note": "xy"}


async def test_database_errors_never_carry_statement_values(db: Database) -> None:
    secret = f"private-{unique_email()}"
    dialect = db.engine.dialect.name
    with pytest.raises(SQLAlchemyError) as caught, db.session() as session:
        if dialect == "postgresql":
            # What a NUL in a lead's field used to do on PostgreSQL.
            session.add(Rep(name=f"{secret}\x00", email=secret))
            session.flush()
        else:
            session.add(Rep(name="first", email=secret))
            session.flush()
            session.add(Rep(name="second", email=secret))
            session.flush()
    assert secret not in str(caught.value)
    assert "hide_parameters" in str(caught.value)


# ------------------------------------------------------ 2. nesting, numbers, email, redirect


async def test_deeply_nested_json_is_refused_with_400(
    db: Database, client: Client, tmp_path: Path
) -> None:
    deep = '{"email": "a@b.co", "extra": ' + "[" * 1000 + "]" * 1000 + "}"
    async with intake_only(db, client, tmp_path) as http:
        response = await http.post(
            "/leads", content=deep.encode(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert fields_named(response) == ["body"]
        assert "32" in response.json()["detail"][0]["message"]
        # Brackets inside strings are text, not nesting.
        response = await http.post(
            "/leads",
            json={"email": "a@b.co", "message": "[{" * 200, "company_size": True},
        )
        assert response.status_code == 422 and fields_named(response) == ["company_size"]


async def test_huge_and_non_finite_numbers_are_refused_naming_the_field(
    db: Database, client: Client, tmp_path: Path
) -> None:
    async with intake_only(db, client, tmp_path) as http:
        for literal, field in (
            ("1" * 5000, "company_size"),
            ("-" + "9" * 19, "company_size"),
            ("1e999", "company_size"),
            ("NaN", "company_size"),
            ("-Infinity", "company_size"),
        ):
            body = f'{{"email": "a@b.co", "company_size": {literal}}}'.encode()
            response = await http.post(
                "/leads", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 422, (literal[:20], response.text)
            assert fields_named(response) == [field]
        nested = b'{"email": "a@b.co", "extra": {"n": 12345678901234567890123}}'
        response = await http.post(
            "/leads", content=nested, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422 and fields_named(response) == ["extra.n"]
        # A key JSON may spell but UTF-8 cannot (a lone surrogate) is named printably.
        odd_key = b'{"email": "a@b.co", "extra": {"\\ud800": 1e999}}'
        response = await http.post(
            "/leads", content=odd_key, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422 and fields_named(response) == ["extra.?"]
        response = await http.post(
            "/leads", content=b"1" * 5000, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422 and fields_named(response) == ["body"]


async def test_company_size_refuses_booleans_but_takes_form_digits(stack: Stack) -> None:
    for value in (True, False):
        response = await stack.submit(email=unique_email(), company_size=value)
        assert response.status_code == 422, response.text
        assert fields_named(response) == ["company_size"]
    response = await stack.http.post(
        "/leads", data={"email": unique_email(), "company_size": "250"}
    )
    assert response.status_code == 202, response.text
    assert (await stored_lead(stack, response.json()["lead_id"]))["company_size"] == 250


async def test_email_local_part_over_64_characters_is_refused(
    db: Database, client: Client, tmp_path: Path
) -> None:
    async with intake_only(db, client, tmp_path) as http:
        response = await http.post("/leads", json={"email": f"{'a' * 65}@example.com"})
    assert response.status_code == 422, response.text
    assert fields_named(response) == ["email"]


async def test_redirect_keeps_lead_id_before_the_fragment(stack: Stack) -> None:
    for target, expected in (
        ("/form/thanks#done", "/form/thanks?lead_id={id}#done"),
        ("/form/thanks?from=ad#done", "/form/thanks?from=ad&lead_id={id}#done"),
    ):
        response = await stack.http.post(
            "/leads", data={"email": unique_email(), "_redirect": target}
        )
        assert response.status_code == 303, response.text
        location = response.headers["location"]
        lead_id = location.split("lead_id=")[1].split("#")[0]
        assert location == expected.format(id=lead_id)


async def test_redirects_that_browsers_would_bend_off_site_are_refused(
    db: Database, client: Client, tmp_path: Path
) -> None:
    async with intake_only(db, client, tmp_path) as http:
        for target in ("/\t/evil.example", "/\\evil.example", "//[", "/x\r\nSet-Cookie: a=b"):
            response = await http.post(
                "/leads", data={"email": unique_email(), "_redirect": target}
            )
            assert response.status_code == 422, (target, response.text)
            assert fields_named(response) == ["_redirect"]


async def test_inbox_refuses_a_rep_id_no_integer_column_holds(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    """Found by tests/test_openapi_fuzz.py: a 21-digit ``rep`` was a 500 (SQLite cannot
    bind it)."""
    async with intake_only(db, client, tmp_path) as http:
        await http_login(http, admin_users.admin, admin_users.password)
        response = await http.get("/admin/inbox", params={"rep": "175710359510067970048"})
        assert response.status_code == 422, response.text
        assert fields_named(response) == ["rep"]
        assert (await http.get("/admin/inbox", params={"rep": "1"})).status_code == 200


# ---------------------------------------------------- 3. vanishing and trickling clients


async def _read_response(reader: asyncio.StreamReader, within: float) -> bytes:
    """What the server sent before closing or going quiet for ``within`` seconds."""
    received = b""
    with contextlib.suppress(TimeoutError, ConnectionError):
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), within)
            if not chunk:
                break
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length" and len(body) >= int(value):
                    return received
    return received


async def test_client_disconnecting_mid_body_is_logged_quietly(
    db: Database, client: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="leadflow.intake")
    async with intake_only(db, client, tmp_path) as http:
        assert http.base_url.port is not None
        _reader, writer = await asyncio.open_connection("127.0.0.1", http.base_url.port)
        writer.write(
            b"POST /leads HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
            b'{"email": "half'
        )
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        for _ in range(60):
            if any("disconnected" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        # The app still serves.
        assert (await http.get("/form")).status_code == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    quiet = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert quiet and all(r.levelno == logging.DEBUG for r in quiet)


async def test_body_trickled_a_byte_a_second_gets_408(
    db: Database, client: Client, tmp_path: Path
) -> None:
    async with intake_only(db, client, tmp_path, body_read_timeout_s=1.0) as http:
        assert http.base_url.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", http.base_url.port)
        body = json.dumps({"email": unique_email()}).encode()
        writer.write(
            b"POST /leads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                for byte in body:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(1.0)

        sending = asyncio.create_task(trickle())
        started = asyncio.get_running_loop().time()
        response = await _read_response(reader, within=6.0)
        elapsed = asyncio.get_running_loop().time() - started
        sending.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert response.startswith(b"HTTP/1.1 408"), response[:200]
    detail = json.loads(response.partition(b"\r\n\r\n")[2])["detail"]
    assert [d["field"] for d in detail] == ["body"] and detail[0]["message"]
    assert elapsed < 5


# ----------------------------------------------------------------- 4. liveness, readiness


async def test_livez_readyz_and_healthz_on_a_healthy_stack(stack: Stack) -> None:
    for path in ("/healthz", "/readyz"):
        ready = await stack.http.get(path)
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
    live = await stack.http.get("/livez")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    with stack.db.read() as session:
        # The readiness check wrote its row: it proved a write, not only a read.
        assert session.execute(text("SELECT count(*) FROM health_probe")).scalar_one() == 1


def _read_only_twin(db: Database, tmp_path: Path) -> Database:
    """Another handle on the same migrated database that the database itself refuses to
    write through: SQLite opened read-only, PostgreSQL with read-only transactions."""
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite":
        return Database(f"sqlite:///file:{url.database}?mode=ro&uri=true")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = on')
        )
    admin.dispose()
    return Database(db.url)


async def test_readiness_fails_when_the_database_answers_but_cannot_write(
    db: Database, client: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    read_only = _read_only_twin(db, tmp_path)
    try:
        read_only.ping()  # reads still work: the old /healthz said 200 here
        app = create_app(make_settings(data_dir=tmp_path), read_only, client, API_TOKEN)
        async with serve(app) as http:
            health = await http.get("/healthz")
            ready = await http.get("/readyz")
            live = await http.get("/livez")
    finally:
        read_only.dispose()
    for response in (health, ready):
        assert response.status_code == 503, response.text
        assert response.json() == {
            "status": "unavailable",
            "database": "not_writable",
            "temporal": "ok",
        }
    assert live.status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("database" in m for m in warnings), warnings


async def test_readiness_times_out_on_a_locked_database_without_piling_up(
    sqlite_url: str, client: Client, tmp_path: Path
) -> None:
    from store.migrate import upgrade

    db = Database(sqlite_url)
    upgrade(db)
    holder = sqlite3.connect(make_url(sqlite_url).database or "", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        app = create_app(make_settings(data_dir=tmp_path), db, client, API_TOKEN)
        async with serve(app) as http:
            first, second = await asyncio.gather(http.get("/healthz"), http.get("/readyz"))
            for response in (first, second):
                assert response.status_code == 503, response.text
                assert response.json()["database"] == "timeout"
                assert response.json()["temporal"] == "ok"
            holder.execute("ROLLBACK")
            for _ in range(50):
                ready = await http.get("/readyz")
                if ready.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert ready.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
    finally:
        holder.close()
        db.dispose()


async def test_readiness_names_temporal_unreachable_without_its_message(
    db: Database, tmp_path: Path
) -> None:
    dead = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    app = create_app(make_settings(data_dir=tmp_path), db, dead, API_TOKEN)
    async with serve(app) as http:
        health = await http.get("/healthz")
        ready = await http.get("/readyz")
        live = await http.get("/livez")
    expected = {"status": "unavailable", "database": "ok", "temporal": "unreachable"}
    for response in (health, ready):
        assert response.status_code == 503
        assert response.json() == expected
    assert live.status_code == 200
