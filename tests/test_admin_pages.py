"""The admin pages a team lead reads and the routing test bench, in a real browser against
the real stack (worker, web app over HTTP, Temporal): the leads list and a lead's page
with its routing explanation, simulate, replay under the draft, publish with a comment
and roll back; who may publish, the CSRF check, and lead data shown as text."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser, Page, expect

from domain.config_yaml import load_yaml
from store import config as config_store
from store import leads as lead_store
from store.db import Database
from store.leads import LeadQuery
from store.models import Lead
from tests.conftest import AdminUsers, Screenshots, Stack, login, unique_email

BASE = """
reps:
  - {email: avery.park@example.com, name: Avery Park}
  - {email: jordan.lee@example.com, name: Jordan Lee}
  - {email: sam.rivera@example.com, name: Sam Rivera}
pools:
  - name: Inbound
    members:
      - {rep: avery.park@example.com}
      - {rep: sam.rivera@example.com}
  - name: EMEA AE
    strategy: weighted
    members: [{rep: jordan.lee@example.com, weight: 2}]
territories:
  - {name: DACH, countries: [DE, AT, CH]}
rules:
  - name: DACH enterprise
    when:
      all:
        - {field: country, op: in_territory, value: DACH}
        - {field: company_size, op: gte, value: 1000}
    assign: {pool: EMEA AE}
fallback: {pool: Inbound}
"""
# The draft of the replay and publish tests: DACH enterprise leads go to Sam instead.
TO_SAM = BASE.replace("assign: {pool: EMEA AE}", "assign: {rep: sam.rivera@example.com}")
GERMAN = {"country": "Germany", "company_size": 5000}

# The browser tests run on SQLite; the search query runs on both backends (below).
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def save_draft(db: Database, yaml_text: str, actor: str = "test") -> int:
    """Save ``yaml_text`` as the draft, over whatever draft there is; its revision."""
    with db.session() as session:
        return config_store.save_draft(session, load_yaml(yaml_text), actor, None)


def publish(db: Database, yaml_text: str, note: str = "") -> int:
    save_draft(db, yaml_text)
    with db.session() as session:
        return config_store.publish(session, "test", note)


async def routed_lead(stack: Stack, **fields: object) -> str:
    """A lead submitted through ``POST /leads`` and routed; its id."""
    response = await stack.submit(email=fields.pop("email", None) or unique_email(), **fields)
    assert response.status_code == 202, response.text
    lead_id: str = response.json()["lead_id"]
    await stack.wait_for(lead_id)
    return lead_id


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
async def test_admin_simulates_a_lead_and_sees_the_rule_pool_and_rep(
    stack: Stack, admin_users: AdminUsers, page: Page, screenshots: Screenshots
) -> None:
    publish(stack.db, BASE)
    await login(page, stack.base_url, admin_users.admin, admin_users.password)
    await page.goto(f"{stack.base_url}/admin/simulate")
    await expect(page.get_by_role("heading", name="Simulate a lead")).to_be_visible()
    await screenshots.take(page, "simulate-form")
    await page.fill("#email", "jana.novak@example.de")
    await page.fill("#first_name", "Jana")
    await page.fill("#country", "DE")
    await page.fill("#company_size", "5000")
    await page.click("button:has-text('Simulate')")

    result = page.locator("#result")
    await expect(result.locator(".result-rule")).to_have_text("DACH enterprise")
    await expect(result.locator(".result-pool")).to_have_text("EMEA AE")
    await expect(result.locator(".result-rep")).to_have_text("Jordan Lee")
    marks = result.locator("table.conditions td.mark")
    await expect(marks).to_have_count(2)
    await expect(marks.first).to_contain_text("✓")
    await expect(result.locator("table.credits")).to_contain_text("Jordan Lee")
    await screenshots.take(page, "simulate-result")

    # The lead may be pasted as JSON instead; a bad field is named next to it.
    await page.click("summary:has-text('paste the lead as JSON')")
    await page.fill("#json", '{"email": "nope", "company_size": 5000}')
    await page.click("button:has-text('Simulate')")
    await expect(page.locator("#json-error")).to_contain_text("email:")
    await expect(page.locator("#json")).to_have_value('{"email": "nope", "company_size": 5000}')
    await page.fill("#json", '{"email": "li@example.cn", "country": "CN"}')
    await page.click("button:has-text('Simulate')")
    await expect(page.locator("#result .result-rule")).to_have_text("fallback")
    await expect(page.locator("#result .result-pool")).to_have_text("Inbound")

    # Simulating stores nothing: no lead, and the pool's rotation did not move.
    with stack.db.read() as session:
        assert lead_store.search_leads(session, LeadQuery())[1] == 0
        assert config_store.pool_states(session, ["EMEA AE", "Inbound"]) == {}


@SQLITE
async def test_a_real_lead_is_listed_with_its_owner_and_its_page_explains_the_routing(
    stack: Stack, admin_users: AdminUsers, page: Page, screenshots: Screenshots
) -> None:
    publish(stack.db, BASE)
    lead_id = await routed_lead(
        stack, first_name="Jana", last_name="Novak", company="Novak GmbH", source="demo", **GERMAN
    )
    other = await routed_lead(stack, first_name="Lee", company="Small Co", country="FR")
    await login(page, stack.base_url, admin_users.admin, admin_users.password)
    await page.goto(f"{stack.base_url}/admin/leads")
    row = page.locator(f"#lead-{lead_id}")
    await expect(row.locator("td.name")).to_contain_text("Jana Novak")
    await expect(row.locator("td.owner")).to_have_text("Jordan Lee")
    await expect(row).to_contain_text("assigned")
    await expect(page.locator(f"#lead-{other}")).to_be_visible()
    await screenshots.take(page, "leads-list")

    await page.fill("#q", "novak")
    await page.click("button:has-text('Apply')")
    await expect(page.locator("tbody tr")).to_have_count(1)
    await expect(page.locator(f"#lead-{other}")).to_have_count(0)
    await screenshots.take(page, "leads-search")

    await row.locator("td.name a").click()
    await expect(page.get_by_role("heading", name="Jana Novak")).to_be_visible()
    routing = page.locator(".routing-explanation")
    await expect(routing.locator(".rule-name")).to_have_text("DACH enterprise")
    await expect(routing.locator(".pool-name")).to_contain_text("EMEA AE")
    await expect(routing.locator(".chosen-rep")).to_contain_text("Jordan Lee")
    await expect(routing.locator("table.conditions td.mark")).to_have_count(2)
    await expect(page.locator("table.score-parts")).to_contain_text("demo or pricing request")
    await expect(page.locator("ol.timeline")).to_contain_text("Assigned")
    await expect(page.locator("ol.timeline")).to_contain_text("Owner notified")
    await screenshots.take(page, "lead-page")


@SQLITE
async def test_replay_shows_the_owners_the_draft_would_change_and_a_chart(
    stack: Stack, admin_users: AdminUsers, page: Page, screenshots: Screenshots
) -> None:
    publish(stack.db, BASE)
    german = await routed_lead(stack, first_name="Jana", last_name="Novak", **GERMAN)
    others = [await routed_lead(stack, country="US") for _ in range(3)]
    save_draft(stack.db, TO_SAM)
    await login(page, stack.base_url, admin_users.viewer, admin_users.password)
    await page.goto(f"{stack.base_url}/admin/replay")
    await page.fill("#limit", "50")
    await page.click("button:has-text('Replay')")

    await expect(page.locator(".changed-count")).to_have_text("1")
    changed = page.locator("table.changed tbody tr")
    await expect(changed).to_have_count(1)
    await expect(changed.locator("td.name")).to_have_text("Jana Novak")
    await expect(changed.locator("td.was")).to_have_text("Jordan Lee")
    await expect(changed.locator("td.will")).to_have_text("Sam Rivera")
    assert await page.locator(f"a[href='/admin/leads/{german}']").count() == 1
    for other in others:
        assert await page.locator(f"a[href='/admin/leads/{other}']").count() == 0
    totals = page.locator("table.totals")
    await expect(totals).to_contain_text("Jordan Lee")
    bars = page.locator("svg.chart rect.bar")
    assert await bars.count() == 2 * await totals.locator("tbody tr").count()
    await screenshots.take(page, "replay")

    await page.goto(f"{stack.base_url}/admin/replay?limit=10001")  # past the form's own check
    await expect(page.locator("#limit-error")).to_contain_text("from 1 to 10,000")


@SQLITE
async def test_admin_publishes_the_draft_with_a_comment_then_rolls_back(
    stack: Stack, admin_users: AdminUsers, page: Page, screenshots: Screenshots
) -> None:
    assert publish(stack.db, BASE, note="the start") == 1
    save_draft(stack.db, TO_SAM, actor="someone@example.com")
    await login(page, stack.base_url, admin_users.admin, admin_users.password)
    await page.goto(f"{stack.base_url}/admin/publish")
    draft = page.locator("#draft-diff")
    await expect(draft.locator(".add", has_text="sam.rivera@example.com")).to_be_visible()
    await expect(draft.locator(".del", has_text="pool: EMEA AE")).to_be_visible()
    await screenshots.take(page, "publish-draft")

    await page.fill("#note", "DACH enterprise straight to Sam")
    await page.click("button:has-text('Publish as version 2')")
    await expect(page.locator(".flash-ok")).to_contain_text("Published version 2")
    version = page.locator("#version-2")
    await expect(version).to_contain_text("DACH enterprise straight to Sam")
    await expect(version).to_contain_text(admin_users.admin)
    await expect(version.locator(".badge.current")).to_be_visible()
    await version.locator("summary").click()
    await expect(version.locator(".add", has_text="sam.rivera@example.com")).to_be_visible()
    await screenshots.take(page, "publish-history")
    with stack.db.read() as session:
        assert config_store.latest_version(session) == 2
        assert config_store.versions(session, 1)[0].published_by == admin_users.admin

    await page.locator("#version-1 button:has-text('Roll back')").click()
    await expect(page.get_by_role("heading", name="Roll back to version 1?")).to_be_visible()
    await screenshots.take(page, "rollback-confirm")
    with stack.db.read() as session:
        assert config_store.latest_version(session) == 2  # the first click asks only
    await page.click("button:has-text('Yes, roll back to version 1')")
    await expect(page.locator(".flash-ok")).to_contain_text("published again as version 3")
    await expect(page.locator("#version-3")).to_contain_text("rollback to version 1")
    await screenshots.take(page, "rolled-back")


@SQLITE
async def test_a_draft_saved_after_the_page_was_opened_is_not_published_unseen(
    stack: Stack, admin_users: AdminUsers, page: Page, screenshots: Screenshots
) -> None:
    publish(stack.db, BASE)
    save_draft(stack.db, TO_SAM)
    await login(page, stack.base_url, admin_users.admin, admin_users.password)
    await page.goto(f"{stack.base_url}/admin/publish")
    save_draft(stack.db, TO_SAM.replace("Sam Rivera", "Samuel Rivera"), actor="other@example.com")
    await page.fill("#note", "my reviewed change")
    await page.click("button:has-text('Publish as version 2')")
    await expect(page.locator(".flash-error")).to_contain_text("saved by other@example.com")
    await expect(page.locator("#note")).to_have_value("my reviewed change")
    await expect(page.locator("#draft-diff .add", has_text="Samuel Rivera")).to_be_visible()
    await screenshots.take(page, "publish-stale")
    with stack.db.read() as session:
        assert config_store.latest_version(session) == 1


@SQLITE
async def test_the_lead_list_pages_fifty_at_a_time(
    stack: Stack, admin_users: AdminUsers, page: Page, screenshots: Screenshots
) -> None:
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    with stack.db.session() as session:
        for index in range(60):
            email = f"person{index:02d}@paged.example"
            session.add(
                Lead(
                    id=f"{index:024x}",
                    workflow_id=f"lead-{index}",
                    email=email,
                    stage="scored",
                    data={"email": email, "first_name": f"Person {index:02d}"},
                    received_at=start + timedelta(minutes=index),
                )
            )
    await login(page, stack.base_url, admin_users.viewer, admin_users.password)
    await page.goto(f"{stack.base_url}/admin/leads")
    rows = page.locator("table.leads-table tbody tr")
    await expect(rows).to_have_count(50)
    await expect(rows.first.locator("td.name")).to_contain_text("Person 59")
    await expect(page.locator(".pagination")).to_contain_text("50 of 60")
    await page.click("a[rel=next]")
    await expect(rows).to_have_count(10)
    await expect(rows.last.locator("td.name")).to_contain_text("Person 00")
    await screenshots.take(page, "leads-page-2")
    await page.click("a[rel=prev]")
    await expect(rows).to_have_count(50)
    await page.click("th a.sort")  # oldest first
    await expect(rows.first.locator("td.name")).to_contain_text("Person 00")
    await page.select_option("#stage", "assigned")
    await page.click("button:has-text('Apply')")
    await expect(page.locator("p.empty")).to_contain_text("No leads match these filters")


@SQLITE
async def test_a_draft_with_problems_is_shown_and_neither_simulated_replayed_nor_published(
    stack: Stack, admin_users: AdminUsers, page: Page, screenshots: Screenshots
) -> None:
    publish(stack.db, BASE)
    broken = BASE.replace("assign: {pool: EMEA AE}", "assign: {pool: Nowhere}")
    with stack.db.session() as session:
        config_store.save_draft(session, load_yaml(broken, check=False), "test", None)
    await login(page, stack.base_url, admin_users.admin, admin_users.password)
    await page.goto(f"{stack.base_url}/admin/publish")
    problems = page.locator(".problems")
    await expect(problems).to_contain_text("rules[0].assign.pool")
    await expect(problems).to_contain_text("unknown pool 'Nowhere'")
    await expect(page.locator("button:has-text('Publish as version 2')")).to_be_disabled()
    await screenshots.take(page, "publish-draft-with-problems")

    await page.goto(f"{stack.base_url}/admin/simulate")
    await page.fill("#email", "jana@example.de")
    await page.select_option("#config", "draft")
    await page.click("button:has-text('Simulate')")
    await expect(page.locator(".problems")).to_contain_text("unknown pool 'Nowhere'")
    await expect(page.locator("#result")).to_have_count(0)
    await page.goto(f"{stack.base_url}/admin/replay")
    await expect(page.locator(".problems")).to_contain_text("unknown pool 'Nowhere'")
    with stack.db.read() as session:
        assert config_store.latest_version(session) == 1


@SQLITE
async def test_a_viewer_pressing_publish_gets_a_page_naming_the_admin_role(
    stack: Stack, admin_users: AdminUsers, page: Page, screenshots: Screenshots
) -> None:
    publish(stack.db, BASE)
    save_draft(stack.db, TO_SAM)
    await login(page, stack.base_url, admin_users.viewer, admin_users.password)
    await page.goto(f"{stack.base_url}/admin/publish")
    await expect(page.locator("#draft-diff .add").first).to_be_visible()
    async with page.expect_response(f"{stack.base_url}/admin/publish") as answer:
        await page.click("button:has-text('Publish as version 2')")
    assert (await answer.value).status == 403
    await expect(page.locator("main")).to_contain_text("needs the admin role")
    await screenshots.take(page, "publish-forbidden-viewer")
    with stack.db.read() as session:
        assert config_store.latest_version(session) == 1


@SQLITE
async def test_a_publish_form_posted_without_its_csrf_token_is_refused(
    stack: Stack, admin_users: AdminUsers, page: Page, screenshots: Screenshots
) -> None:
    publish(stack.db, BASE)
    save_draft(stack.db, TO_SAM)
    await login(page, stack.base_url, admin_users.admin, admin_users.password)
    await page.goto(f"{stack.base_url}/admin/publish")
    await page.locator("form.publish-form input[name=csrf_token]").evaluate("e => e.remove()")
    async with page.expect_response(f"{stack.base_url}/admin/publish") as answer:
        await page.click("button:has-text('Publish as version 2')")
    assert (await answer.value).status == 403
    await expect(page.locator("main")).to_contain_text("security token")
    await screenshots.take(page, "publish-without-csrf")
    with stack.db.read() as session:
        assert config_store.latest_version(session) == 1


@SQLITE
async def test_a_lead_named_like_markup_is_shown_as_text(
    stack: Stack, admin_users: AdminUsers, page: Page, screenshots: Screenshots
) -> None:
    publish(stack.db, BASE)
    name = "<img src=x onerror=alert(1)>"
    lead_id = await routed_lead(stack, first_name=name, company="<b>Bold</b> Inc")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await login(page, stack.base_url, admin_users.admin, admin_users.password)
    await page.goto(f"{stack.base_url}/admin/leads")
    cell = page.locator(f"#lead-{lead_id} td.name")
    await expect(cell.get_by_text(name)).to_be_visible()
    assert await cell.locator("img").count() == 0
    assert await page.locator(f"#lead-{lead_id} b").count() == 0
    await screenshots.take(page, "markup-name-list")

    await cell.locator("a").click()
    await expect(page.locator("h1.lead-name")).to_have_text(name)
    assert await page.locator("main img").count() == 0
    await screenshots.take(page, "markup-name-lead")
    await asyncio.sleep(0.2)
    assert dialogs == []


def test_lead_search_finds_names_companies_and_emails_on_each_backend(db: Database) -> None:
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    people = [
        (
            "a1",
            "ana@north.example",
            {"first_name": "Ana", "last_name": "Lopez", "company": "N 50%"},
        ),
        ("b2", "bo@south.example", {"first_name": "Bo", "company": "South", "source": "demo"}),
        ("c3", "cy@west.example", {"last_name": "Ng", "source": "partner"}),
    ]
    with db.session() as session:
        for index, (lead_id, email, data) in enumerate(people):
            session.add(
                Lead(
                    id=lead_id,
                    workflow_id=f"lead-{lead_id}",
                    email=email,
                    stage="assigned",
                    data={"email": email, **data},
                    received_at=start + timedelta(hours=index),
                    needs_attention=lead_id == "c3",
                )
            )
    with db.read() as session:

        def ids(query: LeadQuery, **page: int) -> list[str]:
            return [lead.id for lead in lead_store.search_leads(session, query, **page)[0]]

        assert ids(LeadQuery()) == ["c3", "b2", "a1"]
        assert ids(LeadQuery(newest_first=False)) == ["a1", "b2", "c3"]
        assert ids(LeadQuery(text="ana lopez")) == ["a1"]
        assert ids(LeadQuery(text="SOUTH")) == ["b2"]
        assert ids(LeadQuery(text="west.example")) == ["c3"]
        assert ids(LeadQuery(text="50%")) == ["a1"]
        assert ids(LeadQuery(text="%")) == ["a1"]  # a wildcard is a character here
        assert ids(LeadQuery(source="demo")) == ["b2"]
        assert ids(LeadQuery(needs_attention=True)) == ["c3"]
        assert ids(LeadQuery(owner=0)) == ["c3", "b2", "a1"]
        assert ids(LeadQuery(), offset=1, limit=1) == ["b2"]
        assert lead_store.search_leads(session, LeadQuery(text="example"), limit=1)[1] == 3
        assert lead_store.lead_sources(session) == ["demo", "partner"]
