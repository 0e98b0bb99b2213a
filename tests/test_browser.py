"""A newcomer's first minute, in a real browser: fill in the sample form, land on the
thank-you page, sign in to the admin and find the owner's notification in the inbox --
all under the Content-Security-Policy (no inline script or style: nothing is refused)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import AdminUsers, Stack, unique_email


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sample_form_submission_reaches_the_owner_inbox(
    stack: Stack, browser: Browser, admin_users: AdminUsers
) -> None:
    page = await browser.new_page()
    refused: list[str] = []
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    await page.goto(f"{stack.base_url}/")
    await expect(page.get_by_role("heading", name="Leadflow")).to_be_visible()
    await page.goto(f"{stack.base_url}/form")
    email = unique_email("browser")
    await page.fill("#first_name", "Robin")
    await page.fill("#last_name", "Quinn")
    await page.fill("#email", email)
    await page.fill("#company", "Quinn Labs")
    await page.fill("#company_size", "120")
    await page.fill("#message", "We want a demo next week.")
    await page.click("button[type=submit]")
    await expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    lead_id = page.url.split("lead_id=")[1]

    lead = await stack.wait_for(lead_id)
    # The inbox is behind the admin login now: /inbox leads there, and back after it.
    await page.goto(f"{stack.base_url}/inbox")
    assert "/admin/login" in page.url
    await page.fill("#email", admin_users.admin)
    await page.fill("#password", admin_users.password)
    async with page.expect_navigation():
        await page.click("button[type=submit]")
    assert page.url.endswith("/admin/inbox")
    row = page.locator(f"#lead-{lead_id}")
    await expect(row).to_contain_text("Robin Quinn")
    await expect(row).to_contain_text(lead["owner"]["name"])
    # The start page, the form, thanks, login and inbox: the CSP refused nothing.
    assert refused == []
    await page.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sample_form_refuses_an_invalid_email_before_sending(
    stack: Stack, browser: Browser
) -> None:
    page = await browser.new_page()
    await page.goto(f"{stack.base_url}/form")
    await page.fill("#email", "not-an-email")
    await page.click("button[type=submit]")
    assert page.url.endswith("/form")
    assert await page.locator("#email:invalid").count() == 1
    await page.close()
