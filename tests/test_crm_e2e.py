"""End to end on each vendor CRM: ``POST /leads`` on the running stack reaches the fake
through the vendor's own client library; changes made in the CRM come back through the
webhooks and the polling schedule; refusals park the lead until an admin's retry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from activities.crm_inbound import sync_rep_links
from tests.crm_support import HUBSPOT_SECRET, VendorStack, vendor_stack
from tests.fakes.deliveries import hubspot_delivery, hubspot_event, salesforce_outbound
from tests.lifecycle_support import (
    email,
    event,
    eventually,
    lead,
    new_lead,
    publish,
    types,
    until,
)
from workflows.crm_inbound import CrmPollWorkflow

VENDORS = ["salesforce", "hubspot"]


@pytest.fixture(params=VENDORS)
async def vs(
    request: pytest.FixtureRequest, client: Client, task_queue: str, tmp_path: Path
) -> AsyncIterator[VendorStack]:
    async with vendor_stack(request.param, client, task_queue, tmp_path) as running:
        yield running


async def test_leads_land_once_with_their_owner_under_concurrent_resubmissions(
    vs: VendorStack,
) -> None:
    stack, fake = vs.stack, vs.fake
    address = email()
    answers = await asyncio.gather(
        *(stack.submit(email=address, first_name="Pat", company="Acme") for _ in range(20))
    )
    assert {a.status_code for a in answers} == {202}
    lead_ids = {a.json()["lead_id"] for a in answers}
    assert len(lead_ids) == 1
    body = await stack.wait_for(lead_ids.pop())
    owner = body["owner"]["email"]
    ids = await eventually(lambda: fake.lead_ids(address) or None, "the CRM record")
    assert ids == [body["crm_id"]]
    # The owner Leadflow chose, not the org's assignment rule (Salesforce).
    assert fake.lead_owner(ids[0]) == vs.users[owner]


async def test_the_lifecycle_to_won_converts_once(vs: VendorStack) -> None:
    stack, fake = vs.stack, vs.fake
    lead_id = await new_lead(stack)
    for step in ("contacted", "meeting_booked", "qualified", "proposal_sent"):
        await event(stack, lead_id, step)
    await event(stack, lead_id, "won", amount="4200.00", currency="usd")
    body = await until(stack, lead_id, lambda b: b["stage"] == "handed_off", 40, "handed off")
    assert "converted" in types(body)
    assert len(fake.deal_ids(body["crm_id"])) == 1
    assert len(fake.task_ids(body["crm_id"])) == 2  # the onboarding tasks


async def test_a_validation_error_parks_the_lead_and_the_retry_completes_it(
    vs: VendorStack,
) -> None:
    stack, fake = vs.stack, vs.fake
    fake.fail("validation")
    address = email()
    response = await stack.submit(email=address, first_name="Pat", company="Acme")
    lead_id = response.json()["lead_id"]
    body = await until(stack, lead_id, lambda b: b["needs_attention"], 20, "needed attention")
    assert "crm_sync_failed" in types(body)
    assert fake.lead_ids(address) == []
    retried = await stack.http.post(f"/api/v1/leads/{lead_id}/retry", headers=stack.auth)
    assert retried.status_code == 202, retried.text
    body = await until(stack, lead_id, lambda b: b["crm_id"] is not None, 20, "reached the CRM")
    assert fake.lead_ids(address) == [body["crm_id"]]
    await until(stack, lead_id, lambda b: not b["needs_attention"], 20, "cleared attention")


async def test_a_transient_fault_burst_retries_until_the_record_lands(vs: VendorStack) -> None:
    stack, fake = vs.stack, vs.fake
    fake.fail("5xx", times=3)
    address = email()
    lead_id = (await stack.submit(email=address, first_name="Pat")).json()["lead_id"]
    body = await until(stack, lead_id, lambda b: b["crm_id"] is not None, 30, "reached the CRM")
    assert fake.lead_ids(address) == [body["crm_id"]]
    assert not body["needs_attention"]


async def test_polling_brings_changes_made_in_the_crm_back_once(vs: VendorStack) -> None:
    stack, fake = vs.stack, vs.fake
    first = await stack.client.execute_workflow(
        CrmPollWorkflow.run, id="poll-start", task_queue=stack.task_queue
    )
    assert first == []
    lead_id = await new_lead(stack)
    body = await lead(stack, lead_id)
    fake.user_sets_status(body["crm_id"], "contacted")
    polled = await stack.client.execute_workflow(
        CrmPollWorkflow.run, id="poll-1", task_queue=stack.task_queue
    )
    assert "applied" in {o.outcome.value for o in polled}, polled
    await until(stack, lead_id, lambda b: b["stage"] == "contacted", 10, "contacted")
    again = await stack.client.execute_workflow(
        CrmPollWorkflow.run, id="poll-2", task_queue=stack.task_queue
    )
    assert "applied" not in {o.outcome.value for o in again}
    assert types(await lead(stack, lead_id)).count("contacted") == 1


async def test_an_unlinked_rep_gets_the_lead_without_crm_owner_until_linked(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    async with vendor_stack("hubspot", client, task_queue, tmp_path, linked=[]) as vs:
        stack, fake = vs.stack, vs.fake
        address = email()
        lead_id = (await stack.submit(email=address, first_name="Pat")).json()["lead_id"]
        body = await until(stack, lead_id, lambda b: b["needs_attention"], 20, "needed attention")
        assert [a["step"] for a in body["attention"]] == ["crm_owner"]
        assert body["owner"] is not None  # the rep still has the lead
        assert fake.lead_ids(address) == [body["crm_id"]]
        assert fake.lead_owner(body["crm_id"]) is None
        owner = fake.add_user(body["owner"]["email"], "Now Linked")
        sync_rep_links(stack.db, fake.connector())
        await stack.http.post(f"/api/v1/leads/{lead_id}/retry", headers=stack.auth)
        await until(stack, lead_id, lambda b: not b["needs_attention"], 20, "cleared attention")
        await eventually(lambda: fake.lead_owner(body["crm_id"]) == owner or None, "owner set")


# ------------------------------------------------------------------------- webhooks


@pytest.fixture
async def hubspot(client: Client, task_queue: str, tmp_path: Path) -> AsyncIterator[VendorStack]:
    async with vendor_stack("hubspot", client, task_queue, tmp_path) as running:
        yield running


@pytest.fixture
async def salesforce(client: Client, task_queue: str, tmp_path: Path) -> AsyncIterator[VendorStack]:
    async with vendor_stack("salesforce", client, task_queue, tmp_path) as running:
        yield running


async def test_hubspot_signed_webhooks_move_the_lead_once(hubspot: VendorStack) -> None:
    stack, fake = hubspot.stack, hubspot.fake
    lead_id = await new_lead(stack)
    crm_id = (await lead(stack, lead_id))["crm_id"]
    url = f"{stack.base_url.rstrip('/')}{hubspot.webhook_path}"
    body, headers = hubspot_delivery(
        HUBSPOT_SECRET, url, [hubspot_event(1, "contact", crm_id, "hs_lead_status", "CONNECTED")]
    )
    for _ in range(2):  # HubSpot delivers again when it is not sure: applied once
        answer = await stack.http.post(hubspot.webhook_path, content=body, headers=headers)
        assert answer.status_code == 200, answer.text
    await until(stack, lead_id, lambda b: b["stage"] == "contacted", 15, "contacted")
    for step in ("meeting_booked", "qualified", "proposal_sent"):
        await event(stack, lead_id, step)
    deal_id = fake.user_closes_deal(crm_id, won=True, amount=Decimal("8800"))
    body, headers = hubspot_delivery(
        HUBSPOT_SECRET, url, [hubspot_event(2, "deal", deal_id, "dealstage", "closedwon")]
    )
    answer = await stack.http.post(hubspot.webhook_path, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    won = await until(stack, lead_id, lambda b: b["stage"] == "handed_off", 30, "handed off")
    assert types(won).count("contacted") == 1
    won_event = next(e for e in won["events"] if e["type"] == "won")
    assert Decimal(str(won_event["data"]["amount"])) == Decimal("8800")
    # The hand-off's conversion took the deal the rep closed: still one deal.
    assert fake.deal_ids(crm_id) == [deal_id]


async def test_hubspot_refuses_forged_stale_and_unsigned_deliveries(hubspot: VendorStack) -> None:
    stack = hubspot.stack
    lead_id = await new_lead(stack)
    crm_id = (await lead(stack, lead_id))["crm_id"]
    url = f"{stack.base_url.rstrip('/')}{hubspot.webhook_path}"
    events = [hubspot_event(3, "contact", crm_id, "hs_lead_status", "UNQUALIFIED")]
    forged, headers = hubspot_delivery("not-the-secret", url, events)
    stale, stale_headers = hubspot_delivery(HUBSPOT_SECRET, url, events, age_s=301)
    for content, sent in ((forged, headers), (stale, stale_headers), (forged, {})):
        answer = await stack.http.post(hubspot.webhook_path, content=content, headers=sent)
        assert answer.status_code == 401, answer.text
    await asyncio.sleep(1)
    assert (await lead(stack, lead_id))["stage"] == "assigned"


async def test_salesforce_outbound_message_moves_the_lead_and_acks(
    salesforce: VendorStack,
) -> None:
    stack, fake = salesforce.stack, salesforce.fake
    lead_id = await new_lead(stack)
    crm_id = (await lead(stack, lead_id))["crm_id"]
    org = fake.org.org_id  # type: ignore[attr-defined]
    rep = fake.add_user("someone.else@example.com", "Someone Else")
    message = salesforce_outbound(
        org,
        (
            "04l000000000001",
            "Lead",
            {"Id": crm_id, "Status": "Working - Contacted", "LastModifiedById": rep},
        ),
    )
    for _ in range(2):
        answer = await stack.http.post(
            salesforce.webhook_path, content=message, headers={"Content-Type": "text/xml"}
        )
        assert answer.status_code == 200, answer.text
        assert b"<Ack>true</Ack>" in answer.content
    body = await until(stack, lead_id, lambda b: b["stage"] == "contacted", 15, "contacted")
    assert types(body).count("contacted") == 1
    other_org = salesforce_outbound("00D0000000ZZZZZAAA", ("04l2", "Lead", {"Id": crm_id}))
    refused = await stack.http.post(salesforce.webhook_path, content=other_org)
    assert refused.status_code == 401
    wrong_path = await stack.http.post("/webhooks/salesforce/guess", content=message)
    assert wrong_path.status_code == 401


# ------------------------------------------------------------------ account owners


async def test_account_owner_rules_find_the_account_in_the_vendor_crm(vs: VendorStack) -> None:
    """Routing (and its simulation) look the company up in the CRM in use."""
    stack, fake = vs.stack, vs.fake
    owner = "sam.rivera@example.com"
    fake.add_account("Initrode Systems", "initrode.example", vs.users[owner])

    def account_rule(config: dict[str, Any]) -> None:
        config["nurture"]["list_name"] = "Nurture"
        config["rules"] = [
            {
                "name": "Existing accounts",
                "when": {"field": "company", "op": "not_empty"},
                "assign": {"account_owner": True, "else": {"pool": "Inbound"}},
            }
        ]

    publish(stack, account_rule)
    lead_fields = {"email": "ana@initrode.example", "first_name": "Ana", "company": "Initrode"}
    simulated = await stack.http.post(
        "/api/v1/simulate", json={"lead": lead_fields}, headers=stack.auth
    )
    assert simulated.status_code == 200, simulated.text
    assert simulated.json()["rep"]["email"] == owner, simulated.json()["explanation"]
    routed = await stack.wait_for((await stack.submit(**lead_fields)).json()["lead_id"])
    assert routed["owner"]["email"] == owner
