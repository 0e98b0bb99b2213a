"""Editing the lifecycle parts of the configuration in the admin app, in a real browser:
nurture, the hand-off, the scoring model (grades, engagement, scoring rules with the
condition builder) and a pool's speed-to-lead SLA and holidays. Each save changes its
section of the draft and leaves the rest of the document byte for byte as it was; what
was typed wrong is refused next to its input and kept; a stale save keeps the input;
viewers and team leads read but cannot save; the inbox names recipients who are not
reps. The pages break no CSP rule."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from temporalio.client import Client

from domain.config import RoutingConfig, ScoringRule
from domain.config_yaml import load_yaml
from store import config as config_store
from store.db import Database
from store.models import Notification
from tests.conftest import API_TOKEN, AdminUsers, Screenshots, login, make_settings, serve
from web.app import create_app

BASE = """
reps:
  - {email: avery.park@example.com, name: Avery Park, timezone: Europe/Berlin}
  - {email: jordan.lee@example.com, name: Jordan Lee}
  - {email: sam.rivera@example.com, name: Sam Rivera}
  - {email: team.lead@example.com, name: Terry Lead}
pools:
  - name: EMEA AE
    strategy: weighted
    timezone: Europe/Berlin
    members:
      - {rep: avery.park@example.com, weight: 2}
      - {rep: jordan.lee@example.com}
    manager: team.lead@example.com
    sla: {remind_after: 30m, reassign_after: 2h, escalate_after: 4h,
          max_reassignments: 1, business_hours: true}
    holidays: [2026-12-25, 2026-12-26]
  - name: Inbound
    members: [{rep: jordan.lee@example.com}]
  - name: Account Management
    members: [{rep: sam.rivera@example.com}]
territories:
  - {name: DACH, countries: [DE, AT, CH]}
rules:
  - name: DACH enterprise
    when:
      all:
        - {field: country, op: in_territory, value: DACH}
        - {field: company_size, op: gte, value: 1000}
    assign: {pool: EMEA AE}
  - name: High scorers
    when: {field: grade, op: eq, value: hot}
    assign: {pool: EMEA AE}
fallback: {pool: Inbound}
scoring:
  rules:
    - name: company of 500+
      points: 20
      when: {field: company_size, op: gte, value: 500}
    - name: senior in DACH
      points: 15
      when:
        all:
          - {field: country, op: in_territory, value: DACH}
          - any:
              - {field: title, op: contains, value: VP}
              - {field: title, op: contains, value: Director}
    - name: free-mail address
      points: -10
      when: {field: free_mail, op: eq, value: true}
  engagement:
    half_life: 14d
    points: {email_opened: 2, link_clicked: 5, meeting_requested: 15}
    other_points: 1
  grades:
    - {name: hot, min_score: 60}
    - {name: warm, min_score: 30}
    - {name: cold, min_score: 0}
  max_score: 100
nurture:
  no_meeting_after: 14d
  recycle_score: 60
  cool_off: 90d
  lost_cool_off: 180d
  stale_after: 30d
  list_name: Leadflow nurture
  queue_retry_after: 15m
handoff:
  pool: Account Management
  onboarding_tasks:
    - {subject: Kick-off call with the new customer, due_in: 2d}
    - {subject: Send the welcome pack, due_in: 1d}
"""
PASSWORD = "correct horse battery staple"
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
async def base_url(
    db: Database, client: Client, admin_users: AdminUsers, tmp_path: Path
) -> AsyncIterator[str]:
    """The web app over HTTP, with BASE published (the team lead manages EMEA AE) and as
    the draft."""
    with db.session() as session:
        config_store.save_draft(session, load_yaml(BASE), "test", None)
        config_store.publish(session, "test")
    settings = make_settings(data_dir=tmp_path, database_url=db.url, api_token=API_TOKEN)
    async with serve(create_app(settings, db, client, API_TOKEN)) as http:
        yield str(http.base_url).rstrip("/")


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A browser context whose pages must break no CSP rule."""
    opened = await browser.new_context(viewport={"width": 1366, "height": 768})
    refused: list[str] = []
    opened.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield opened
    await opened.close()
    assert refused == []


async def signed_in(context: BrowserContext, base_url: str, email: str) -> Page:
    """A new page of ``context`` signed in as ``email`` (the context's cookies are
    cleared first: one login per context at a time)."""
    await context.clear_cookies()
    page = await context.new_page()
    await login(page, base_url, email, PASSWORD)
    return page


def draft_of(db: Database) -> tuple[int, RoutingConfig]:
    with db.read() as session:
        found = config_store.get_draft(session)
    assert found is not None
    return found.revision, found.config


def canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1)


def assert_only_changed(
    before: RoutingConfig, after: RoutingConfig, change: Callable[[dict[str, Any]], None]
) -> None:
    """``after`` is ``before`` with ``change`` applied to its document, byte for byte."""
    expected = before.dump()
    change(expected)
    assert canonical(after.dump()) == canonical(expected)


async def csrf_token(page: Page) -> str:
    token = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


# ------------------------------------------------------------------ nurture and hand-off


async def test_admin_edits_nurture_and_the_handoff(
    base_url: str, db: Database, context: BrowserContext, screenshots: Screenshots
) -> None:
    page = await signed_in(context, base_url, "admin@example.com")
    await page.click("nav >> text=Lifecycle & scoring")
    assert page.url.endswith("/admin/lifecycle")
    await expect(page.locator(".nav-item.active")).to_have_text("Lifecycle & scoring")
    await expect(page.locator("#cool_off")).to_have_value("90d")
    await expect(page.locator("#queue_retry_after")).to_have_value("15m")
    await expect(page.locator("#handoff_pool")).to_have_value("Account Management")
    await expect(page.locator("[name='tasks.1.subject']")).to_have_value("Send the welcome pack")
    await screenshots.laptop(page, "lifecycle")

    # Nurture: durations in any accepted form, saved in the canonical one.
    revision, before = draft_of(db)
    await page.fill("#cool_off", "8w")
    await page.fill("#lost_cool_off", "1d12h")
    await page.fill("#recycle_score", "70")
    await page.fill("#list_name", "Re-engage 2026")
    await page.fill("#queue_retry_after", "90s")
    await page.click("button:has-text('Save nurture settings')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved the nurture settings")
    assert page.url.endswith("/admin/lifecycle#nurture")
    await expect(page.locator("#cool_off")).to_have_value("56d")
    await expect(page.locator("#queue_retry_after")).to_have_value("1m30s")
    after_revision, after = draft_of(db)
    assert after_revision == revision + 1

    def nurture(data: dict[str, Any]) -> None:
        data["nurture"].update(
            cool_off="56d",
            lost_cool_off="1d12h",
            recycle_score=70,
            list_name="Re-engage 2026",
            queue_retry_after="1m30s",
        )

    assert_only_changed(before, after, nurture)

    # Hand-off: another pool, a task added (a round trip keeps what was typed) and one
    # removed.
    before = after
    await page.select_option("#handoff_pool", "Inbound")
    await page.fill("[name='tasks.0.due_in']", "3d")
    await page.click("button:has-text('Add a task')")
    await expect(page.locator("#handoff_pool")).to_have_value("Inbound")
    await expect(page.locator("[name='tasks.0.due_in']")).to_have_value("3d")
    await page.fill("[name='tasks.2.subject']", "Introduce the support team")
    await page.fill("[name='tasks.2.due_in']", "1w")
    await page.click("button[value='remove_tasks:1']")
    await expect(page.locator("[name='tasks.1.subject']")).to_have_value(
        "Introduce the support team"
    )
    await screenshots.laptop(page, "handoff-editing")
    await page.click("button:has-text('Save hand-off')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved the hand-off")

    def handoff(data: dict[str, Any]) -> None:
        data["handoff"] = {
            "pool": "Inbound",
            "onboarding_tasks": [
                {"subject": "Kick-off call with the new customer", "due_in": "3d"},
                {"subject": "Introduce the support team", "due_in": "7d"},
            ],
        }

    assert_only_changed(before, draft_of(db)[1], handoff)

    # No hand-off pool: the deal's owner keeps the customer.
    await page.select_option("#handoff_pool", "")
    await page.click("button:has-text('Save hand-off')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved the hand-off")
    assert draft_of(db)[1].handoff.pool is None

    # The audit log has the saves under the admin's email.
    await page.goto(f"{base_url}/admin/audit")
    await expect(page.locator("main")).to_contain_text("admin@example.com")


async def test_what_was_typed_wrong_is_refused_at_its_field_and_kept(
    base_url: str, db: Database, context: BrowserContext, screenshots: Screenshots
) -> None:
    page = await signed_in(context, base_url, "admin@example.com")
    await page.goto(f"{base_url}/admin/lifecycle")
    revision = draft_of(db)[0]
    await page.fill("#cool_off", "15 minutes")
    await page.fill("#no_meeting_after", "")
    await page.fill("#recycle_score", "-5")
    await page.click("button:has-text('Save nurture settings')")
    await expect(page.locator("#nurture .flash-error")).to_contain_text("Not saved")
    await expect(page.locator("#cool_off-error")).to_contain_text(
        "use a duration like 90s, 15m, 2h or 7d"
    )
    await expect(page.locator("#cool_off")).to_have_value("15 minutes")
    await expect(page.locator("#cool_off")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#no_meeting_after-error")).to_contain_text("is required")
    await expect(page.locator("#recycle_score-error")).to_contain_text("0 or more")
    await screenshots.laptop(page, "lifecycle-refused")
    assert draft_of(db)[0] == revision

    # A recycle score above the maximum could never be reached: refused, at the field.
    await page.fill("#cool_off", "90d")
    await page.fill("#no_meeting_after", "14d")
    await page.fill("#recycle_score", "150")
    await page.click("button:has-text('Save nurture settings')")
    await expect(page.locator("#recycle_score-error")).to_contain_text("can never be reached")
    assert draft_of(db)[0] == revision

    # Onboarding tasks need a subject and a duration.
    await page.fill("[name='tasks.0.subject']", "")
    await page.fill("[name='tasks.1.due_in']", "soon")
    await page.click("button:has-text('Save hand-off')")
    await expect(page.locator("#tasks-0-subject-error")).to_contain_text("subject")
    await expect(page.locator("#tasks-1-due_in-error")).to_contain_text("use a duration like")
    assert draft_of(db)[0] == revision

    # Scoring: a negative minimum, a grade named twice, engagement points out of range,
    # a kind that is not snake_case, a bad half-life.
    await page.goto(f"{base_url}/admin/lifecycle/scoring")
    await page.fill("[name='grades.1.min_score']", "-5")
    await page.click("button:has-text('Save grades')")
    await expect(page.locator("#grades-1-min_score-error")).to_contain_text("0 or more")
    await page.fill("[name='grades.1.min_score']", "30")
    await page.fill("[name='grades.1.name']", "HOT")
    await page.click("button:has-text('Save grades')")
    await expect(page.locator("#grades-1-name-error")).to_contain_text("duplicate grade")
    await page.fill("#half_life", "2 weeks")
    await page.fill("[name='points.0.points']", "150")
    await page.fill("[name='points.1.kind']", "Link clicked")
    await page.click("button:has-text('Save engagement points')")
    await expect(page.locator("#half_life-error")).to_contain_text("use a duration like")
    await expect(page.locator("#points-0-points-error")).to_contain_text("-100..100")
    await expect(page.locator("#points-1-kind-error")).to_contain_text("snake_case")
    await expect(page.locator("[name='points.1.kind']")).to_have_value("Link clicked")
    await screenshots.laptop(page, "scoring-refused")
    assert draft_of(db)[0] == revision


async def test_a_stale_save_keeps_the_input_and_says_who_saved(
    base_url: str, db: Database, context: BrowserContext
) -> None:
    page = await signed_in(context, base_url, "admin@example.com")
    await page.goto(f"{base_url}/admin/lifecycle")
    await page.fill("#stale_after", "21d")
    revision, config = draft_of(db)
    data = config.dump()
    data["territories"].append({"name": "Benelux", "countries": ["BE", "NL", "LU"]})
    with db.session() as session:
        behind = config_store.save_draft(
            session, RoutingConfig.model_validate(data), "someone@example.com", revision
        )
    await page.click("button:has-text('Save nurture settings')")
    await expect(page.locator("#nurture .stale")).to_contain_text("someone@example.com")
    await expect(page.locator("#nurture .stale")).to_contain_text(f"revision {behind}")
    await expect(page.locator("#stale_after")).to_have_value("21d")
    assert draft_of(db)[1].nurture.stale_after == timedelta(days=30)

    await page.click("button:has-text('Save nurture settings')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved the nurture settings")
    config = draft_of(db)[1]
    assert config.nurture.stale_after == timedelta(days=21)
    assert [t.name for t in config.territories] == ["DACH", "Benelux"]


# ------------------------------------------------------------------ scoring


async def test_admin_edits_grades_and_engagement(
    base_url: str, db: Database, context: BrowserContext, screenshots: Screenshots
) -> None:
    page = await signed_in(context, base_url, "admin@example.com")
    await page.goto(f"{base_url}/admin/lifecycle")
    await page.click(".tabs >> text=Scoring")
    assert page.url.endswith("/admin/lifecycle/scoring")
    await expect(page.locator("#scoring-rule-1")).to_contain_text(
        "country in territory DACH and (title contains VP or title contains Director)"
    )
    await expect(page.locator("#scoring-rule-2 .points")).to_have_text("\N{MINUS SIGN}10")
    await screenshots.laptop(page, "scoring")

    _, before = draft_of(db)
    await page.click("button:has-text('Add a grade')")
    await page.fill("[name='grades.3.name']", "lukewarm")
    await page.fill("[name='grades.3.min_score']", "15")
    await page.fill("#max_score", "120")
    await page.click("button:has-text('Save grades')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved the grades")

    def grades(data: dict[str, Any]) -> None:
        data["scoring"]["grades"].append({"name": "lukewarm", "min_score": 15})
        data["scoring"]["max_score"] = 120

    after = draft_of(db)[1]
    assert_only_changed(before, after, grades)

    before = after
    await page.fill("#half_life", "7d")
    await page.fill("#other_points", "-1")
    await page.click("button[value='remove_points:1']")  # link_clicked
    await page.click("button:has-text('Add a kind')")
    await page.fill("[name='points.2.kind']", "webinar_attended")
    await page.fill("[name='points.2.points']", "8")
    await page.click("button:has-text('Save engagement points')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved the engagement points")

    def engagement(data: dict[str, Any]) -> None:
        data["scoring"]["engagement"] = {
            "half_life": "7d",
            "points": {"email_opened": 2, "meeting_requested": 15, "webinar_attended": 8},
            "other_points": -1,
        }

    assert_only_changed(before, draft_of(db)[1], engagement)

    # Saving what the draft holds saves nothing.
    revision = draft_of(db)[0]
    await page.click("button:has-text('Save grades')")
    await expect(page.locator(".flash-ok")).to_contain_text("Nothing to save")
    assert draft_of(db)[0] == revision


async def test_admin_builds_edits_and_deletes_scoring_rules(
    base_url: str, db: Database, context: BrowserContext, screenshots: Screenshots
) -> None:
    page = await signed_in(context, base_url, "admin@example.com")
    await page.goto(f"{base_url}/admin/lifecycle/scoring")
    _, before = draft_of(db)

    # A nested rule, built in place by the script.
    await page.click("text=Add a scoring rule")
    await page.fill("#name", "Nordic fintech")
    await page.fill("#points", "12")
    root = page.locator("fieldset.cond-group.root")
    await root.locator("> .group-actions button[data-add=cond]").click()
    options = page.locator("[name='c.0.field'] option")
    assert "score" not in await options.evaluate_all("os => os.map(o => o.value)")
    await page.select_option("[name='c.0.field']", "industry")
    await page.select_option("[name='c.0.op']", "in")
    await page.fill("[name='c.0.value']", "fintech, banking")
    await root.locator("> .group-actions button[data-add=group]").click()
    await page.select_option("[name='c.1.match']", "any")
    await page.select_option("[name='c.1.0.field']", "country")
    await page.select_option("[name='c.1.0.op']", "in")
    await page.fill("[name='c.1.0.value']", "SE, NO")
    await page.locator("fieldset[data-path='c.1'] > .group-actions button[data-add=cond]").click()
    await page.select_option("[name='c.1.1.field']", "email_domain")
    await page.select_option("[name='c.1.1.op']", "ends_with")
    await page.fill("[name='c.1.1.value']", ".se")
    await screenshots.laptop(page, "scoring-rule-form")
    await page.click("button.primary:has-text('Add scoring rule')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved scoring rule Nordic fintech")
    await expect(page.locator("#scoring-rule-3")).to_contain_text(
        "industry is one of fintech, banking and (country is one of SE, NO or email domain "
        "ends with .se)"
    )
    new_rule = ScoringRule.model_validate(
        {
            "name": "Nordic fintech",
            "points": 12,
            "when": {
                "all": [
                    {"field": "industry", "op": "in", "value": ["fintech", "banking"]},
                    {
                        "any": [
                            {"field": "country", "op": "in", "value": ["SE", "NO"]},
                            {"field": "email_domain", "op": "ends_with", "value": ".se"},
                        ]
                    },
                ]
            },
        }
    )
    after = draft_of(db)[1]
    assert_only_changed(
        before,
        after,
        lambda d: d["scoring"]["rules"].append(new_rule.model_dump(mode="json")),
    )

    # The nested rule of the draft: only its points change, its condition is kept.
    before = after
    await page.click("#scoring-rule-1 a:has-text('Edit')")
    await expect(page.locator("[name='c.1.match']")).to_have_value("any")
    await expect(page.locator("[name='c.0.territory']")).to_have_value("DACH")
    await page.fill("#points", "25")
    await page.click("button.primary:has-text('Save scoring rule')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved scoring rule senior in DACH")
    after = draft_of(db)[1]
    assert_only_changed(before, after, lambda d: d["scoring"]["rules"][1].update(points=25))

    # 0 points, a name another rule has, a rule without a condition: refused.
    revision = draft_of(db)[0]
    await page.click("#scoring-rule-0 a:has-text('Edit')")
    await page.fill("#points", "0")
    await page.click("button.primary:has-text('Save scoring rule')")
    await expect(page.locator("#points-error")).to_contain_text("not 0")
    await page.fill("#points", "20")
    await page.fill("#name", "Free-mail address")
    await page.click("button.primary:has-text('Save scoring rule')")
    await expect(page.locator("#name-error")).to_contain_text("duplicate name")
    await page.fill("#name", "company of 500+")
    await page.click("[data-path='c.0'] button:has-text('Remove')")
    await page.click("button.primary:has-text('Save scoring rule')")
    await expect(page.locator("#c-match-error")).to_contain_text("add a condition")
    await screenshots.laptop(page, "scoring-rule-refused")
    assert draft_of(db)[0] == revision

    # Delete.
    await page.goto(f"{base_url}/admin/lifecycle/scoring")
    await page.locator("#scoring-rule-2").get_by_role("button", name="Delete").click()
    await expect(page.locator(".flash-ok")).to_contain_text("Deleted scoring rule free-mail")
    assert [r.name for r in draft_of(db)[1].scoring.rules] == [
        "company of 500+",
        "senior in DACH",
        "Nordic fintech",
    ]


# ------------------------------------------------------------------ who may


async def test_viewers_and_team_leads_read_but_cannot_save(
    base_url: str, db: Database, context: BrowserContext, screenshots: Screenshots
) -> None:
    revision = draft_of(db)[0]
    for email in ("viewer@example.com", "team.lead@example.com"):
        page = await signed_in(context, base_url, email)
        await page.goto(f"{base_url}/admin/lifecycle")
        await expect(page.locator("main .note")).to_contain_text("admin")
        await expect(page.locator("#cool_off")).to_be_disabled()
        await expect(page.locator("#cool_off")).to_have_value("90d")
        await expect(page.locator("button:has-text('Save nurture settings')")).to_have_count(0)
        if email.startswith("viewer"):
            await screenshots.laptop(page, "lifecycle-viewer")
        token = await csrf_token(page)
        for section, form in (
            ("nurture", {"cool_off": "1d"}),
            ("handoff", {"handoff_pool": ""}),
            ("grades", {"max_score": "50"}),
            ("engagement", {"half_life": "1d"}),
        ):
            refused = await page.request.post(
                f"{base_url}/admin/lifecycle/{section}",
                form={"csrf_token": token, "revision": str(revision), **form},
            )
            assert refused.status == 403 and "admin" in await refused.text()
        refused = await page.request.post(
            f"{base_url}/admin/lifecycle/scoring/rules/0/delete",
            form={"csrf_token": token, "revision": str(revision), "key": "company of 500+"},
        )
        assert refused.status == 403

        await page.goto(f"{base_url}/admin/lifecycle/scoring/rules/1")
        await expect(page.locator("#points")).to_be_disabled()
        await expect(page.locator("button:has-text('Save scoring rule')")).to_have_count(0)
        await expect(page.locator("fieldset.cond-group.root > .group-actions")).to_be_hidden()
        await expect(page.locator("[name='c.1.match']")).to_have_value("any")
        response = await page.goto(f"{base_url}/admin/lifecycle/scoring/rules/new")
        assert response is not None and response.status == 403
        await page.close()
    assert draft_of(db)[0] == revision


# ------------------------------------------------------------------ a pool's SLA


async def test_a_pools_sla_and_holidays_survive_a_save_and_can_be_edited(
    base_url: str, db: Database, context: BrowserContext, screenshots: Screenshots
) -> None:
    page = await signed_in(context, base_url, "admin@example.com")
    await page.goto(f"{base_url}/admin/pools")
    await expect(page.locator("#pool-0")).to_contain_text("remind 30m")
    await expect(page.locator("#pool-0")).to_contain_text("working hours less 2 holidays")
    await screenshots.laptop(page, "pools")

    # Saved as it is (a member's weight changed), the pool keeps its SLA and holidays.
    _, before = draft_of(db)
    await page.click("#pool-0 a:has-text('Edit')")
    await expect(page.locator("#sla_remind_after")).to_have_value("30m")
    await expect(page.locator("#sla_escalate_after")).to_have_value("4h")
    await expect(page.locator("#sla_business_hours")).to_be_checked()
    await expect(page.locator("[name='holidays.1.date']")).to_have_value("2026-12-26")
    await screenshots.laptop(page, "pool-form-sla")
    await page.fill("[name='members.1.weight']", "3")
    await page.click("button.primary:has-text('Save pool')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved pool EMEA AE")
    after = draft_of(db)[1]
    assert_only_changed(before, after, lambda d: d["pools"][0]["members"][1].update(weight=3))

    # A bad duration and steps out of order: refused at their fields, input kept.
    revision = draft_of(db)[0]
    await page.goto(f"{base_url}/admin/pools/0")
    await page.fill("#sla_remind_after", "15")
    await page.click("button.primary:has-text('Save pool')")
    await expect(page.locator("#sla_remind_after-error")).to_contain_text(
        "use a duration like 90s, 15m, 2h or 7d"
    )
    await expect(page.locator("#sla_remind_after")).to_have_value("15")
    await page.fill("#sla_remind_after", "3h")
    await page.fill("#sla_max_reassignments", "25")
    await page.click("button.primary:has-text('Save pool')")
    await expect(page.locator("#sla_reassign_after-error")).to_contain_text(
        "comes after the reminder (3h)"
    )
    await expect(page.locator("#sla_max_reassignments-error")).to_contain_text("20")
    await screenshots.laptop(page, "pool-form-sla-refused")
    assert draft_of(db)[0] == revision

    # Edited: the steps, round the clock, a holiday added and one removed.
    before = draft_of(db)[1]
    await page.fill("#sla_remind_after", "20m")
    await page.fill("#sla_reassign_after", "1h30m")
    await page.fill("#sla_escalate_after", "1d")
    await page.fill("#sla_max_reassignments", "0")
    await page.uncheck("#sla_business_hours")
    await page.click("button:has-text('Add a holiday')")
    await expect(page.locator("#sla_remind_after")).to_have_value("20m")
    await page.fill("[name='holidays.2.date']", "2027-01-01")
    await page.click("button[value='remove_holidays:0']")
    await page.click("button.primary:has-text('Save pool')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved pool EMEA AE")

    def sla(data: dict[str, Any]) -> None:
        data["pools"][0]["sla"] = {
            "remind_after": "20m",
            "reassign_after": "1h30m",
            "escalate_after": "1d",
            "max_reassignments": 0,
            "business_hours": False,
        }
        data["pools"][0]["holidays"] = ["2026-12-26", "2027-01-01"]

    assert_only_changed(before, draft_of(db)[1], sla)
    assert draft_of(db)[1].pools[0].holidays == [date(2026, 12, 26), date(2027, 1, 1)]

    # A holiday listed twice is refused at the second.
    await page.goto(f"{base_url}/admin/pools/0")
    await page.click("button:has-text('Add a holiday')")
    await page.fill("[name='holidays.2.date']", "2026-12-26")
    await page.click("button.primary:has-text('Save pool')")
    await expect(page.locator("#holidays-2-date-error")).to_contain_text("listed twice")


async def test_the_handoff_follows_its_pool_and_a_team_lead_keeps_the_sla(
    base_url: str, db: Database, context: BrowserContext
) -> None:
    page = await signed_in(context, base_url, "admin@example.com")
    await page.goto(f"{base_url}/admin/pools/2")
    await expect(page.locator("main .page-head")).to_contain_text("the hand-off")
    await page.fill("#name", "Customer Success")
    await page.click("button.primary:has-text('Save pool')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved pool Customer Success")
    assert draft_of(db)[1].handoff.pool == "Customer Success"

    # Deleted, the pool the hand-off names is a problem shown at the hand-off's pool, until
    # another one is chosen.
    await page.goto(f"{base_url}/admin/pools/2")
    await page.click("button:has-text('Delete pool')")
    await expect(page.locator(".flash-error")).to_contain_text("the hand-off")
    await page.goto(f"{base_url}/admin/lifecycle")
    await expect(page.locator("#handoff_pool-error")).to_contain_text("unknown pool")
    await expect(page.locator("#handoff_pool option:checked")).to_contain_text("not in the draft")
    await page.select_option("#handoff_pool", "Inbound")
    await page.click("button:has-text('Save hand-off')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved the hand-off")
    await expect(page.locator(".draft-bar")).to_contain_text("No problems")
    await page.close()

    # The manager of EMEA AE changes a cap; the SLA and holidays they cannot edit stay.
    _, before = draft_of(db)
    page = await signed_in(context, base_url, "team.lead@example.com")
    await page.goto(f"{base_url}/admin/pools/0")
    await expect(page.locator("#sla")).to_contain_text("30m")
    await expect(page.locator("#sla_remind_after")).to_have_count(0)
    await page.fill("[name='members.0.daily_cap']", "12")
    await page.click("button.primary:has-text('Save pool')")
    await expect(page.locator(".flash-ok")).to_contain_text("Saved pool EMEA AE")
    assert_only_changed(
        before, draft_of(db)[1], lambda d: d["pools"][0]["members"][0].update(daily_cap=12)
    )


# ------------------------------------------------------------------ the inbox


async def test_the_inbox_names_recipients_who_are_not_reps(
    base_url: str, db: Database, context: BrowserContext, screenshots: Screenshots
) -> None:
    with db.session() as session:
        session.add_all(
            [
                Notification(
                    idempotency_key="test-escalation",
                    recipient="team.lead@example.com",
                    kind="sla_escalated",
                    text="A lead of EMEA AE was not contacted within 4h.",
                ),
                Notification(
                    idempotency_key="test-win",
                    recipient="#wins",
                    kind="deal_won",
                    text="Acme signed: 12,000 EUR.",
                ),
                Notification(
                    idempotency_key="test-unknown",
                    recipient="cfo@example.com",
                    kind="sla_escalated",
                    text="A lead of Inbound was not contacted within 1h.",
                ),
            ]
        )
    page = await signed_in(context, base_url, "admin@example.com")
    await page.goto(f"{base_url}/admin/inbox")
    rows = page.locator("tr.notification")
    await expect(rows.filter(has_text="Acme signed")).to_contain_text("#wins")
    await expect(rows.filter(has_text="Acme signed")).to_contain_text("channel")
    escalation = rows.filter(has_text="EMEA AE was not contacted")
    await expect(escalation).to_contain_text("Terry Lead")
    await expect(escalation).to_contain_text("team.lead@example.com")
    await expect(rows.filter(has_text="Inbound was not contacted")).to_contain_text(
        "cfo@example.com"
    )
    assert "—" not in await page.locator("tr.notification td.to").all_inner_texts()
    await screenshots.laptop(page, "inbox")
