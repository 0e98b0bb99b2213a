"""Editing the routing without YAML, in a real browser: reps, pools, territories and
rules with the condition builder (with JavaScript, and without it through server round
trips), each edit saved to the draft and read back through ``store.config``; reordering
and disabling rules; problems shown next to what they concern; a stale save that keeps
the user's input; what a team lead may and may not change; the CSRF check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from temporalio.client import Client

from domain.config import PoolConfig, RoutingConfig, Rule, Territory
from domain.config_yaml import load_yaml
from store import config as config_store
from store.db import Database
from tests.conftest import API_TOKEN, AdminUsers, Screenshots, login, make_settings, serve
from web.app import create_app

BASE = """
reps:
  - {email: avery.park@example.com, name: Avery Park, timezone: Europe/Berlin}
  - {email: jordan.lee@example.com, name: Jordan Lee}
  - {email: sam.rivera@example.com, name: Sam Rivera, timezone: America/New_York}
  - {email: team.lead@example.com, name: Terry Lead}
pools:
  - name: EMEA AE
    strategy: weighted
    timezone: Europe/Berlin
    members:
      - {rep: avery.park@example.com, weight: 2}
      - {rep: jordan.lee@example.com, weight: 1, daily_cap: 20}
    manager: team.lead@example.com
  - name: Inbound
    members:
      - {rep: sam.rivera@example.com}
territories:
  - {name: DACH, countries: [DE, AT, CH]}
rules:
  - name: Partner referrals
    when: {field: source, op: eq, value: partner}
    assign: {rep: sam.rivera@example.com}
  - name: DACH enterprise
    when:
      all:
        - {field: country, op: in_territory, value: DACH}
        - {field: company_size, op: gte, value: 1000}
    assign: {pool: EMEA AE}
  - name: Everyone else with a company
    when: {field: company, op: not_empty}
    assign: {pool: Inbound}
fallback: {pool: Inbound}
"""
PASSWORD = "correct horse battery staple"
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
pytestmark = SQLITE


@pytest.fixture
async def base_url(
    db: Database, client: Client, admin_users: AdminUsers, tmp_path: Path
) -> AsyncIterator[str]:
    """The web app over HTTP, with BASE published (the team lead manages EMEA AE) and
    as the draft."""
    with db.session() as session:
        config_store.save_draft(session, load_yaml(BASE), "test", None)
        config_store.publish(session, "test")
    settings = make_settings(data_dir=tmp_path, database_url=db.url, api_token=API_TOKEN)
    async with serve(create_app(settings, db, client, API_TOKEN)) as http:
        yield str(http.base_url).rstrip("/")


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    opened = await browser.new_context(viewport={"width": 1366, "height": 768})
    yield opened
    await opened.close()


async def signed_in(context: BrowserContext, base_url: str, email: str) -> Page:
    page = await context.new_page()
    await login(page, base_url, email, PASSWORD)
    return page


def draft_of(db: Database) -> tuple[int, RoutingConfig]:
    with db.read() as session:
        found = config_store.get_draft(session)
    assert found is not None
    return found.revision, found.config


def save_behind(db: Database, change: Any, actor: str = "someone@example.com") -> int:
    """Somebody else saves the draft (``change`` edits its dumped document)."""
    revision, config = draft_of(db)
    data = config.dump()
    change(data)
    with db.session() as session:
        return config_store.save_draft(session, RoutingConfig.model_validate(data), actor, revision)


async def csrf_token(page: Page) -> str:
    token = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


# ------------------------------------------------------------------ with JavaScript


async def test_admin_builds_a_territory_a_pool_and_a_nested_rule(
    base_url: str, db: Database, context: BrowserContext, screenshots: Screenshots
) -> None:
    page = await signed_in(context, base_url, "admin@example.com")

    # A territory: countries typed as names and codes, saved as ISO codes.
    await page.goto(f"{base_url}/admin/territories")
    await screenshots.laptop(page, "territories")
    await page.click("text=Add a territory")
    await page.fill("#name", "Nordics")
    await page.fill("#countries", "Sweden, NO, denmark")
    await screenshots.laptop(page, "territory-form")
    await page.click("button:has-text('Add territory')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved territory Nordics")
    territory = draft_of(db)[1].territories[-1]
    assert territory == Territory(name="Nordics", countries=["SE", "NO", "DK"])

    # A pool: a second member row through the form's round trip.
    await page.goto(f"{base_url}/admin/pools/new")
    await page.fill("#name", "Nordics AE")
    await page.select_option("#strategy", "weighted")
    await page.select_option("#timezone", "Europe/Stockholm")
    await page.select_option("#manager", "team.lead@example.com")
    await page.select_option("[name='members.0.rep']", "avery.park@example.com")
    await page.fill("[name='members.0.weight']", "3")
    await page.fill("[name='members.0.daily_cap']", "10")
    await page.click("button:has-text('Add a member')")
    await page.select_option("[name='members.1.rep']", "jordan.lee@example.com")
    await page.check("#fallback_kind-queue")
    await page.fill("#fallback_queue", "Nordics overflow")
    await screenshots.laptop(page, "pool-form")
    await page.click("button:has-text('Add pool')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved pool Nordics AE")
    await screenshots.laptop(page, "pools")
    assert draft_of(db)[1].pools[-1] == PoolConfig.model_validate(
        {
            "name": "Nordics AE",
            "strategy": "weighted",
            "timezone": "Europe/Stockholm",
            "members": [
                {"rep": "avery.park@example.com", "weight": 3, "daily_cap": 10},
                {"rep": "jordan.lee@example.com", "weight": 1},
            ],
            "fallback": {"queue": "Nordics overflow"},
            "manager": "team.lead@example.com",
        }
    )

    # A rule with a nested group, built in place by the script: no request until Save.
    await page.goto(f"{base_url}/admin/rules/new")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    await page.fill("#name", "Nordic enterprise")
    root = page.locator("fieldset.cond-group.root")
    await root.locator("> .group-actions button[data-add=cond]").click()
    await page.select_option("[name='c.0.field']", "country")
    await page.select_option("[name='c.0.op']", "in_territory")
    await page.select_option("[name='c.0.territory']", "Nordics")
    await root.locator("> .group-actions button[data-add=group]").click()
    await page.select_option("[name='c.1.match']", "any")
    await page.select_option("[name='c.1.0.field']", "company_size")
    await page.select_option("[name='c.1.0.op']", "gte")
    await page.fill("[name='c.1.0.value']", "1000")
    await page.locator("fieldset[data-path='c.1'] > .group-actions button[data-add=cond]").click()
    await page.select_option("[name='c.1.1.field']", "extra.")
    await page.fill("[name='c.1.1.extra']", "tier")
    await page.select_option("[name='c.1.1.op']", "in")
    await page.fill("[name='c.1.1.value']", "gold, platinum")
    # A row added and removed again leaves nothing behind.
    await page.locator("fieldset[data-path='c.1'] > .group-actions button[data-add=cond]").click()
    await page.click("[data-path='c.1.2'] button:has-text('Remove')")
    await expect(page.locator("[data-path='c.1.2']")).to_have_count(0)
    await page.select_option("#assign_pool", "Nordics AE")
    assert posts == []
    await screenshots.laptop(page, "rule-form-nested")
    await page.click("button.primary:has-text('Add rule')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved rule Nordic enterprise")
    rule = draft_of(db)[1].rules[-1]
    assert rule == Rule.model_validate(
        {
            "name": "Nordic enterprise",
            "when": {
                "all": [
                    {"field": "country", "op": "in_territory", "value": "Nordics"},
                    {
                        "any": [
                            {"field": "company_size", "op": "gte", "value": 1000},
                            {"field": "extra.tier", "op": "in", "value": ["gold", "platinum"]},
                        ]
                    },
                ]
            },
            "assign": {"pool": "Nordics AE"},
        }
    )
    last = page.locator("#rule-3")
    await expect(last).to_contain_text(
        "country in territory Nordics and (company size ≥ 1000 or extra.tier is one of "
        "gold, platinum) → pool Nordics AE"
    )
    await screenshots.laptop(page, "rules")

    # Reopened, the rule shows what was entered.
    await last.locator("a:has-text('Edit')").click()
    await expect(page.locator("[name='c.1.1.extra']")).to_have_value("tier")
    await expect(page.locator("[name='c.1.1.value']")).to_have_value("gold, platinum")
    await expect(page.locator("[name='c.1.match']")).to_have_value("any")

    await page.goto(f"{base_url}/admin/reps")
    await screenshots.laptop(page, "reps")
    await page.click("#rep-0 a:has-text('Edit')")
    await page.wait_for_url(f"{base_url}/admin/reps/0")
    await screenshots.laptop(page, "rep-form")


async def test_rule_builder_works_without_javascript(
    base_url: str, db: Database, browser: Browser, screenshots: Screenshots
) -> None:
    context = await browser.new_context(
        viewport={"width": 1366, "height": 768}, java_script_enabled=False
    )
    page = await signed_in(context, base_url, "admin@example.com")
    await page.goto(f"{base_url}/admin/rules/new")
    await page.fill("#name", "Mid-market by hand")
    root = page.locator("fieldset.cond-group.root")
    await root.locator("> .group-actions button[data-add=cond]").click()  # a round trip
    await expect(page.locator("#name")).to_have_value("Mid-market by hand")
    await page.select_option("[name='c.0.field']", "company_size")
    await page.select_option("[name='c.0.op']", "between")
    await page.fill("[name='c.0.low']", "200")
    await page.fill("[name='c.0.high']", "999")
    await root.locator("> .group-actions button[data-add=group]").click()
    await expect(page.locator("[name='c.0.high']")).to_have_value("999")
    await page.select_option("[name='c.1.match']", "any")
    await page.select_option("[name='c.1.0.field']", "source")
    await page.fill("[name='c.1.0.value']", "webinar")
    group = page.locator("fieldset[data-path='c.1'] > .group-actions")
    await group.locator("button[data-add=cond]").click()
    await page.select_option("[name='c.1.1.field']", "email_domain")
    await page.select_option("[name='c.1.1.op']", "ends_with")
    await page.fill("[name='c.1.1.value']", "example.org")
    await group.locator("button[data-add=cond]").click()
    await page.click("[data-path='c.1.2'] button:has-text('Remove')")
    await expect(page.locator("[data-path='c.1.2']")).to_have_count(0)
    await expect(page.locator("[name='c.1.1.value']")).to_have_value("example.org")
    await page.check("#assign_kind-account_owner")
    await page.check("#else_kind-rep")
    await page.select_option("#else_rep", "jordan.lee@example.com")
    await screenshots.laptop(page, "rule-form-no-js")
    await page.click("button.primary:has-text('Add rule')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved rule Mid-market by hand")
    assert draft_of(db)[1].rules[-1] == Rule.model_validate(
        {
            "name": "Mid-market by hand",
            "when": {
                "all": [
                    {"field": "company_size", "op": "between", "value": [200, 999]},
                    {
                        "any": [
                            {"field": "source", "op": "eq", "value": "webinar"},
                            {"field": "email_domain", "op": "ends_with", "value": "example.org"},
                        ]
                    },
                ]
            },
            "assign": {"account_owner": True, "else": {"rep": "jordan.lee@example.com"}},
        }
    )

    # What was typed wrong is refused, marked next to its input, and kept.
    revision = draft_of(db)[0]
    await page.goto(f"{base_url}/admin/rules/1")
    await page.fill("[name='c.1.value']", "lots")
    await page.click("button.primary:has-text('Save rule')")
    await expect(page.locator("#c-1-value-error")).to_contain_text("number")
    await expect(page.locator("[name='c.1.value']")).to_have_value("lots")
    await screenshots.laptop(page, "rule-form-refused")
    assert draft_of(db)[0] == revision
    await context.close()


# ------------------------------------------------------------------ the list and problems


async def test_rules_reorder_and_disable(
    base_url: str, db: Database, context: BrowserContext, screenshots: Screenshots
) -> None:
    page = await signed_in(context, base_url, "admin@example.com")
    await page.goto(f"{base_url}/admin/rules")
    await page.locator("#rule-0").get_by_role("button", name="↓ Down").click()
    await expect(page.locator(".flash-ok")).to_contain_text("Moved rule Partner referrals down")
    await page.locator("#rule-1").get_by_role("button", name="Disable").click()
    await expect(page.locator("#rule-1")).to_contain_text("Disabled")
    await page.locator("#rule-2").get_by_role("button", name="Duplicate").click()
    await screenshots.laptop(page, "rules-reordered")
    rules = draft_of(db)[1].rules
    assert [(r.name, r.enabled) for r in rules] == [
        ("DACH enterprise", True),
        ("Partner referrals", False),
        ("Everyone else with a company", True),
        ("Everyone else with a company (copy)", True),
    ]
    await page.locator("#rule-3").get_by_role("button", name="Delete").click()
    assert len(draft_of(db)[1].rules) == 3


async def test_deleting_a_pool_a_rule_uses_shows_the_problem_next_to_the_rule(
    base_url: str, db: Database, context: BrowserContext, screenshots: Screenshots
) -> None:
    page = await signed_in(context, base_url, "admin@example.com")
    await page.goto(f"{base_url}/admin/pools/0")
    await expect(page.locator(".danger-zone")).to_contain_text("DACH enterprise")
    await page.click("button:has-text('Delete pool')")
    await expect(page.locator(".flash-error")).to_contain_text("DACH enterprise")
    assert [p.name for p in draft_of(db)[1].pools] == ["Inbound"]

    await page.goto(f"{base_url}/admin/rules")
    rule = page.locator("#rule-1")
    await expect(rule.locator(".item-problems")).to_contain_text("unknown pool 'EMEA AE'")
    await expect(page.locator(".draft-bar")).to_contain_text("problem")
    await screenshots.laptop(page, "rules-with-problem")
    await rule.locator("a:has-text('Edit')").click()
    await expect(page.locator("#assign_pool-error")).to_contain_text("unknown pool 'EMEA AE'")
    await screenshots.laptop(page, "rule-form-problem")


async def test_a_stale_save_keeps_the_input_and_says_so(
    base_url: str, db: Database, context: BrowserContext, screenshots: Screenshots
) -> None:
    page = await signed_in(context, base_url, "admin@example.com")
    await page.goto(f"{base_url}/admin/reps/0")
    await page.fill("#name", "Avery P. Park")
    await page.fill("#slack_user_id", "U0AVERY")

    def add_territory(data: dict[str, Any]) -> None:
        data["territories"].append({"name": "Benelux", "countries": ["BE", "NL", "LU"]})

    behind = save_behind(db, add_territory)
    await page.click("button.primary:has-text('Save rep')")
    await expect(page.locator(".stale")).to_contain_text("someone@example.com")
    await expect(page.locator(".stale")).to_contain_text(f"revision {behind}")
    await expect(page.locator("#name")).to_have_value("Avery P. Park")
    await expect(page.locator("#slack_user_id")).to_have_value("U0AVERY")
    await screenshots.laptop(page, "rep-form-stale")
    assert draft_of(db)[1].reps[0].name == "Avery Park"

    await page.click("button.primary:has-text('Save rep')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved Avery P. Park")
    config = draft_of(db)[1]
    assert config.reps[0].name == "Avery P. Park"
    assert config.reps[0].slack_user_id == "U0AVERY"
    assert [t.name for t in config.territories] == ["DACH", "Benelux"]


# ------------------------------------------------------------------ roles and CSRF


async def test_a_team_lead_sets_out_of_office_in_their_pool_and_nothing_more(
    base_url: str, db: Database, context: BrowserContext, screenshots: Screenshots
) -> None:
    page = await signed_in(context, base_url, "team.lead@example.com")
    await page.goto(f"{base_url}/admin/reps")
    await page.click("#rep-0 a:has-text('Edit')")  # Avery, in EMEA AE
    await expect(page.locator("#name")).to_have_count(0)  # read-only for a team lead
    await page.click("button:has-text('Add a period')")
    await page.fill("[name='ooo.0.from']", "2026-07-01")
    await page.fill("[name='ooo.0.until']", "2026-07-14")
    await page.fill("[name='m.0.weight']", "5")
    await screenshots.laptop(page, "rep-form-team-lead")
    await page.click("button.primary:has-text('Save rep')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved Avery Park")
    config = draft_of(db)[1]
    period = config.reps[0].out_of_office[0]
    assert (period.from_.isoformat(), period.until.isoformat()) == ("2026-07-01", "2026-07-14")
    assert config.pools[0].members[0].weight == 5
    assert draft_of(db)[0] > 1

    # As EMEA AE's manager, the pool's caps too (its other fields are read-only).
    await page.goto(f"{base_url}/admin/pools/0")
    await expect(page.locator("#name")).to_have_count(0)
    await page.fill("[name='members.1.daily_cap']", "25")
    await screenshots.laptop(page, "pool-form-team-lead")
    await page.click("button.primary:has-text('Save pool')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved pool EMEA AE")
    assert draft_of(db)[1].pools[0].members[1].daily_cap == 25

    # Rules need an admin.
    response = await page.goto(f"{base_url}/admin/rules")
    assert response is not None and response.status == 403
    await expect(page.locator("main")).to_contain_text("admin")
    await screenshots.laptop(page, "rules-forbidden-team-lead")

    # Sam is in no pool the team lead manages: read-only, and a post is refused.
    await page.goto(f"{base_url}/admin/reps/2")
    await expect(page.locator("button:has-text('Save rep')")).to_have_count(0)
    token, revision = await csrf_token(page), str(draft_of(db)[0])
    refused = await page.request.post(
        f"{base_url}/admin/reps/2",
        form={
            "csrf_token": token,
            "revision": revision,
            "key": "sam.rivera@example.com",
            "scope": "availability",
            "ooo_shown": "1",
            "ooo.0.from": "2026-08-01",
            "ooo.0.until": "2026-08-02",
        },
    )
    assert refused.status == 403 and "admin" in await refused.text()
    # Nor may a team lead rename a rep of their own pool.
    refused = await page.request.post(
        f"{base_url}/admin/reps/0",
        form={
            "csrf_token": token,
            "revision": revision,
            "key": "avery.park@example.com",
            "scope": "availability",
            "name": "Someone Else",
        },
    )
    assert refused.status == 403 and "admin" in await refused.text()
    assert draft_of(db)[1].reps[0].name == "Avery Park"
    assert draft_of(db)[1].reps[2].out_of_office == []


async def test_a_form_posted_without_its_csrf_token_is_refused(
    base_url: str, db: Database, context: BrowserContext
) -> None:
    page = await signed_in(context, base_url, "admin@example.com")
    await page.goto(f"{base_url}/admin/rules")
    revision = draft_of(db)[0]
    form: dict[str, str | float | bool] = {"revision": str(revision), "key": "Partner referrals"}
    refused = await page.request.post(f"{base_url}/admin/rules/0/delete", form=form)
    assert refused.status == 403
    wrong: dict[str, str | float | bool] = {**form, "csrf_token": "0" * 64}
    refused = await page.request.post(f"{base_url}/admin/rules/0/delete", form=wrong)
    assert refused.status == 403
    assert draft_of(db)[0] == revision
    assert len(draft_of(db)[1].rules) == 3
