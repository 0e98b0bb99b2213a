"""The admin app on a vendor CRM: the reps page shows who is linked to a CRM user, and a
lead shows why it needs attention and the CRM changes that did not apply."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect
from temporalio.client import Client

from domain.users import Role
from store import users as user_store
from tests.conftest import ADMIN_PASSWORD, Screenshots, login
from tests.crm_support import HUBSPOT_SECRET, vendor_stack
from tests.fakes.deliveries import hubspot_delivery, hubspot_event
from tests.lifecycle_support import lead, until


async def test_unlinked_reps_and_crm_changes_show_in_the_admin(
    client: Client, task_queue: str, tmp_path: Path, browser: Browser, screenshots: Screenshots
) -> None:
    linked = ["jordan.lee@example.com", "sam.rivera@example.com", "morgan.hale@example.com"]
    async with vendor_stack("hubspot", client, task_queue, tmp_path, linked=linked) as vs:
        stack = vs.stack
        with stack.db.session() as session:
            user_store.create_user(
                session, "admin@example.com", "Ada Admin", Role.admin, ADMIN_PASSWORD, "test"
            )
        # The first lead goes to the first rep of the rotation: Avery, who has no CRM user.
        answer = await stack.submit(email="pat@acme-robotics.example", first_name="Pat")
        lead_id = answer.json()["lead_id"]
        body = await until(stack, lead_id, lambda b: b["needs_attention"], 20, "needed attention")
        assert body["owner"]["email"] == "avery.park@example.com"
        url = f"{stack.base_url.rstrip('/')}{vs.webhook_path}"
        # A deal of this contact won in HubSpot while the lead is only assigned.
        deal = vs.fake.user_closes_deal(body["crm_id"], won=True, amount=1500)  # type: ignore[arg-type]
        content, headers = hubspot_delivery(
            HUBSPOT_SECRET, url, [hubspot_event(9, "deal", deal, "dealstage", "closedwon")]
        )
        assert (await stack.http.post(vs.webhook_path, content=content, headers=headers)).is_success
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
