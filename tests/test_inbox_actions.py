"""The lead card's buttons in the admin inbox (no Slack), on the real stack: the owner's
user marks a lead contacted (a double submit of one form counts once); Not a fit needs a
reason; another rep's user sees no buttons and is refused; a stale button says the
stage the lead is in now; Request reassignment asks the pool's manager, whose inbox links
to the approvals page. In the browser, with screenshots."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from domain.users import Role
from store import users as user_store
from tests.conftest import AdminUsers, Screenshots, Stack, csrf_of, http_login, login
from tests.lifecycle_support import event, eventually_async, lead, new_lead, of_type, pool, publish

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

AVERY = "avery.park@example.com"
JORDAN = "jordan.lee@example.com"
MANAGER = "morgan.hale@example.com"  # a rep, and the Inbound pool's manager
PASSWORD = "correct horse battery staple"
DECIDE = '<a class="button small primary" href="/admin/approvals">Decide</a>'


def avery_only(config: dict[str, Any]) -> None:
    """Every lead goes to Avery Park; the pool's manager approves reassignments."""
    pool(config)["members"] = [{"rep": AVERY}]
    config["approvals"] = {
        "reassignment": {"levels": [{"approvers": ["pool_manager"], "timeout": "1h"}]}
    }


@pytest.fixture
def reps_users(stack: Stack, admin_users: AdminUsers) -> AdminUsers:
    """The published configuration (every lead to Avery) and admin-app users for two reps
    and the pool's manager (team leads, with their rep's email)."""
    publish(stack, avery_only)
    with stack.db.session() as session:
        for email, name in [(AVERY, "Avery Park"), (JORDAN, "Jordan Lee"), (MANAGER, "Morgan")]:
            user_store.create_user(session, email, name, Role.team_lead, PASSWORD, "test")
    return admin_users


@contextlib.asynccontextmanager
async def signed_in(stack: Stack, email: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the web app signed in as ``email``."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        assert (await http_login(http, email, PASSWORD)).status_code == 303
        yield http


def forms_of(page: str, lead_id: str) -> dict[str, dict[str, str]]:
    """The inbox's forms for ``lead_id`` by their action: each form's fields."""
    found: dict[str, dict[str, str]] = {}
    pattern = rf'<form method="post" action="/admin/inbox/leads/{lead_id}/events"[^>]*>(.*?)</form>'
    for body in re.findall(pattern, page, re.DOTALL):
        fields = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', body))
        found.setdefault(fields["action"], fields)
    return found


async def click(http: httpx.AsyncClient, lead_id: str, fields: dict[str, str], **more: str) -> str:
    """Post a form of the inbox; the flash message of the page it leads back to."""
    sent = await http.post(f"/admin/inbox/leads/{lead_id}/events", data={**fields, **more})
    assert sent.status_code == 303 and sent.headers["location"] == "/admin/inbox", sent.text
    page = await http.get("/admin/inbox")
    flash = re.search(r'<div class="flash flash-(\w+)"[^>]*>(.*?)</div>', page.text, re.DOTALL)
    assert flash, page.text
    return f"{flash.group(1)}: {html.unescape(flash.group(2))}"


async def inbox(http: httpx.AsyncClient) -> str:
    page = await http.get("/admin/inbox")
    assert page.status_code == 200
    return page.text


async def test_the_owner_marks_the_lead_contacted_once(
    stack: Stack, reps_users: AdminUsers
) -> None:
    lead_id = await new_lead(stack, first_name="Pat", last_name="Quinn")
    async with signed_in(stack, AVERY) as http:
        forms = forms_of(await inbox(http), lead_id)
        assert set(forms) == {"contacted", "meeting_booked", "disqualified", "request_reassignment"}
        contacted = forms["contacted"]
        assert contacted["csrf_token"] == csrf_of(await inbox(http))
        assert await click(http, lead_id, contacted) == "ok: Marked contacted: Pat Quinn."
        body = await stack.wait_for(lead_id, "contacted")
        # The same form again (a double submit): answered the same, applied once.
        assert await click(http, lead_id, contacted) == "ok: Marked contacted: Pat Quinn."
        body = await lead(stack, lead_id)
        assert body["stage"] == "contacted"
        assert [e["data"].get("by") for e in of_type(body, "contacted")] == [AVERY]
        # The buttons follow the lead's stage now, not the card's.
        page = await inbox(http)
        assert set(forms_of(page, lead_id)) == {
            "meeting_booked",
            "disqualified",
            "request_reassignment",
        }
        assert f'href="/admin/leads/{lead_id}#routing-h">Why me?</a>' in page


async def test_not_a_fit_needs_a_reason(stack: Stack, reps_users: AdminUsers) -> None:
    lead_id = await new_lead(stack)
    async with signed_in(stack, AVERY) as http:
        not_a_fit = forms_of(await inbox(http), lead_id)["disqualified"]
        said = await click(http, lead_id, not_a_fit, reason="   ")
        assert said == "error: Not a fit needs a reason: say why. Nothing was changed."
        assert (await lead(stack, lead_id))["stage"] == "assigned"
        said = await click(http, lead_id, not_a_fit, reason="Student project, no budget")
        assert said.startswith("ok: Marked not a fit")
        body = await stack.wait_for(lead_id, "disqualified")
        assert of_type(body, "disqualified")[-1]["data"]["reason"] == "Student project, no budget"
        assert forms_of(await inbox(http), lead_id) == {}


async def test_only_the_owner_the_manager_or_an_admin_may_act(
    stack: Stack, reps_users: AdminUsers
) -> None:
    lead_id = await new_lead(stack)
    async with signed_in(stack, AVERY) as http:
        stolen = forms_of(await inbox(http), lead_id)["contacted"]
    async with signed_in(stack, JORDAN) as http:
        # A rep sees their own messages: not Avery's card.
        assert f'id="lead-{lead_id}"' not in await inbox(http)
        said = await click(http, lead_id, {**stolen, "csrf_token": csrf_of(await inbox(http))})
        assert said == (
            "error: This lead belongs to Avery Park: only its owner, the pool's manager or "
            "an admin can act on it. Nothing was changed."
        )
        assert (await lead(stack, lead_id))["stage"] == "assigned"
    async with signed_in(stack, reps_users.viewer) as http:
        page = await inbox(http)  # everyone's messages, no buttons
        assert f'id="lead-{lead_id}"' in page and forms_of(page, lead_id) == {}
        assert "Avery Park's lead: only the owner" in html.unescape(page)
    async with signed_in(stack, reps_users.admin) as http:
        assert "contacted" in forms_of(await inbox(http), lead_id)  # admins see all
    # Without the form's token: the 403 page, nothing changed.
    async with signed_in(stack, AVERY) as http:
        forged = await http.post(
            f"/admin/inbox/leads/{lead_id}/events", data={**stolen, "csrf_token": "x" * 64}
        )
        assert forged.status_code == 403
    assert (await lead(stack, lead_id))["stage"] == "assigned"
    # The pool's manager may (a rep: their inbox shows their own messages only).
    async with signed_in(stack, MANAGER) as http:
        said = await click(http, lead_id, {**stolen, "csrf_token": csrf_of(await inbox(http))})
        assert said.startswith("ok: Marked contacted")
    body = await stack.wait_for(lead_id, "contacted")
    assert of_type(body, "contacted")[-1]["data"].get("by") == MANAGER


async def test_a_stale_button_says_the_stage_the_lead_is_in(
    stack: Stack, reps_users: AdminUsers
) -> None:
    lead_id = await new_lead(stack)
    async with signed_in(stack, AVERY) as http:
        contacted = forms_of(await inbox(http), lead_id)["contacted"]
        await event(stack, lead_id, "meeting_booked")
        await stack.wait_for(lead_id, "meeting_booked")
        assert await click(http, lead_id, contacted) == (
            "error: “Contacted” no longer applies: this lead is now Meeting booked. "
            "Nothing was changed."
        )
        assert (await lead(stack, lead_id))["stage"] == "meeting_booked"


async def test_request_reassignment_asks_the_pools_manager(
    stack: Stack, reps_users: AdminUsers
) -> None:
    lead_id = await new_lead(stack)
    async with signed_in(stack, AVERY) as http:
        ask = forms_of(await inbox(http), lead_id)["request_reassignment"]
        said = await click(http, lead_id, ask, reason="On leave next week")
        assert said == (
            f"ok: Your reassignment request went to {MANAGER} for approval (level 1 of 1)."
        )
        again = forms_of(await inbox(http), lead_id)["request_reassignment"]
        said = await click(http, lead_id, again, reason="Really")
        assert said.startswith("error: A reassignment of this lead is waiting for approval")
    listed = await stack.http.get("/api/v1/approvals", headers=stack.auth)
    (asked,) = [a for a in listed.json()["approvals"] if a["lead_id"] == lead_id]
    assert asked["requested_by"] == AVERY and asked["reason"] == "On leave next week"
    async with signed_in(stack, MANAGER) as http:

        async def decide_link() -> bool:
            return DECIDE in await inbox(http)

        await eventually_async(decide_link, "linked the request to the approvals page")


async def test_the_inbox_in_the_browser(
    stack: Stack, reps_users: AdminUsers, browser: Browser, screenshots: Screenshots
) -> None:
    people = [
        ("Maria", "Schmidt", "Helvetia Logistics", "VP Operations"),
        ("Noah", "Becker", "Nordlicht Energie", "Head of IT"),
        ("Lena", "Vogel", "Alpenblick Hotels", "Owner"),
    ]
    ids = [
        await new_lead(stack, first_name=f, last_name=la, company=c, title=t, country="DE")
        for f, la, c, t in people
    ]
    await event(stack, ids[1], "contacted")
    await event(stack, ids[2], "disqualified", reason="Too small for us")
    await stack.wait_for(ids[2], "disqualified")
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await context.new_page()
        await login(page, stack.base_url, AVERY, PASSWORD)
        await page.goto(f"{stack.base_url.rstrip('/')}/admin/inbox")
        maria = page.locator("tr.notification", has_text="Maria Schmidt")
        await expect(maria.locator(".badge.stage")).to_have_text("Assigned")
        noah = page.locator("tr.notification", has_text="Noah Becker")
        await expect(noah.get_by_role("button", name="Contacted")).to_have_count(0)
        await expect(noah.get_by_role("button", name="Meeting booked")).to_be_visible()
        lena = page.locator("tr.notification", has_text="Lena Vogel")
        await expect(lena.locator("button")).to_have_count(0)
        await maria.locator("summary", has_text="Not a fit").click()
        await expect(maria.get_by_label("Why is it not a fit?")).to_be_visible()
        await screenshots.take(page, "inbox-lead-actions")
        await maria.locator("summary", has_text="Not a fit").click()
        await maria.get_by_role("button", name="Contacted").click()
        await expect(page.locator(".flash-ok")).to_have_text("Marked contacted: Maria Schmidt.")
        maria = page.locator("tr.notification", has_text="Maria Schmidt")
        await expect(maria.locator(".badge.stage")).to_have_text("Contacted")
        await expect(maria.get_by_role("button", name="Contacted")).to_have_count(0)
        await screenshots.take(page, "inbox-after-contacted")
    finally:
        await context.close()
    assert (await lead(stack, ids[0]))["stage"] == "contacted"
