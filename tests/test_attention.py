"""Leads that need attention: the list over the JSON API (roles, pagination, newest
failure first), a retry of a lead's failed steps (refused for an unknown, malformed or
healthy lead and for an ended lifecycle; otherwise the ``retry`` signal reaches the lead's
running lifecycle, under the caller's name), the admin's needs-attention page with its
Retry buttons (CSRF, roles), and a lead's Lifecycle panel built from the workflow's
``state`` query (timers, failed steps) or, when the lifecycle is closed or silent, from
the database -- in a real browser, with screenshots.

The lifecycles here are a small stand-in workflow (``FakeLifecycle``) that answers the
``state`` query with a prepared ``LeadState`` and records the ``retry`` signals it gets,
started under the lead's real workflow id; one test sends the retry to the real
lifecycle of a lead submitted through ``POST /leads``."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from domain.lead import EventType, Owner, Stage, workflow_id_for
from domain.lifecycle import Attention, LeadState, Origin, RetryRequest, Timer, TimerName
from store import attention as attention_store
from store import leads as lead_store
from store import reps as rep_store
from store import users as user_store
from store.db import Database
from store.models import Lead
from tests.conftest import (
    API_TOKEN,
    AdminUsers,
    Screenshots,
    Stack,
    csrf_of,
    http_login,
    lead_id_of,
    login,
    make_settings,
    serve,
    terminate_open_workflows,
    unique_email,
)
from tests.processes import free_port
from web.app import create_app

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
INSTALLATION = {"Authorization": f"Bearer {API_TOKEN}"}
AVERY = "avery.park@example.com"
JORDAN = "jordan.lee@example.com"


# ------------------------------------------------------------------ a stand-in lifecycle


@workflow.defn(name="FakeLifecycle")
class FakeLifecycle:
    """Answers ``state`` with the state it was started with and records ``retry``
    signals; ends when signalled ``finish``."""

    def __init__(self) -> None:
        self._state: LeadState | None = None
        self._retries: list[RetryRequest] = []
        self._finished = False

    @workflow.run
    async def run(self, state: LeadState) -> None:
        self._state = state
        await workflow.wait_condition(lambda: self._finished)

    @workflow.query(name="state")
    def state(self) -> LeadState | None:
        return self._state

    @workflow.query(name="retries")
    def retries(self) -> list[RetryRequest]:
        return self._retries

    @workflow.signal(name="retry")
    def retry(self, request: RetryRequest) -> None:
        self._retries.append(request)

    @workflow.signal(name="finish")
    def finish(self) -> None:
        self._finished = True


@dataclass
class Site:
    db: Database
    client: Client
    http: httpx.AsyncClient
    base_url: str
    task_queue: str

    async def lifecycle(self, state: LeadState) -> WorkflowHandle[Any, Any]:
        """Start the stand-in lifecycle of ``state.lead_id`` under its real workflow id."""
        return await self.client.start_workflow(
            "FakeLifecycle",
            state,
            id=workflow_id_for(state.lead_id),
            task_queue=self.task_queue,
        )


@pytest.fixture
async def site(
    db: Database, client: Client, task_queue: str, tmp_path: Path, admin_users: AdminUsers
) -> AsyncIterator[Site]:
    """The web app over real HTTP and a worker of the stand-in lifecycle."""
    settings = make_settings(
        data_dir=tmp_path,
        database_url=db.url,
        temporal_task_queue=task_queue,
        api_token=API_TOKEN,
    )
    app = create_app(settings, db, client, API_TOKEN)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[FakeLifecycle],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    async with worker, serve(app) as http:
        try:
            yield Site(db, client, http, str(http.base_url), task_queue)
        finally:
            await terminate_open_workflows(client, task_queue)


# ------------------------------------------------------------------ leads that failed

NOW = datetime.now(UTC).replace(microsecond=0)
CRM_REFUSED = Attention(
    step="crm",
    error="CrmValidationError",
    message="Salesforce refused the record: Phone: invalid format (+49 30 ABC)",
    at=NOW - timedelta(minutes=12),
)
NOTIFY_FAILED = Attention(
    step="notify",
    error="SlackChannelNotFound",
    message="channel_not_found: #sales-emea was archived",
    at=NOW - timedelta(minutes=3),
)


def decision(rep: str, pool: str = "Inbound", version: int = 3) -> dict[str, Any]:
    """A routing decision as ``assign_lead`` stores it (enough for the lead's page)."""
    return {
        "owner": None,
        "team": pool,
        "rule": "North America",
        "reason": f"rule 'North America': pool '{pool}' (round_robin) chose {rep}",
        "rep": rep,
        "pool": pool,
        "config_version": version,
        "explanation": {
            "config_version": version,
            "rule": "North America",
            "rules_tested": 2,
            "conditions": [
                {
                    "field": "country",
                    "op": "in",
                    "value": ["US", "CA"],
                    "lead_value": "US",
                    "matched": True,
                },
            ],
            "pool": {
                "name": pool,
                "strategy": "round_robin",
                "state_before": {AVERY: 0.0, JORDAN: 0.5},
                "state_after": {AVERY: -1.0, JORDAN: 1.5},
                "skipped": [],
            },
            "chosen": rep,
        },
    }


def seed_lead(
    db: Database,
    *,
    first_name: str,
    last_name: str,
    company: str,
    failed: list[Attention],
    owner: str | None = AVERY,
    stage: Stage = Stage.assigned,
    received: datetime = NOW - timedelta(hours=2),
) -> str:
    """A lead routed to ``owner`` whose ``failed`` steps failed for good (flagged when
    there are any), with its timeline; its id."""
    email = unique_email(first_name.lower())
    lead_id = lead_id_of(email)
    with db.session() as session:
        rep = next((r for r in rep_store.list_reps(session) if r.email == owner), None)
        routing = decision(owner) if owner else None
        session.add(
            Lead(
                id=lead_id,
                workflow_id=workflow_id_for(lead_id),
                email=email,
                stage=stage.value,
                score=72,
                grade="hot",
                owner_rep_id=rep.id if rep else None,
                data={
                    "email": email,
                    "first_name": first_name,
                    "last_name": last_name,
                    "company": company,
                    "title": "VP Sales",
                    "country": "US",
                    "company_size": 250,
                    "source": "webinar",
                },
                received_at=received,
                assigned_at=received + timedelta(seconds=1) if rep else None,
                needs_attention=bool(failed),
                attention=[a.model_dump(mode="json") for a in failed] or None,
                routing={"decision": routing, "facts": {"country": "US"}} if routing else None,
                updated_at=max([received, *(a.at for a in failed)]),
            )
        )
        add = lead_store.add_event
        add(session, lead_id, EventType.captured, stage=Stage.captured, occurred_at=received)
        add(
            session,
            lead_id,
            EventType.scored,
            stage=Stage.scored,
            data={"score": 72, "grade": "hot"},
            occurred_at=received,
        )
        if routing:
            add(
                session,
                lead_id,
                EventType.assigned,
                stage=Stage.assigned,
                data={"rule": routing["rule"], "reason": routing["reason"]},
                occurred_at=received + timedelta(seconds=1),
            )
        for item in failed:
            kind = EventType.crm_sync_failed if item.step == "crm" else EventType.step_failed
            add(
                session,
                lead_id,
                kind,
                data={"step": item.step, "error": item.error, "message": item.message},
                occurred_at=item.at,
            )
    return lead_id


def live_state(lead_id: str, failed: list[Attention]) -> LeadState:
    """What a running lifecycle of a lead routed to Avery Park says about it."""
    return LeadState(
        lead_id=lead_id,
        stage=Stage.assigned,
        score=72,
        grade="hot",
        owner=Owner(rep_id=1, name="Avery Park", email=AVERY),
        origin=Origin.inbound,
        pool="Inbound",
        config_version=3,
        routed=True,
        needs_attention=bool(failed),
        attention=failed,
        timers=[
            Timer(
                name=TimerName.sla_reassign,
                fires_at=NOW + timedelta(hours=3, minutes=30),
                started_at=NOW - timedelta(minutes=30),
                config_version=3,
            ),
            Timer(
                name=TimerName.sla_remind,
                fires_at=NOW + timedelta(minutes=25),
                started_at=NOW - timedelta(minutes=30),
                config_version=3,
            ),
            Timer(
                name=TimerName.stale,
                fires_at=NOW + timedelta(days=14),
                started_at=NOW - timedelta(minutes=30),
                config_version=2,
            ),
        ],
    )


async def retries(handle: WorkflowHandle[Any, Any]) -> list[RetryRequest]:
    """The retry signals the stand-in lifecycle got."""
    found: list[RetryRequest] = await handle.query("retries", result_type=list[RetryRequest])
    return found


def api_token(db: Database, email: str) -> dict[str, str]:
    """A bearer header of a new API token of the user ``email``."""
    with db.session() as session:
        user = user_store.user_by_email(session, email)
        assert user is not None
        _row, token = user_store.create_token(session, user, "test", "test")
    return {"Authorization": f"Bearer {token}"}


def errors(response: httpx.Response) -> dict[str, str]:
    return {d["field"]: d["message"] for d in response.json()["detail"]}


# ------------------------------------------------------------------ the store


def test_needs_attention_reads_newest_failure_first_and_falls_back_to_the_timeline(
    db: Database,
) -> None:
    older = seed_lead(
        db, first_name="Olga", last_name="Old", company="Old Co", failed=[CRM_REFUSED]
    )
    newer = seed_lead(
        db,
        first_name="Nina",
        last_name="New",
        company="New Co",
        failed=[CRM_REFUSED, NOTIFY_FAILED],
    )
    seed_lead(db, first_name="Hal", last_name="Healthy", company="Fine Co", failed=[])
    # Flagged before failed steps were kept with the lead: its timeline tells them.
    legacy = seed_lead(
        db,
        first_name="Lee",
        last_name="Legacy",
        company="Legacy Co",
        failed=[NOTIFY_FAILED.model_copy(update={"at": NOW - timedelta(hours=1)})],
    )
    with db.session() as session:
        row = session.get(Lead, legacy)
        assert row is not None
        row.attention = None

    with db.read() as session:
        page, total = attention_store.needs_attention(session, limit=10, offset=0)
        assert total == 3
        assert [p.lead.id for p in page] == [newer, older, legacy]
        assert [a.step for a in page[0].attention] == ["crm", "notify"]
        assert page[0].failed_at == NOTIFY_FAILED.at
        assert page[0].lead.owner is not None and page[0].lead.owner.name == "Avery Park"
        assert [(a.step, a.error) for a in page[2].attention] == [
            ("notify", "SlackChannelNotFound")
        ]
        second, total = attention_store.needs_attention(session, limit=1, offset=1)
        assert [p.lead.id for p in second] == [older] and total == 3


# ------------------------------------------------------------------ the JSON API


@SQLITE
async def test_the_api_lists_leads_that_need_attention_a_page_at_a_time(
    site: Site, admin_users: AdminUsers
) -> None:
    first = seed_lead(
        site.db, first_name="Ana", last_name="First", company="A Co", failed=[CRM_REFUSED]
    )
    second = seed_lead(
        site.db,
        first_name="Ben",
        last_name="Second",
        company="B Co",
        failed=[NOTIFY_FAILED],
        owner=None,
        stage=Stage.scored,
    )
    seed_lead(site.db, first_name="Cy", last_name="Fine", company="C Co", failed=[])
    viewer = api_token(site.db, admin_users.viewer)

    response = await site.http.get("/api/v1/needs-attention?limit=1", headers=viewer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["total"], body["limit"], body["offset"]) == (2, 1, 0)
    [lead] = body["leads"]
    assert lead["lead_id"] == second  # its step failed last
    assert lead["stage"] == "scored" and lead["owner"] is None
    assert lead["attention"] == [NOTIFY_FAILED.model_dump(mode="json")]
    assert lead["links"] == {
        "lead": f"/leads/{second}",
        "admin": f"/admin/leads/{second}",
        "retry": f"/api/v1/leads/{second}/retry",
    }

    response = await site.http.get("/api/v1/needs-attention?limit=1&offset=1", headers=viewer)
    [lead] = response.json()["leads"]
    assert lead["lead_id"] == first
    assert lead["owner"] == {"name": "Avery Park", "email": AVERY}
    assert datetime.fromisoformat(lead["received_at"]) == NOW - timedelta(hours=2)
    assert lead["attention"][0]["message"] == CRM_REFUSED.message

    everything = (await site.http.get("/api/v1/needs-attention", headers=INSTALLATION)).json()
    assert [item["lead_id"] for item in everything["leads"]] == [second, first]

    too_many = await site.http.get("/api/v1/needs-attention?limit=201", headers=viewer)
    assert too_many.status_code == 422
    assert "200" in errors(too_many)["limit"]
    assert (
        await site.http.get("/api/v1/needs-attention?offset=-1", headers=viewer)
    ).status_code == 422
    assert (await site.http.get("/api/v1/needs-attention")).status_code == 401


@SQLITE
async def test_a_viewer_may_list_but_not_retry(site: Site, admin_users: AdminUsers) -> None:
    lead_id = seed_lead(
        site.db, first_name="Vi", last_name="Ewer", company="V Co", failed=[CRM_REFUSED]
    )
    handle = await site.lifecycle(live_state(lead_id, [CRM_REFUSED]))
    viewer = api_token(site.db, admin_users.viewer)
    assert (await site.http.get("/api/v1/needs-attention", headers=viewer)).status_code == 200
    refused = await site.http.post(f"/api/v1/leads/{lead_id}/retry", headers=viewer)
    assert refused.status_code == 403
    assert "team_lead" in refused.json()["detail"]
    assert await retries(handle) == []


@SQLITE
async def test_a_retry_is_refused_for_unknown_malformed_and_healthy_leads_and_ended_lifecycles(
    site: Site, admin_users: AdminUsers
) -> None:
    lead = api_token(site.db, admin_users.team_lead)

    unknown = await site.http.post(f"/api/v1/leads/{'ab' * 12}/retry", headers=lead)
    assert unknown.status_code == 404
    assert errors(unknown) == {"lead_id": f"no lead with id {'ab' * 12}"}

    for bad in ("not-a-lead", "AB" * 12, "ab" * 13):
        malformed = await site.http.post(f"/api/v1/leads/{bad}/retry", headers=lead)
        assert malformed.status_code == 422, bad
        message = errors(malformed)["lead_id"]
        assert message.startswith("a lead id is 24 characters, each 0-9 or a-f"), message
        assert f"this one has {len(bad)} characters" in message

    healthy = seed_lead(site.db, first_name="Hal", last_name="Healthy", company="H Co", failed=[])
    fine = await site.http.post(f"/api/v1/leads/{healthy}/retry", headers=lead)
    assert fine.status_code == 409
    assert "does not need attention" in errors(fine)["lead_id"]
    assert "it is assigned" in errors(fine)["lead_id"]

    # Flagged, but its lifecycle is gone (never started here) or has finished.
    gone = seed_lead(
        site.db, first_name="Gus", last_name="Gone", company="G Co", failed=[CRM_REFUSED]
    )
    ended = await site.http.post(f"/api/v1/leads/{gone}/retry", headers=lead)
    assert ended.status_code == 409
    assert "has ended" in errors(ended)["lead_id"]
    done = seed_lead(
        site.db, first_name="Dot", last_name="Done", company="D Co", failed=[CRM_REFUSED]
    )
    handle = await site.lifecycle(live_state(done, [CRM_REFUSED]))
    await handle.signal("finish")
    await handle.result()
    finished = await site.http.post(f"/api/v1/leads/{done}/retry", headers=lead)
    assert finished.status_code == 409 and "has ended" in errors(finished)["lead_id"]

    assert (await site.http.post(f"/api/v1/leads/{gone}/retry")).status_code == 401


@SQLITE
async def test_a_retry_signals_the_running_lifecycle_and_is_audited(
    site: Site, admin_users: AdminUsers, caplog: pytest.LogCaptureFixture
) -> None:
    lead_id = seed_lead(
        site.db,
        first_name="Rita",
        last_name="Retry",
        company="R Co",
        failed=[CRM_REFUSED, NOTIFY_FAILED],
    )
    handle = await site.lifecycle(live_state(lead_id, [CRM_REFUSED, NOTIFY_FAILED]))
    team_lead = api_token(site.db, admin_users.team_lead)

    with caplog.at_level(logging.INFO, logger="leadflow.audit"):
        response = await site.http.post(f"/api/v1/leads/{lead_id}/retry", headers=team_lead)
    assert response.status_code == 202, response.text
    assert response.json() == {"lead_id": lead_id, "retrying": ["crm", "notify"]}
    assert await retries(handle) == [RetryRequest(requested_by=admin_users.team_lead)]
    [record] = [r for r in caplog.records if r.name == "leadflow.audit"]
    assert record.__dict__["lead_id"] == lead_id
    assert record.__dict__["actor"] == admin_users.team_lead
    assert record.__dict__["steps"] == "crm,notify"

    # The installation token retries as "api".
    again = await site.http.post(f"/api/v1/leads/{lead_id}/retry", headers=INSTALLATION)
    assert again.status_code == 202
    assert [r.requested_by for r in await retries(handle)] == [admin_users.team_lead, "api"]


@SQLITE
async def test_a_retry_reaches_the_real_lifecycle_of_a_submitted_lead(
    stack: Stack, admin_users: AdminUsers
) -> None:
    response = await stack.submit(email=unique_email("real"), first_name="Rae", company="Real")
    assert response.status_code == 202, response.text
    lead_id = response.json()["lead_id"]
    await stack.wait_for(lead_id)
    with stack.db.session() as session:
        row = session.get(Lead, lead_id)
        assert row is not None
        row.needs_attention = True
        row.attention = [CRM_REFUSED.model_dump(mode="json")]
    team_lead = api_token(stack.db, admin_users.team_lead)

    answer = await stack.http.post(f"/api/v1/leads/{lead_id}/retry", headers=team_lead)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"lead_id": lead_id, "retrying": ["crm"]}
    handle = stack.client.get_workflow_handle(workflow_id_for(lead_id))
    signals = []
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_signaled_event_attributes"):
            attrs = event.workflow_execution_signaled_event_attributes
            if attrs.signal_name == "retry":
                [sent] = await stack.client.data_converter.decode(
                    attrs.input.payloads, [RetryRequest]
                )
                signals.append(sent)
    assert signals == [RetryRequest(requested_by=admin_users.team_lead)]

    # The lifecycle takes it: the retry is on the timeline, under the caller's name.
    deadline = time.monotonic() + 15
    retried: list[dict[str, Any]] = []
    while not retried and time.monotonic() < deadline:
        status = (await stack.http.get(f"/leads/{lead_id}", headers=stack.auth)).json()
        retried = [e for e in status["events"] if e["type"] == "retry_requested"]
        await asyncio.sleep(0.1)
    assert retried, status["events"]
    assert retried[0]["data"]["requested_by"] == admin_users.team_lead


@SQLITE
async def test_a_retry_answers_503_and_the_lead_page_still_renders_when_temporal_is_down(
    db: Database, tmp_path: Path, admin_users: AdminUsers
) -> None:
    lead_id = seed_lead(
        db, first_name="Dora", last_name="Down", company="D Co", failed=[CRM_REFUSED]
    )
    nowhere = f"127.0.0.1:{free_port()}"
    down = await Client.connect(nowhere, lazy=True, data_converter=pydantic_data_converter)
    settings = make_settings(data_dir=tmp_path, database_url=db.url, api_token=API_TOKEN)
    async with serve(create_app(settings, db, down, API_TOKEN)) as http:
        answer = await http.post(f"/api/v1/leads/{lead_id}/retry", headers=INSTALLATION)
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"
        assert "nothing was retried" in errors(answer)["lead_id"]

        await http_login(http, admin_users.admin, admin_users.password)
        started = time.monotonic()
        page = await http.get(f"/admin/leads/{lead_id}")
        assert time.monotonic() - started < 4
        assert page.status_code == 200
        assert "not answering" in page.text and "Timers are not available" in page.text
        assert CRM_REFUSED.message in page.text


# ------------------------------------------------------------------ the admin pages


async def retry_form(http: httpx.AsyncClient, page: str, lead_id: str) -> httpx.Response:
    token = csrf_of((await http.get(page)).text)
    return await http.post(
        f"/admin/needs-attention/{lead_id}/retry", data={"csrf_token": token, "back": "list"}
    )


@SQLITE
async def test_the_needs_attention_page_shows_retry_to_team_leads_only_and_checks_csrf(
    site: Site, admin_users: AdminUsers
) -> None:
    lead_id = seed_lead(
        site.db, first_name="Pia", last_name="Page", company="P Co", failed=[CRM_REFUSED]
    )
    handle = await site.lifecycle(live_state(lead_id, [CRM_REFUSED]))
    http = site.http
    action = f'action="/admin/needs-attention/{lead_id}/retry"'

    await http_login(http, admin_users.viewer, admin_users.password)
    page = await http.get("/admin/needs-attention")
    assert page.status_code == 200
    assert "Pia Page" in page.text and CRM_REFUSED.message in page.text
    assert "Sync to the CRM" in page.text
    assert action not in page.text
    assert 'href="/admin/needs-attention"' in page.text  # in the navigation
    refused = await retry_form(http, "/admin/needs-attention", lead_id)
    assert refused.status_code == 403 and "team lead role" in refused.text

    http.cookies.clear()
    await http_login(http, admin_users.admin, admin_users.password)
    page = await http.get("/admin/needs-attention")
    assert action in page.text
    no_token = await http.post(f"/admin/needs-attention/{lead_id}/retry", data={"back": "list"})
    assert no_token.status_code == 403 and "security token" in no_token.text
    assert await retries(handle) == []

    sent = await retry_form(http, "/admin/needs-attention", lead_id)
    assert sent.status_code == 303 and sent.headers["location"] == "/admin/needs-attention"
    shown = await http.get("/admin/needs-attention")
    assert "Retry sent: the lifecycle of Pia Page runs “Sync to the CRM” again" in shown.text
    assert await retries(handle) == [RetryRequest(requested_by=admin_users.admin)]

    # A lead whose lifecycle has ended: the flash says why nothing happened.
    gone = seed_lead(
        site.db, first_name="Gus", last_name="Gone", company="G Co", failed=[NOTIFY_FAILED]
    )
    await retry_form(http, "/admin/needs-attention", gone)
    shown = await http.get("/admin/needs-attention")
    assert "Nothing was retried: the lifecycle of lead" in shown.text
    assert "flash-error" in shown.text

    # From the lead's page, the button leads back to it.
    token = csrf_of((await http.get(f"/admin/leads/{lead_id}")).text)
    back = await http.post(
        f"/admin/needs-attention/{lead_id}/retry", data={"csrf_token": token, "back": "lead"}
    )
    assert back.status_code == 303 and back.headers["location"] == f"/admin/leads/{lead_id}"
    missing = await retry_form(http, "/admin/needs-attention", "nope")
    assert missing.status_code == 404


@SQLITE
async def test_the_page_says_when_nothing_needs_attention(
    site: Site, admin_users: AdminUsers
) -> None:
    await http_login(site.http, admin_users.viewer, admin_users.password)
    page = await site.http.get("/admin/needs-attention")
    assert page.status_code == 200 and "Nothing needs attention" in page.text


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A page of its own browser context; the pages it shows break no CSP rule."""
    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    opened = await context.new_page()
    refused: list[str] = []
    opened.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield opened
    await context.close()
    assert refused == []


@SQLITE
async def test_a_team_lead_retries_a_failed_lead_from_the_needs_attention_page(
    site: Site, admin_users: AdminUsers, page: Page, screenshots: Screenshots
) -> None:
    jana = seed_lead(
        site.db, first_name="Jana", last_name="Novak", company="Novak GmbH", failed=[CRM_REFUSED]
    )
    marco = seed_lead(
        site.db,
        first_name="Marco",
        last_name="Rossi",
        company="Rossi & Figli",
        failed=[CRM_REFUSED.model_copy(update={"at": NOW - timedelta(minutes=40)}), NOTIFY_FAILED],
        owner=JORDAN,
    )
    handles = {lead_id: await site.lifecycle(live_state(lead_id, [])) for lead_id in (jana, marco)}
    await login(page, site.base_url, admin_users.team_lead, admin_users.password)
    await page.goto(f"{site.base_url}/admin/needs-attention")
    await expect(page.get_by_role("heading", name="Needs attention", exact=True)).to_be_visible()
    rows = page.locator("table.attention-table tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_have_id(f"lead-{marco}")  # its step failed last
    await expect(rows.first.locator(".failure-step")).to_have_text(
        ["Sync to the CRM", "Notify the owner"]
    )
    await expect(rows.first.locator("td.owner")).to_have_text("Jordan Lee")
    await expect(page.locator(f"#lead-{jana} .failure-message")).to_have_text(CRM_REFUSED.message)
    await expect(page.locator("nav .nav-item.active")).to_have_text("Needs attention")
    await screenshots.take(page, "needs-attention")

    await page.get_by_role("button", name="Retry the failed steps of Jana Novak").click()
    await expect(page.locator(".flash-ok")).to_contain_text(
        "Retry sent: the lifecycle of Jana Novak runs “Sync to the CRM” again"
    )
    assert page.url.endswith("/admin/needs-attention")
    await screenshots.take(page, "needs-attention-retried")
    assert await retries(handles[jana]) == [RetryRequest(requested_by=admin_users.team_lead)]
    assert await retries(handles[marco]) == []

    # A viewer reads the same list, without the buttons.
    await page.context.clear_cookies()
    await login(page, site.base_url, admin_users.viewer, admin_users.password)
    await page.goto(f"{site.base_url}/admin/needs-attention")
    await expect(page.locator("table.attention-table tbody tr")).to_have_count(2)
    await expect(page.get_by_role("button", name=re.compile("^Retry"))).to_have_count(0)


@SQLITE
async def test_the_lead_page_shows_the_running_lifecycle_with_its_timers_and_failed_steps(
    site: Site, admin_users: AdminUsers, page: Page, screenshots: Screenshots
) -> None:
    lead_id = seed_lead(
        site.db, first_name="Jana", last_name="Novak", company="Novak GmbH", failed=[CRM_REFUSED]
    )
    handle = await site.lifecycle(live_state(lead_id, [CRM_REFUSED]))
    await login(page, site.base_url, admin_users.admin, admin_users.password)
    await page.goto(f"{site.base_url}/admin/leads/{lead_id}")
    panel = page.locator("section.lifecycle")
    await expect(panel.locator(".live")).to_have_text("running")
    await expect(panel.locator(".lifecycle-facts")).to_contain_text("Inbound (web form)")
    await expect(panel.locator(".lifecycle-owner")).to_have_text(
        "Avery Park <avery.park@example.com>"
    )
    timers = panel.locator("li.timer")
    await expect(timers).to_have_count(3)
    # The next one first: relative and absolute time, and where its duration came from.
    first = timers.first
    await expect(first).to_have_id("timer-sla_remind")
    # Relative to the wall clock when the page renders (a slow machine takes minutes).
    await expect(first.locator(".timer-in")).to_have_text(re.compile(r"^in (1?[0-9]|2[0-5]) min$"))
    remind_at = NOW + timedelta(minutes=25)
    await expect(first.locator("time")).to_have_text(remind_at.strftime("%a %d %b %Y, %H:%M UTC"))
    await expect(first).to_contain_text("from configuration version 3")
    await expect(first.locator(".badge.next")).to_be_visible()
    await expect(timers.nth(2)).to_contain_text("from configuration version 2")
    await expect(panel.locator(".failure-message")).to_have_text(CRM_REFUSED.message)
    await expect(page.locator("ol.timeline")).to_contain_text("CRM sync failed")
    await screenshots.take(page, "lead-lifecycle")

    await panel.get_by_role("button", name="Retry failed steps").click()
    await expect(page.locator(".flash-ok")).to_contain_text("Retry sent")
    assert page.url.endswith(f"/admin/leads/{lead_id}")
    assert await retries(handle) == [RetryRequest(requested_by=admin_users.admin)]

    # A viewer sees the panel without the button.
    await page.context.clear_cookies()
    await login(page, site.base_url, admin_users.viewer, admin_users.password)
    await page.goto(f"{site.base_url}/admin/leads/{lead_id}")
    await expect(page.locator("section.lifecycle li.timer")).to_have_count(3)
    await expect(page.get_by_role("button", name="Retry failed steps")).to_have_count(0)


@SQLITE
async def test_the_lead_page_says_when_the_lifecycle_has_ended_or_does_not_answer(
    site: Site, admin_users: AdminUsers, page: Page, screenshots: Screenshots
) -> None:
    ended = seed_lead(
        site.db, first_name="Ed", last_name="Ended", company="E Co", failed=[CRM_REFUSED]
    )
    await login(page, site.base_url, admin_users.admin, admin_users.password)
    await page.goto(f"{site.base_url}/admin/leads/{ended}")
    panel = page.locator("section.lifecycle")
    await expect(panel.locator(".live")).to_have_text("ended")
    await expect(panel.locator(".timers-note")).to_have_text("No timers: the lifecycle has ended.")
    await expect(panel.locator(".lifecycle-owner")).to_have_text(
        "Avery Park <avery.park@example.com>"
    )
    await expect(panel).to_contain_text("version 3")
    await expect(panel.locator(".failure-message")).to_have_text(CRM_REFUSED.message)
    await expect(panel.get_by_role("button", name="Retry failed steps")).to_have_count(0)
    await screenshots.take(page, "lead-lifecycle-ended")

    # A lifecycle nobody runs (no worker on its task queue) does not answer the query.
    silent = seed_lead(
        site.db, first_name="Sil", last_name="Ent", company="S Co", failed=[CRM_REFUSED]
    )
    nobody = f"nobody-{uuid.uuid4().hex[:8]}"
    handle = await site.client.start_workflow(
        "FakeLifecycle", live_state(silent, []), id=workflow_id_for(silent), task_queue=nobody
    )
    try:
        started = time.monotonic()
        await page.goto(f"{site.base_url}/admin/leads/{silent}")
        assert time.monotonic() - started < 4
        await expect(panel.locator(".live")).to_have_text("not answering")
        await expect(panel.locator(".timers-note")).to_contain_text("Timers are not available")
        await expect(panel.locator(".failure-message")).to_have_text(CRM_REFUSED.message)
        # The signal is kept for the lifecycle, so the button stays.
        await expect(panel.get_by_role("button", name="Retry failed steps")).to_be_visible()
    finally:
        await handle.terminate("test over")
