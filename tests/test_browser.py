"""A newcomer's first minute, in a real browser: fill in the sample form, land on the
thank-you page, and find the owner's notification in the inbox."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.conftest import Stack, unique_email

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
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Chromium is missing: `make test` installs it (apt-get install chromium)"
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sample_form_submission_reaches_the_owner_inbox(
    stack: Stack, browser: Browser
) -> None:
    page = await browser.new_page()
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
    await page.goto(f"{stack.base_url}/inbox")
    row = page.locator(f"#lead-{lead_id}")
    await expect(row).to_contain_text("Robin Quinn")
    await expect(row).to_contain_text(lead["owner"]["name"])
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
