"""The whole lead lifecycle on the real Temporal dev server, one scenario per path of
LIFECYCLE.md: events through ``POST /leads/{id}/events``, timers from the published
configuration in seconds."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from temporalio.client import Client, WorkflowExecutionStatus

from connectors.base import InvalidRecord
from connectors.local import LocalCRM
from domain.crm import CrmLeadData, CrmLeadRef, LeadStatus
from domain.lead import Stage, workflow_id_for
from domain.stages import allowed_events
from store.db import Database
from store.models import LeadEvent, Notification
from store.models_crm import CrmConversion, CrmRecord, CrmTaskRow
from tests.conftest import (
    API_TOKEN,
    LEAD_ID_SECRET,
    Stack,
    make_settings,
    running_stack,
    serve,
    terminate_open_workflows,
)
from tests.lifecycle_support import (
    at,
    completed,
    crm_record,
    email,
    event,
    eventually,
    eventually_async,
    inbound_reps,
    lead,
    new_lead,
    notifications,
    of_type,
    pool,
    publish,
    send,
    types,
    until,
)
from tests.processes import Processes, kill_tree, leadflow_env
from web.app import create_app

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

MANAGER = "morgan.hale@example.com"
NURTURE_LIST = "Leadflow nurture"


async def test_inbound_lead_goes_all_the_way_to_account_management(stack: Stack) -> None:
    publish(stack)
    lead_id = await new_lead(stack)
    assert (await event(stack, lead_id, "contacted"))["stage"] == "contacted"
    assert (await event(stack, lead_id, "meeting_booked"))["stage"] == "meeting_booked"
    assert (await event(stack, lead_id, "qualified"))["stage"] == "qualified"
    assert (await event(stack, lead_id, "proposal_sent"))["stage"] == "proposal"
    assert (await event(stack, lead_id, "negotiation_started"))["stage"] == "negotiation"
    won = await event(stack, lead_id, "won", amount="12500.00", currency="eur")
    assert won["stage"] == "won"
    body = await until(stack, lead_id, lambda b: b["stage"] == "handed_off", what="handed off")
    seen = types(body)
    for step in ("converted", "account_manager_assigned", "onboarding_tasks_created"):
        assert step in seen, seen
    assert "win_announced" in seen and "handed_off" in seen
    handed = next(e for e in body["events"] if e["type"] == "handed_off")
    assert handed["data"]["account_manager"] == "riley.chen@example.com"
    assert handed["data"]["cycle_days"] >= 0
    with stack.db.session() as session:
        assert session.scalar(select(func.count()).select_from(CrmConversion)) == 1
        assert session.scalar(select(func.count()).select_from(CrmTaskRow)) == 2
        wins = session.scalar(
            select(func.count()).select_from(Notification).where(Notification.kind == "win")
        )
        assert wins == 1


# ------------------------------------------------------------------------- 1. SLA


async def test_sla_miss_reminds_reassigns_then_escalates_to_the_manager(stack: Stack) -> None:
    publish(stack, remind="1s", reassign="2s", escalate="3s", max_reassignments=1)
    lead_id = await new_lead(stack)
    first = (await lead(stack, lead_id))["owner"]["email"]
    body = await until(
        stack, lead_id, lambda b: of_type(b, "sla_escalated"), within=15, what="escalated"
    )
    seen = types(body)
    reminded = of_type(body, "sla_reminded")
    reassigned = of_type(body, "reassigned")
    assert len(reassigned) == 1, seen
    moved = reassigned[0]["data"]
    assert moved["from"] == first and moved["to"] not in (None, first), moved
    second = moved["to"]
    # Reminded before the reassignment (the first owner), then the new owner.
    assert [r["data"]["owner"] for r in reminded] == [first, second], reminded
    assert all(r["data"]["elapsed_s"] >= 1 for r in reminded), reminded
    assert seen.index("sla_reminded") < seen.index("reassigned") < seen.index("sla_escalated")
    escalated = of_type(body, "sla_escalated")
    assert len(escalated) == 1 and escalated[0]["data"]["notified"] == MANAGER, escalated
    assert escalated[0]["data"]["owner"] == second
    assert body["owner"]["email"] == second and body["reassignments"] == 1
    escalations = notifications(stack.db, lead_id, "sla_escalation")
    assert [n.recipient for n in escalations] == [MANAGER]
    # max_reassignments 1: nothing further moves the lead, least of all back to the first.
    assert not [t for t in body["timers"] if t["name"].startswith("sla_")], body["timers"]
    await asyncio.sleep(1.5)
    after = await lead(stack, lead_id)
    assert after["owner"]["email"] == second
    assert all(e["data"].get("to") != first for e in after["events"] if e["type"] == "reassigned")
    assert len(of_type(after, "sla_escalated")) == 1


# ------------------------------------------------------------------------- 7. refusals


async def test_events_that_do_not_apply_or_are_malformed_are_refused(stack: Stack) -> None:
    publish(stack)
    lead_id = await new_lead(stack)

    refused = await send(stack, lead_id, "won", amount="10.00", currency="EUR")
    assert refused.status_code == 409, refused.text
    conflict = refused.json()
    assert conflict["stage"] == "assigned"
    assert conflict["allowed_events"] == allowed_events(Stage.assigned)
    assert "won" not in conflict["allowed_events"] and "contacted" in conflict["allowed_events"]
    assert "assigned" in conflict["detail"][0]["message"]

    malformed: list[tuple[dict[str, object], str]] = [
        ({"type": "lost"}, "reason"),
        ({"type": "won", "amount": "10.00", "currency": "euro"}, "currency"),
        ({"type": "won", "amount": "10.00"}, "currency"),
        ({"type": "teleported"}, "type"),
        ({"type": "contacted", "colour": "blue"}, "colour"),
        ({"type": "engagement"}, "kind"),
        ({"reason": "no type"}, "type"),
    ]
    for body, field in malformed:
        response = await stack.http.post(f"/leads/{lead_id}/events", json=body, headers=stack.auth)
        assert response.status_code == 422, (body, response.text)
        fields = [d["field"] for d in response.json()["detail"]]
        assert field in fields, (body, response.json())

    unknown = await send(stack, "0" * 24, "contacted")
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["detail"][0]["field"] == "lead_id"
    # Nothing of the refused events reached the lead.
    body = await lead(stack, lead_id)
    assert body["stage"] == "assigned"
    assert not {"won", "lost", "contacted"} & set(types(body))


# ------------------------------------------------------------------------- 8. event ids


async def test_the_same_event_id_twice_is_applied_once(stack: Stack) -> None:
    publish(stack)
    lead_id = await new_lead(stack)
    first = await send(stack, lead_id, "contacted", event_id="call-42")
    again = await send(stack, lead_id, "contacted", event_id="call-42")
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    one, two = first.json(), again.json()
    assert one["applied"] is True
    assert one["stage"] == two["stage"] == "contacted"
    assert one["event_id"] == two["event_id"] == "call-42"
    assert two["previous_stage"] == "assigned"
    body = await lead(stack, lead_id)
    assert types(body).count("contacted") == 1, types(body)
    # A new id for the same type is a new event, refused in the stage it now has.
    other = await send(stack, lead_id, "contacted", event_id="call-43")
    assert other.status_code == 409 and other.json()["stage"] == "contacted", other.text


async def test_the_second_answer_to_a_repeated_event_says_not_applied(stack: Stack) -> None:
    publish(stack)
    lead_id = await new_lead(stack)
    await event(stack, lead_id, "contacted", event_id="call-7")
    again = await event(stack, lead_id, "contacted", event_id="call-7")
    assert again["applied"] is False, again


# ------------------------------------------------------------------------- 2. business hours


def zone_at(hour: int, now: datetime) -> str:
    """A fixed-offset timezone in which it is ``hour`` o'clock ``now``."""
    offset = (hour - now.astimezone(UTC).hour) % 24
    if offset > 14:
        offset -= 24
    # Etc/GMT-5 is UTC+5: the sign is POSIX's.
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


async def test_business_hours_move_the_sla_to_the_next_opening(stack: Stack) -> None:
    now = datetime.now(UTC)
    night = zone_at(22, now)  # outside the default hours (mon-fri 09:00-17:00) every day
    # Casey works one minute a day, about twelve hours from now.
    window = (now + timedelta(hours=12)).replace(second=0, microsecond=0)
    if window.time() >= time(23, 59):
        window -= timedelta(minutes=2)
    casey = {
        "email": "casey.north@example.com",
        "name": "Casey North",
        "working_hours": {
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": window.strftime("%H:%M"),
            "end": (window + timedelta(minutes=1)).strftime("%H:%M"),
        },
    }

    def at_night(config: dict[str, Any]) -> None:
        pool(config)["sla"]["business_hours"] = True
        for rep in inbound_reps(config):
            rep["timezone"] = night  # no working_hours: the default hours count
        config["reps"].append(casey)

    publish(stack, at_night, remind="1s", reassign="2s", escalate="3s")
    lead_id = await new_lead(stack)
    body = await lead(stack, lead_id)
    timers = {t["name"]: t for t in body["timers"]}
    assert {"sla_remind", "sla_reassign", "sla_escalate"} <= set(timers), body["timers"]
    for name, seconds in (("sla_remind", 1), ("sla_reassign", 2), ("sla_escalate", 3)):
        fires = at(timers[name]["fires_at"])
        assert fires - datetime.now(UTC) > timedelta(hours=1), (name, timers[name])
        local = fires.astimezone(ZoneInfo(night))
        # The next opening (a weekday at 09:00 in the rep's zone) plus the duration.
        assert local.weekday() < 5 and local.time() == time(9, 0, seconds), (name, local)

    # Given to Casey, the SLA waits for Casey's minute.
    moved = await event(stack, lead_id, "reassign", to=casey["email"])
    assert moved["owner_email"] == casey["email"], moved
    body = await lead(stack, lead_id)
    timers = {t["name"]: t for t in body["timers"]}
    assert at(timers["sla_remind"]["fires_at"]) == window + timedelta(seconds=1), timers
    assert at(timers["sla_escalate"]["fires_at"]) == window + timedelta(seconds=3), timers

    await asyncio.sleep(3.5)  # past every wall-clock duration
    body = await lead(stack, lead_id)
    assert not {"sla_reminded", "sla_escalated"} & set(types(body)), types(body)
    assert [e["data"]["why"] for e in of_type(body, "reassigned")] == ["reassign"]
    assert body["owner"]["email"] == casey["email"]

    # Hours that cover now: the reminder fires after its wall duration, as without them.
    noon = zone_at(12, datetime.now(UTC))
    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    def at_noon(config: dict[str, Any]) -> None:
        pool(config)["sla"]["business_hours"] = True
        for rep in inbound_reps(config):
            rep["timezone"] = noon
            rep["working_hours"] = {"days": every_day, "start": "06:00", "end": "18:00"}

    publish(stack, at_noon, remind="1s", reassign="2s", escalate="3s")
    second = await new_lead(stack)
    reminded = await until(
        stack, second, lambda b: of_type(b, "sla_reminded"), within=8, what="reminded"
    )
    data = of_type(reminded, "sla_reminded")[0]["data"]
    assert data["business_hours"] is True and 1 <= data["elapsed_s"] < 5, data


# ------------------------------------------------------------------------- 3. nurture


async def test_no_meeting_nurtures_then_engagement_recycles(stack: Stack) -> None:
    publish(stack, no_meeting="2s", recycle_score=8)
    lead_id = await new_lead(stack)
    first = await lead(stack, lead_id)
    assert first["score"] == 0, first["score"]  # no fit points: engagement decides
    assert any(t["name"] == "no_meeting" for t in first["timers"]), first["timers"]
    body = await until(
        stack, lead_id, lambda b: b["stage"] == "nurturing", within=8, what="nurtured"
    )
    started = of_type(body, "nurture_started")
    assert len(started) == 1 and "no meeting" in started[0]["data"]["nurture_reason"], started
    assert [t["name"] for t in body["timers"]] == ["cool_off"], body["timers"]
    assert at(body["timers"][0]["fires_at"]) - datetime.now(UTC) > timedelta(days=29)
    # The CRM is updated after the stage is recorded: wait for it.
    record = await eventually(
        lambda: crm_record(stack.db, lead_id, lambda r: bool(r.nurture_lists)), "on the list"
    )
    assert record.nurture_lists == [NURTURE_LIST] and record.status == "nurturing", record

    clicked = await event(stack, lead_id, "engagement", kind="link_clicked")
    assert clicked["stage"] == "nurturing" and clicked["score"] == 5, clicked
    again = await event(stack, lead_id, "engagement", kind="link_clicked")
    assert again["score"] == 10, again  # over the recycle score of 8
    body = await until(
        stack, lead_id, lambda b: b["stage"] == "assigned" and b["recycles"] == 1, what="back"
    )
    recycled = of_type(body, "recycled")
    assert len(recycled) == 1, types(body)
    assert "engagement" in recycled[0]["data"]["by"], recycled
    owner = body["owner"]["email"]
    assert recycled[0]["data"]["to"] == owner
    after = crm_record(stack.db, lead_id)
    assert after is not None and NURTURE_LIST not in (after.nurture_lists or []), after
    assert after.status == "open", after.status
    # The owner hears that the lead is theirs again (a recycle is routed afresh).
    told = [n.recipient for n in notifications(stack.db, lead_id, "reassigned")]
    assert told == [owner], (first["owner"]["email"], told)


# ------------------------------------------------------------------------- 4. disqualify


async def test_disqualified_lead_leaves_the_list_and_the_lifecycle_ends(stack: Stack) -> None:
    publish(stack)
    lead_id = await new_lead(stack)
    assert (await event(stack, lead_id, "no_response"))["stage"] == "nurturing"
    record = await eventually(
        lambda: crm_record(stack.db, lead_id, lambda r: bool(r.nurture_lists)), "on the list"
    )
    assert record.nurture_lists == [NURTURE_LIST]
    out = await event(stack, lead_id, "disqualified", reason="no budget this year")
    assert out["stage"] == "disqualified" and out["previous_stage"] == "nurturing", out
    final = crm_record(stack.db, lead_id)
    assert final is not None
    assert (final.status, final.status_reason) == ("disqualified", "no budget this year")
    assert NURTURE_LIST not in (final.nurture_lists or [])

    handle = stack.client.get_workflow_handle(workflow_id_for(lead_id))
    status = await eventually_async(lambda: completed(handle), "the workflow completed", within=10)
    assert status == WorkflowExecutionStatus.COMPLETED
    body = await lead(stack, lead_id)
    assert body["stage"] == "disqualified" and "lifecycle_closed" in types(body)
    late = await send(stack, lead_id, "contacted")
    assert late.status_code == 409, late.text
    assert late.json()["stage"] == "disqualified" and late.json()["allowed_events"] == []


# ------------------------------------------------------------------------- 5. lost


async def test_lost_deal_goes_to_nurture_and_comes_back_after_its_cool_off(stack: Stack) -> None:
    publish(stack, lost_cool_off="2s")
    lead_id = await new_lead(stack)
    for type_, stage in [
        ("contacted", "contacted"),
        ("meeting_booked", "meeting_booked"),
        ("qualified", "qualified"),
        ("proposal_sent", "proposal"),
        ("negotiation_started", "negotiation"),
    ]:
        assert (await event(stack, lead_id, type_))["stage"] == stage
    lost = await event(stack, lead_id, "lost", reason="went with a competitor")
    assert lost["stage"] == "nurturing" and lost["previous_stage"] == "negotiation", lost
    body = await lead(stack, lead_id)
    assert "lost" in types(body) and "nurture_started" in types(body), types(body)
    assert of_type(body, "lost")[0]["data"]["reason"] == "went with a competitor"
    cool = [t for t in body["timers"] if t["name"] == "cool_off"]
    assert len(cool) == 1, body["timers"]
    waited = at(cool[0]["fires_at"]) - at(cool[0]["started_at"])
    assert waited == timedelta(seconds=2), cool  # the lost cool-off, not the 30d one
    record = crm_record(stack.db, lead_id)
    assert record is not None and record.nurture_lists == [NURTURE_LIST]
    body = await until(
        stack, lead_id, lambda b: b["stage"] == "assigned" and b["recycles"] == 1, what="back"
    )
    recycled = of_type(body, "recycled")
    assert len(recycled) == 1 and "cool-off" in recycled[0]["data"]["by"], recycled
    # The CRM is updated after the new owner is recorded: wait for it.
    await eventually(
        lambda: (
            (r := crm_record(stack.db, lead_id)) is not None
            and NURTURE_LIST not in (r.nurture_lists or [])
        ),
        "off the nurture list in the CRM",
    )


# ------------------------------------------------------------------------- 6. outbound


async def test_outbound_lead_enters_assigned_to_the_rep_who_found_it(stack: Stack) -> None:
    publish(stack)
    rep = "jordan.lee@example.com"
    fields = {"email": email(), "company": "Initrode", "source": "outbound"}
    response = await stack.http.post(
        "/leads", json={**fields, "owner_email": rep}, headers=stack.auth
    )
    assert response.status_code == 202, response.text
    lead_id = response.json()["lead_id"]
    body = await stack.wait_for(lead_id, notified=False)
    assert body["owner"]["email"] == rep
    body = await lead(stack, lead_id)
    assert body["origin"] == "outbound"
    assert not [t for t in body["timers"] if t["name"].startswith("sla_")], body["timers"]
    for type_, stage in [
        ("contacted", "contacted"),
        ("meeting_booked", "meeting_booked"),
        ("presentation_held", "presentation"),
        ("presentation_failed", "nurturing"),
    ]:
        assert (await event(stack, lead_id, type_))["stage"] == stage
    body = await lead(stack, lead_id)
    assert body["stage"] == "nurturing" and body["owner"]["email"] == rep

    for extra, headers, status in [
        ({"owner_email": "nobody@example.com"}, stack.auth, 422),
        ({}, stack.auth, 422),
        ({"owner_email": "  "}, stack.auth, 422),
        ({"owner_email": rep}, {}, 401),
    ]:
        refused = await stack.http.post(
            "/leads", json={**fields, "email": email(), **extra}, headers=headers
        )
        assert refused.status_code == status, (extra, refused.text)
        assert refused.json()["detail"][0]["field"] == "owner_email", refused.json()


# ------------------------------------------------------------------------- 9. bounded


async def test_five_nurture_loops_keep_the_history_short(stack: Stack) -> None:
    publish(stack, no_meeting="1s", cool_off="1s")
    lead_id = await new_lead(stack)
    handle = stack.client.get_workflow_handle(workflow_id_for(lead_id))
    first_run = (await handle.describe()).run_id
    body = await until(
        stack, lead_id, lambda b: b.get("recycles", 0) >= 5, within=30, what="recycled 5 times"
    )
    assert len(of_type(body, "recycled")) >= 5
    assert len(of_type(body, "nurture_started")) >= 5
    latest = await handle.describe()
    assert latest.run_id != first_run
    assert latest.status == WorkflowExecutionStatus.RUNNING
    history = await stack.client.get_workflow_handle(
        handle.id, run_id=latest.run_id
    ).fetch_history()
    assert len(history.events) < 200, len(history.events)


# ------------------------------------------------------------------------- 10. attention


class RefusingCRM(LocalCRM):
    """The local CRM, refusing the calls named in ``refusing`` for good (as a CRM refuses
    a record it finds invalid) until they are taken out of it."""

    def __init__(self, db: Database, refusing: set[str]) -> None:
        super().__init__(db)
        self.refusing = refusing
        self.refused: list[str] = []

    def _gate(self, call: str) -> None:
        if call in self.refusing:
            self.refused.append(call)
            raise InvalidRecord(
                "refused", vendor_message="FIELD_CUSTOM_VALIDATION_EXCEPTION: region required"
            )

    def upsert_lead(self, lead: CrmLeadData, idempotency_key: str) -> CrmLeadRef:
        self._gate("upsert_lead")
        return super().upsert_lead(lead, idempotency_key)

    def set_status(self, crm_id: str, status: LeadStatus, reason: str | None) -> None:
        self._gate("set_status")
        super().set_status(crm_id, status, reason)


@contextlib.asynccontextmanager
async def refusing_stack(
    client: Client, db: Database, task_queue: str, tmp_path: Path, refusing: set[str]
) -> AsyncIterator[tuple[Stack, RefusingCRM]]:
    crm = RefusingCRM(db, refusing)
    async with running_stack(client, db, task_queue, tmp_path, crm=crm) as stack:
        yield stack, crm


async def retry(stack: Stack, lead_id: str) -> dict[str, Any]:
    response = await stack.http.post(f"/api/v1/leads/{lead_id}/retry", headers=stack.auth)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def flagged(b: dict[str, Any]) -> bool:
    return bool(b["needs_attention"] and b.get("attention"))


async def test_crm_refusal_parks_the_lead_until_a_retry(
    client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    async with refusing_stack(client, db, task_queue, tmp_path, {"upsert_lead"}) as (stack, crm):
        publish(stack)
        lead_id = await new_lead(stack)  # routed and its owner told, CRM or not
        body = await until(stack, lead_id, flagged, within=10, what="flagged")
        assert [a["step"] for a in body["attention"]] == ["crm"], body["attention"]
        assert "region required" in body["attention"][0]["message"]
        assert crm_record(stack.db, lead_id) is None and crm.refused

        crm.refusing.clear()
        assert (await retry(stack, lead_id))["retrying"] == ["crm"]
        body = await until(
            stack,
            lead_id,
            lambda b: not b["needs_attention"] and not b["attention"] and b["crm_id"],
            what="retried",
        )
        record = crm_record(stack.db, lead_id)
        assert record is not None and record.id == body["crm_id"]
        assert record.owner_id is not None
        assert "retry_requested" in types(body)


async def test_crm_status_refusal_retried_brings_the_crm_in_line(
    client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    async with refusing_stack(client, db, task_queue, tmp_path, set()) as (stack, crm):
        publish(stack)
        lead_id = await new_lead(stack)
        await eventually(lambda: crm_record(stack.db, lead_id), "in the CRM")
        crm.refusing.add("set_status")
        assert (await event(stack, lead_id, "no_response"))["stage"] == "nurturing"
        body = await until(stack, lead_id, flagged, within=10, what="flagged")
        assert [a["step"] for a in body["attention"]] == ["crm"], body["attention"]

        crm.refusing.clear()
        await retry(stack, lead_id)
        await until(stack, lead_id, lambda b: not b["needs_attention"], what="retried")
        record = await eventually(
            lambda: crm_record(stack.db, lead_id, lambda r: r.status != "open"),
            "the CRM shows the lead nurtured",
            within=2,
        )
        assert record.status == "nurturing" and record.nurture_lists == [NURTURE_LIST]


async def test_won_lead_without_an_account_management_pool_waits_for_a_retry(
    stack: Stack,
) -> None:
    def no_pool(config: dict[str, Any]) -> None:
        config["handoff"].pop("pool")

    publish(stack, no_pool)
    lead_id = await new_lead(stack)
    for type_ in ("contacted", "meeting_booked", "qualified", "proposal_sent"):
        await event(stack, lead_id, type_)
    assert (await event(stack, lead_id, "won", amount="900.00", currency="USD"))["stage"] == "won"
    body = await until(stack, lead_id, flagged, within=10, what="parked")
    assert [a["step"] for a in body["attention"]] == ["handoff"], body["attention"]
    assert body["attention"][0]["error"] == "NoAccountManagementPool", body["attention"]
    assert body["stage"] == "won" and "handed_off" not in types(body)

    publish(stack)  # with the pool
    assert (await retry(stack, lead_id))["retrying"] == ["handoff"]
    body = await until(stack, lead_id, lambda b: b["stage"] == "handed_off", what="handed off")
    assert not body["needs_attention"]
    handed = of_type(body, "handed_off")
    assert len(handed) == 1 and handed[0]["data"]["account_manager"] == "riley.chen@example.com"
    with stack.db.session() as session:
        assert session.scalar(select(func.count()).select_from(CrmConversion)) == 1
    assert len(notifications(stack.db, lead_id, "win")) == 1


# ------------------------------------------------------------------------- 11. kill -9

# As tests/test_processes.py: a killed worker's activities time out after this, and its
# workflow tasks move on after Temporal's 10 s sticky timeout.
KILLED_ACTIVITY_TIMEOUT_S = 4
RECOVERY_S = 40.0


@contextlib.asynccontextmanager
async def web_only(
    client: Client, db: Database, task_queue: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    """The web app in this process; the worker is left to a real process."""
    settings = make_settings(
        data_dir=tmp_path,
        database_url=db.url,
        temporal_address=str(client.service_client.config.target_host),
        temporal_task_queue=task_queue,
        api_token=API_TOKEN,
        activity_timeout_s=KILLED_ACTIVITY_TIMEOUT_S,
    )
    app = create_app(settings, db, client, API_TOKEN)
    try:
        async with serve(app) as http:
            yield Stack(settings, db, client, http, str(http.base_url), task_queue)
    finally:
        await terminate_open_workflows(client, task_queue)


def handoff_counts(db: Database, lead_ids: list[str]) -> dict[str, Counter[str]]:
    """Per lead: its hand-off steps on the timeline, conversions, tasks, win posts."""
    counts = {lead_id: Counter[str]() for lead_id in lead_ids}
    steps = ("converted", "account_manager_assigned", "onboarding_tasks_created", "handed_off")
    with db.read() as session:
        for lead_id, type_ in session.execute(
            select(LeadEvent.lead_id, LeadEvent.type).where(
                LeadEvent.lead_id.in_(lead_ids), LeadEvent.type.in_(steps)
            )
        ):
            counts[lead_id][type_] += 1
        for notified, kind in session.execute(
            select(Notification.lead_id, Notification.kind).where(
                Notification.lead_id.in_(lead_ids)
            )
        ):
            counts[str(notified)][f"notified:{kind}"] += 1
        for leadflow_id, tasks in session.execute(
            select(CrmRecord.leadflow_id, func.count(CrmTaskRow.id))
            .join(CrmTaskRow, CrmTaskRow.crm_lead_id == CrmRecord.id)
            .where(CrmRecord.leadflow_id.in_(lead_ids))
            .group_by(CrmRecord.leadflow_id)
        ):
            counts[str(leadflow_id)]["tasks"] = tasks
        for leadflow_id, conversions in session.execute(
            select(CrmRecord.leadflow_id, func.count(CrmConversion.id))
            .join(CrmConversion, CrmConversion.crm_lead_id == CrmRecord.id)
            .where(CrmRecord.leadflow_id.in_(lead_ids))
            .group_by(CrmRecord.leadflow_id)
        ):
            counts[str(leadflow_id)]["conversions"] = conversions
    return counts


@pytest.mark.slow
async def test_worker_killed_mid_hand_off_hands_off_each_lead_once(
    procs: Processes,
    client: Client,
    db: Database,
    temporal_target: str,
    task_queue: str,
    tmp_path: Path,
) -> None:
    env = leadflow_env(
        temporal_address=temporal_target,
        temporal_task_queue=task_queue,
        database_url=db.url,
        data_dir=tmp_path,
        api_token=API_TOKEN,
        lead_id_secret=LEAD_ID_SECRET,
        activity_timeout_s=KILLED_ACTIVITY_TIMEOUT_S,
    )
    worker = procs.cli("worker", "worker", env)
    async with web_only(client, db, task_queue, tmp_path) as stack:
        publish(stack)
        lead_ids: list[str] = []
        for _ in range(4):
            response = await stack.submit(email=email(), company=f"Acme {len(lead_ids)}")
            assert response.status_code == 202, response.text
            lead_ids.append(response.json()["lead_id"])
        for lead_id in lead_ids:
            await stack.wait_for(lead_id, within=RECOVERY_S)
            for type_ in ("contacted", "meeting_booked", "qualified", "proposal_sent"):
                await event(stack, lead_id, type_)

        # All four won at once; the worker dies as soon as the first is converted.
        wins = [
            asyncio.create_task(event(stack, i, "won", amount="5000.00", currency="EUR"))
            for i in lead_ids
        ]

        def converted() -> bool:
            counts = handoff_counts(db, lead_ids)
            return any(c["converted"] for c in counts.values())

        await eventually(converted, "a lead converted", within=RECOVERY_S, interval=0.01)
        kill_tree(worker)
        at_kill = handoff_counts(db, lead_ids)
        assert any(c["converted"] and not c["handed_off"] for c in at_kill.values()), (
            f"no hand-off was under way at the kill: {at_kill}"
        )
        restarted = procs.cli("worker", "worker", env)
        assert all(r["stage"] == "won" for r in await asyncio.gather(*wins))
        for lead_id in lead_ids:
            await until(
                stack,
                lead_id,
                lambda b: b["stage"] == "handed_off",
                within=RECOVERY_S,
                what=f"handed off after the restart\n{procs.tails()}",
            )
        assert restarted.alive()
        await asyncio.sleep(0.5)  # a duplicate a broken retry would make lands first
        counts = handoff_counts(db, lead_ids)
    once = {
        "converted": 1,
        "account_manager_assigned": 1,
        "onboarding_tasks_created": 1,
        "handed_off": 1,
        "conversions": 1,
        "tasks": 2,
        "notified:win": 1,
        "notified:handoff": 1,
    }
    wrong = {lead_id: {k: c[k] for k in once if c[k] != once[k]} for lead_id, c in counts.items()}
    assert not any(wrong.values()), f"not exactly once: {wrong}\nat the kill: {at_kill}"
