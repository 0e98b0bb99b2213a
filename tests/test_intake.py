"""The intake boundary over real HTTP: what it accepts, how it refuses, and that it never
creates a second lead for the same person."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from store.db import Database
from store.models import Lead, LeadEvent, Notification
from store.models_crm import CrmRecord
from tests.conftest import (
    API_TOKEN,
    AdminUsers,
    Stack,
    http_login,
    lead_id_of,
    make_settings,
    serve,
    unique_email,
)
from tests.processes import free_port
from web.app import create_app


async def test_json_submission_answers_lead_id_and_status_url(stack: Stack) -> None:
    email = unique_email()
    response = await stack.submit(email=email)
    assert response.status_code == 202
    assert response.json() == {
        "lead_id": lead_id_of(email),
        "status_url": f"{stack.base_url}/leads/{lead_id_of(email)}",
    }


async def test_html_form_post_redirects_to_thank_you_page(stack: Stack) -> None:
    email = unique_email()
    response = await stack.http.post(
        "/leads",
        data={
            "email": email,
            "first_name": "Ana",
            "company_size": "",
            "budget": "50k",
            "extra.campaign": "spring",
            "_redirect": "/form/thanks",
        },
    )
    assert response.status_code == 303
    lead_id = lead_id_of(email)
    assert response.headers["location"] == f"/form/thanks?lead_id={lead_id}"
    lead = await stack.wait_for(lead_id)
    with stack.db.session() as session:
        row = session.get(Lead, lead_id)
        assert row is not None
        assert row.data["extra"] == {"budget": "50k", "campaign": "spring"}
        assert row.data["first_name"] == "Ana"
    assert lead["owner"] is not None
    thanks = await stack.http.get(response.headers["location"])
    assert thanks.status_code == 200 and lead_id in thanks.text


async def test_form_post_without_redirect_answers_json(stack: Stack) -> None:
    response = await stack.http.post("/leads", data={"email": unique_email()})
    assert response.status_code == 202
    assert set(response.json()) == {"lead_id", "status_url"}


async def test_honeypot_is_accepted_and_dropped(stack: Stack) -> None:
    email = unique_email()
    response = await stack.submit(email=email, _hp="http://spam.example")
    assert response.status_code == 202
    # Answered as a person would be: the same well-formed id for the same address, so a
    # bot cannot tell that it was caught by comparing answers.
    assert response.json()["lead_id"] == lead_id_of(email)
    again = await stack.submit(email=email, _hp="http://spam.example")
    assert again.json() == response.json()
    bad = await stack.submit(email="not-an-email", _hp="http://spam.example")
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "email"
    await asyncio.sleep(0.3)
    with stack.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 0
    status = await stack.http.get(f"/leads/{response.json()['lead_id']}", headers=stack.auth)
    assert status.status_code == 404
    metrics = (await stack.http.get("/metrics")).text
    assert 'leadflow_leads_rejected_total{reason="honeypot"} 2.0' in metrics


INVALID: list[tuple[str, dict[str, Any], int, str]] = [
    ("missing email", {"json": {"first_name": "A"}}, 422, "email"),
    ("malformed email", {"json": {"email": "jane@"}}, 422, "email"),
    ("email not a string", {"json": {"email": 42}}, 422, "email"),
    (
        "company size not a number",
        {"json": {"email": "a@b.co", "company_size": "lots"}},
        422,
        "company_size",
    ),
    (
        "company size negative",
        {"json": {"email": "a@b.co", "company_size": -5}},
        422,
        "company_size",
    ),
    ("phone gibberish", {"json": {"email": "a@b.co", "phone": "call me"}}, 422, "phone"),
    (
        "unknown field",
        {"json": {"email": "a@b.co", "favourite_colour": "red"}},
        422,
        "favourite_colour",
    ),
    (
        "too many extra fields",
        {"json": {"email": "a@b.co", "extra": {f"f{i}": "x" for i in range(25)}}},
        422,
        "extra",
    ),
    (
        "extra value too long",
        {"json": {"email": "a@b.co", "extra": {"note": "x" * 1001}}},
        422,
        "extra",
    ),
    ("name too long", {"json": {"email": "a@b.co", "last_name": "x" * 300}}, 422, "last_name"),
    ("message too long", {"json": {"email": "a@b.co", "message": "x" * 5001}}, 422, "message"),
    ("JSON array", {"json": [{"email": "a@b.co"}]}, 422, "body"),
    (
        "broken JSON",
        {"content": b'{"email": ', "headers": {"content-type": "application/json"}},
        400,
        "body",
    ),
    (
        "plain text body",
        {"content": b"email=a@b.co", "headers": {"content-type": "text/plain"}},
        415,
        "content-type",
    ),
    ("no content type", {"content": b"{}"}, 415, "content-type"),
    ("body too large", {"json": {"email": "a@b.co", "message": "x" * 70_000}}, 413, "body"),
    ("form with bad email", {"data": {"email": "nobody"}}, 422, "email"),
    (
        "form with bad size",
        {"data": {"email": "a@b.co", "company_size": "ten"}},
        422,
        "company_size",
    ),
    (
        "off-site redirect",
        {"data": {"email": "a@b.co", "_redirect": "https://evil.example/x"}},
        422,
        "_redirect",
    ),
]


@pytest.mark.parametrize(
    ("case", "request_kwargs", "status", "field"), INVALID, ids=[c[0] for c in INVALID]
)
async def test_invalid_input_gets_4xx_naming_the_field(
    stack: Stack, case: str, request_kwargs: dict[str, Any], status: int, field: str
) -> None:
    response = await stack.http.post("/leads", **request_kwargs)
    assert response.status_code == status, f"{case}: {response.text}"
    detail = response.json()["detail"]
    assert any(
        item["field"] == field or item["field"].startswith(f"{field}.") for item in detail
    ), detail
    assert all(item["message"] for item in detail)
    with stack.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 0


async def test_rejections_are_counted_by_reason(stack: Stack) -> None:
    await stack.submit(email="nope")
    await stack.http.post("/leads", content=b"x", headers={"content-type": "text/plain"})
    metrics = (await stack.http.get("/metrics")).text
    assert 'leadflow_leads_rejected_total{reason="invalid"} 1.0' in metrics
    assert 'leadflow_leads_rejected_total{reason="unsupported_media_type"} 1.0' in metrics


async def test_twenty_concurrent_submissions_of_one_email_make_one_lead(stack: Stack) -> None:
    email = unique_email()
    variants = [email, email.upper(), f"  {email} ", f"\t{email.title()}"]
    responses = await asyncio.gather(
        *(stack.submit(email=variants[i % len(variants)], first_name=f"Try {i}") for i in range(20))
    )
    assert {r.status_code for r in responses} == {202}
    assert {r.json()["lead_id"] for r in responses} == {lead_id_of(email)}
    lead_id = lead_id_of(email)
    await stack.wait_for(lead_id)

    async def all_resubmissions_recorded() -> bool:
        with stack.db.session() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(LeadEvent)
                    .where(LeadEvent.lead_id == lead_id, LeadEvent.type == "resubmitted")
                )
                == 19
            )

    for _ in range(200):
        if await all_resubmissions_recorded():
            break
        await asyncio.sleep(0.05)
    with stack.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 1
        assert session.scalar(select(func.count()).select_from(CrmRecord)) == 1
        assert session.scalar(select(func.count()).select_from(Notification)) == 1
        assigned = session.scalars(
            select(LeadEvent).where(LeadEvent.lead_id == lead_id, LeadEvent.type == "assigned")
        ).all()
        assert len(assigned) == 1
    assert await all_resubmissions_recorded()


async def test_resubmission_joins_existing_lead_and_updates_crm(stack: Stack) -> None:
    email = unique_email()
    first = await stack.submit(email=email, company="Acme")
    await stack.wait_for(first.json()["lead_id"])
    second = await stack.submit(email=email.upper(), title="Head of Sales")
    assert second.json()["lead_id"] == first.json()["lead_id"]
    for _ in range(200):
        with stack.db.session() as session:
            record = session.scalars(select(CrmRecord)).one()
            if record.fields.get("title") == "Head of Sales":
                break
        await asyncio.sleep(0.05)
    assert record.fields["company"] == "Acme"
    assert record.fields["title"] == "Head of Sales"


SPREAD_LEADS = 48  # 16 for each of the 3 reps


async def test_many_distinct_leads_spread_evenly_over_reps(stack: Stack) -> None:
    limit = asyncio.Semaphore(20)

    async def one(i: int) -> str:
        async with limit:
            response = await stack.submit(email=unique_email(f"spread{i}"))
            assert response.status_code == 202
            return str(response.json()["lead_id"])

    lead_ids = await asyncio.gather(*(one(i) for i in range(SPREAD_LEADS)))
    owners: Counter[str] = Counter()
    for lead_id in lead_ids:
        lead = await stack.wait_for(lead_id, within=60)
        owners[lead["owner"]["email"]] += 1
    assert sum(owners.values()) == SPREAD_LEADS
    assert len(owners) == 3
    assert max(owners.values()) - min(owners.values()) <= 1
    with stack.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == SPREAD_LEADS
        assert session.scalar(select(func.count()).select_from(CrmRecord)) == SPREAD_LEADS


async def test_status_api_requires_the_token(stack: Stack) -> None:
    email = unique_email()
    lead_id = (await stack.submit(email=email)).json()["lead_id"]
    missing = await stack.http.get(f"/leads/{lead_id}")
    wrong = await stack.http.get(f"/leads/{lead_id}", headers={"Authorization": "Bearer nope"})
    assert missing.status_code == 401 and "Authorization" in missing.json()["detail"]
    assert wrong.status_code == 401
    ok = await stack.wait_for(lead_id)
    assert ok["email"] == email


async def test_status_api_answers_404_for_unknown_leads(stack: Stack) -> None:
    for lead_id in ("0" * 24, "not-a-lead-id", "../../etc"):
        response = await stack.http.get(f"/leads/{lead_id}", headers=stack.auth)
        assert response.status_code == 404, lead_id


async def test_health_names_every_part(stack: Stack) -> None:
    response = await stack.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "temporal": "ok"}


async def test_health_and_intake_when_temporal_is_down(db: Database, tmp_path: Path) -> None:
    dead = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
    app = create_app(make_settings(data_dir=tmp_path), db, dead, API_TOKEN)
    async with serve(app) as http:
        health = await http.get("/healthz")
        assert health.status_code == 503
        assert health.json()["temporal"] == "unreachable"
        assert health.json()["database"] == "ok"
        response = await http.post("/leads", json={"email": unique_email()})
        assert response.status_code == 503
        assert "not accepted" in json.dumps(response.json())
        assert response.headers["retry-after"]


async def test_health_when_database_is_down(client: Client, tmp_path: Path) -> None:
    broken = Database(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    app = create_app(make_settings(data_dir=tmp_path), broken, client, API_TOKEN)
    async with serve(app) as http:
        health = await http.get("/healthz")
    assert health.status_code == 503
    assert health.json()["database"] == "not_writable"
    assert health.json()["temporal"] == "ok"


async def test_metrics_report_intake_routing_and_speed_to_lead(stack: Stack) -> None:
    lead_id = (await stack.submit(email=unique_email())).json()["lead_id"]
    await stack.wait_for(lead_id)
    text = (await stack.http.get("/metrics")).text
    assert "leadflow_leads_accepted_total 1.0" in text
    assert "leadflow_leads_routed_total 1.0" in text
    assert 'leadflow_speed_to_lead_seconds_bucket{le="+Inf"} 1.0' in text
    assert "leadflow_speed_to_lead_seconds_count 1.0" in text


async def test_inbox_needs_a_login_in_production(
    db: Database, client: Client, tmp_path: Path
) -> None:
    settings = make_settings(
        data_dir=tmp_path,
        environment="production",
        api_token=API_TOKEN,
        database_url="postgresql+psycopg://u@db/leadflow",
    )
    async with serve(create_app(settings, db, client, API_TOKEN)) as http:
        response = await http.get("/inbox", follow_redirects=True)
    assert response.status_code == 200
    assert str(response.url).endswith("/admin/login?next=/admin/inbox")


async def test_sample_form_and_inbox_pages(stack: Stack, admin_users: AdminUsers) -> None:
    form = await stack.http.get("/form")
    assert form.status_code == 200
    assert 'action="/leads"' in form.text and 'name="email"' in form.text
    lead_id = (await stack.submit(email=unique_email(), first_name="Zoe", company="Zeta")).json()[
        "lead_id"
    ]
    lead = await stack.wait_for(lead_id)
    assert (await http_login(stack.http, admin_users.viewer, admin_users.password)).is_redirect
    inbox = await stack.http.get("/inbox", follow_redirects=True)
    assert inbox.status_code == 200
    assert f'id="lead-{lead_id}"' in inbox.text
    assert "Zoe" in inbox.text and lead["owner"]["name"] in inbox.text
