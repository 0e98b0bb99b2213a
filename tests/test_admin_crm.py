"""The admin app on a vendor CRM: the reps page shows who is linked to a CRM user, a
lead shows why it needs attention and the CRM changes that did not apply, and a notice
the CRM would not explain waits on the needs-attention page for a retry."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, expect
from sqlalchemy import select
from temporalio.client import Client

from domain.users import Role
from store import users as user_store
from store.models_crm import CrmNoticeFailure
from tests.conftest import ADMIN_PASSWORD, HISTORIES, Screenshots, Stack, login
from tests.crm_support import HUBSPOT_SECRET, VendorStack, vendor_stack
from tests.fakes.deliveries import hubspot_delivery, hubspot_event
from tests.lifecycle_support import eventually_async, lead, until


def add_admin(stack: Stack) -> None:
    """``admin@example.com`` with ``ADMIN_PASSWORD``, to sign in to the admin app."""
    with stack.db.session() as session:
        user_store.create_user(
            session, "admin@example.com", "Ada Admin", Role.admin, ADMIN_PASSWORD, "test"
        )


async def deliver(vs: VendorStack, event_id: int, deal: str, stage: str) -> None:
    """HubSpot's webhook says the deal moved to ``stage``."""
    url = f"{vs.stack.base_url.rstrip('/')}{vs.webhook_path}"
    content, headers = hubspot_delivery(
        HUBSPOT_SECRET, url, [hubspot_event(event_id, "deal", deal, "dealstage", stage)]
    )
    answer = await vs.stack.http.post(vs.webhook_path, content=content, headers=headers)
    assert answer.is_success, answer.text


async def test_unlinked_reps_and_crm_changes_show_in_the_admin(
    client: Client, task_queue: str, tmp_path: Path, browser: Browser, screenshots: Screenshots
) -> None:
    linked = ["jordan.lee@example.com", "sam.rivera@example.com", "morgan.hale@example.com"]
    async with vendor_stack("hubspot", client, task_queue, tmp_path, linked=linked) as vs:
        stack = vs.stack
        add_admin(stack)
        # The first lead goes to the first rep of the rotation: Avery, who has no CRM user.
        answer = await stack.submit(email="pat@acme-robotics.example", first_name="Pat")
        lead_id = answer.json()["lead_id"]
        body = await until(stack, lead_id, lambda b: b["needs_attention"], 20, "needed attention")
        assert body["owner"]["email"] == "avery.park@example.com"
        # A deal of this contact won in HubSpot while the lead is only assigned.
        deal = vs.fake.user_closes_deal(body["crm_id"], won=True, amount=1500)  # type: ignore[arg-type]
        await deliver(vs, 9, deal, "closedwon")
        await until(
            stack,
            lead_id,
            lambda b: "crm_change_not_applied" in [e["type"] for e in b["events"]],
            20,
            "recorded the CRM change",
        )

        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        page = await context.new_page()
        await login(page, stack.base_url, "admin@example.com", ADMIN_PASSWORD)
        await page.goto(f"{stack.base_url.rstrip('/')}/admin/reps")
        avery = page.locator("#reps tr", has_text="avery.park@example.com")
        await expect(avery).to_contain_text("Not linked")
        await expect(page.locator("#reps tr", has_text="jordan.lee@example.com")).to_contain_text(
            vs.users["jordan.lee@example.com"]
        )
        await screenshots.take(page, "reps-crm-links")
        await page.goto(f"{stack.base_url.rstrip('/')}/admin/leads/{lead_id}")
        main = page.locator("main")
        await expect(main).to_contain_text("is not linked to a HubSpot user")
        await expect(main).to_contain_text("CRM change not applied")
        await screenshots.take(page, "lead-crm-attention")
        await context.close()
        assert (await lead(stack, lead_id))["stage"] == "assigned"


async def test_a_notice_the_crm_refuses_to_explain_waits_on_needs_attention_for_a_retry(
    client: Client, task_queue: str, tmp_path: Path, browser: Browser, screenshots: Screenshots
) -> None:
    """HubSpot reports a won deal but refuses to say whose it is (the token was revoked
    meanwhile): the notice is listed on the needs-attention page with the error; once
    the token works again, Retry brings the change in, once."""
    async with vendor_stack("hubspot", client, task_queue, tmp_path) as vs:
        stack = vs.stack
        add_admin(stack)
        answer = await stack.submit(email="pat@acme-robotics.example", first_name="Pat")
        lead_id = answer.json()["lead_id"]
        body = await until(stack, lead_id, lambda b: b["crm_id"], 20, "in the CRM")
        deal = vs.fake.user_closes_deal(body["crm_id"], won=True, amount=Decimal(1500))
        vs.fake.fail("expired_session")  # reading the deal's contact is refused for good
        await deliver(vs, 11, deal, "closedwon")

        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        page = await context.new_page()
        await login(page, stack.base_url, "admin@example.com", ADMIN_PASSWORD)
        row = page.locator("#crm-notices tbody tr")

        async def listed() -> bool | None:
            await page.goto(f"{stack.base_url.rstrip('/')}/admin/needs-attention")
            return await row.count() == 1 or None

        await eventually_async(listed, "the notice on the needs-attention page", within=20)
        await expect(row).to_contain_text("HubSpot")
        await expect(row).to_contain_text(f"deal {deal}")
        await expect(row).to_contain_text("dealstage → closedwon")
        await expect(row).to_contain_text("Reading what changed")
        await expect(row.locator(".failure-error")).to_contain_text("AuthError")
        await screenshots.take(page, "needs-attention-crm-notice")
        api = (await stack.http.get("/api/v1/needs-attention", headers=stack.auth)).json()
        assert api["crm_notices_total"] == 1, api
        [notice] = api["crm_notices"]
        assert (notice["crm"], notice["step"], notice["error"]) == ("hubspot", "read", "AuthError")
        assert notice["notice"]["object_id"] == str(deal)
        assert "crm_change_not_applied" not in [
            e["type"] for e in (await lead(stack, lead_id))["events"]
        ]

        vs.fake.heal()
        await row.get_by_role("button", name="Retry").click()
        await expect(page.locator(".flash")).to_contain_text(f"deal {deal} notice runs again")
        await expect(page.locator("#crm-notices")).to_have_count(0)
        api = (await stack.http.get("/api/v1/needs-attention", headers=stack.auth)).json()
        assert (api["crm_notices_total"], api["crm_notices"]) == (0, [])
        # The won deal reaches the lead (which is only assigned: recorded, not applied).
        body = await until(
            stack,
            lead_id,
            lambda b: "crm_change_not_applied" in [e["type"] for e in b["events"]],
            20,
            "brought the change in",
        )
        assert [e["type"] for e in body["events"]].count("crm_change_not_applied") == 1
        await screenshots.take(page, "needs-attention-after-retry")
        # The same button pressed again (an old tab) retries nothing.
        with stack.db.read() as session:
            failure = session.scalars(select(CrmNoticeFailure)).one()
            failure_id, failed_run = failure.id, failure.workflow_id
        if os.environ.get("LEADFLOW_RECORD_HISTORY") == "1":  # the run that failed, too
            history = await stack.client.get_workflow_handle(failed_run).fetch_history()
            (HISTORIES / "crm_notice_failed_for_good__crm_notice.json").write_text(
                history.to_json()
            )
        token = await page.locator("input[name=csrf_token]").first.get_attribute("value")
        again = await page.request.post(
            f"{stack.base_url.rstrip('/')}/admin/needs-attention/crm-notices/{failure_id}/retry",
            form={"csrf_token": token or ""},
        )
        assert again.ok and "retried already" in await again.text()
        await context.close()

        # Over the API: the same refusal, and a second failure retried with the token.
        retry_url = f"/api/v1/crm-notices/{failure_id}/retry"
        twice = await stack.http.post(retry_url, headers=stack.auth)
        assert twice.status_code == 409 and "retried already" in twice.text, twice.text
        missing = await stack.http.post("/api/v1/crm-notices/999999/retry", headers=stack.auth)
        assert missing.status_code == 404, missing.text
        assert (await stack.http.post(retry_url)).status_code == 401
        lost = vs.fake.user_closes_deal(body["crm_id"], won=False, amount=Decimal(900))
        vs.fake.fail("expired_session")
        await deliver(vs, 12, lost, "closedlost")

        async def failed_again() -> list[dict[str, Any]] | None:
            api = (await stack.http.get("/api/v1/needs-attention", headers=stack.auth)).json()
            return api["crm_notices"] or None

        [second] = await eventually_async(failed_again, "the second failure listed", within=20)
        assert second["notice"]["object_id"] == str(lost) and second["id"] != failure_id
        vs.fake.heal()
        sent = await stack.http.post(
            f"/api/v1/crm-notices/{second['id']}/retry", headers=stack.auth
        )
        assert sent.status_code == 202, sent.text
        assert sent.json()["workflow_id"].endswith(f"-retry-{second['id']}")
        # The lost deal reaches the lead too (recorded: "lost" does not apply while assigned).
        await until(
            stack,
            lead_id,
            lambda b: [e["data"].get("change") for e in b["events"]].count("lost") == 1,
            20,
            "brought the lost deal in",
        )
