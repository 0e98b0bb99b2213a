"""Approvals with a hierarchy on the real Temporal dev server, without Slack: requests
and decisions through the JSON API, escalation on second-long timeouts, the outcome
applied to the lead; the chain's configuration checks and the message builders."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from playwright.async_api import Browser, expect

from bots.blocks.approvals import APPROVE_ACTION, REJECT_ACTION, approval_locked, approval_request
from domain.approvals import ApprovalRequest, ApprovalResult, Outcome, plan
from domain.config import ApprovalsConfig
from domain.config_yaml import check_yaml
from domain.lead import workflow_id_for
from tests.conftest import AdminUsers, Screenshots, Stack, login
from tests.lifecycle_support import (
    at,
    completed,
    event,
    eventually,
    eventually_async,
    lead,
    new_lead,
    notifications,
    of_type,
    publish,
    types,
    until,
)

# The scenarios run on SQLite (the stack's database); the pure tests need none.
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

MANAGER = "morgan.hale@example.com"
DIRECTOR = "director@example.com"
HISTORIES = Path(__file__).parent / "histories"
TO_NEGOTIATION = (
    "contacted",
    "meeting_booked",
    "qualified",
    "proposal_sent",
    "negotiation_started",
)


def chains(**found: Any) -> Any:
    """An ``edit`` for ``publish`` that adds these approval chains."""

    def edit(config: dict[str, Any]) -> None:
        config["approvals"] = found

    return edit


async def ask(stack: Stack, lead_id: str, **body: object) -> httpx.Response:
    return await stack.http.post(
        f"/api/v1/leads/{lead_id}/approvals", json=body, headers=stack.auth
    )


async def decide(stack: Stack, approval_id: str, **body: object) -> httpx.Response:
    return await stack.http.post(
        f"/api/v1/approvals/{approval_id}/decision", json=body, headers=stack.auth
    )


async def approval(stack: Stack, approval_id: str) -> dict[str, Any]:
    """The approval as ``GET /api/v1/approvals`` lists it (stored by its first step)."""

    async def listed() -> dict[str, Any] | None:
        response = await stack.http.get("/api/v1/approvals", headers=stack.auth)
        assert response.status_code == 200, response.text
        found = [a for a in response.json()["approvals"] if a["approval_id"] == approval_id]
        return found[0] if found else None

    return await eventually_async(listed, f"listed {approval_id}", within=5)


async def lead_state(stack: Stack, lead_id: str) -> dict[str, Any]:
    state: dict[str, Any] = await stack.client.get_workflow_handle(workflow_id_for(lead_id)).query(
        "state"
    )
    return state


async def record_history(stack: Stack, lead_id: str, name: str) -> None:
    """With LEADFLOW_RECORD_HISTORY=1, keep the lead's history for tests/test_replay.py."""
    if os.environ.get("LEADFLOW_RECORD_HISTORY") == "1":
        history = await stack.client.get_workflow_handle(workflow_id_for(lead_id)).fetch_history()
        (HISTORIES / f"{name}__lead.json").write_text(history.to_json())


# ------------------------------------------------------------------------- discount


@SQLITE
async def test_discount_escalates_past_a_silent_manager_and_the_director_approves(
    stack: Stack,
) -> None:
    publish(
        stack,
        chains(
            discount={
                "levels": [
                    {"up_to": 20, "approvers": ["pool_manager"], "timeout": "1s"},
                    {"approvers": [DIRECTOR], "timeout": "1m"},
                ]
            }
        ),
    )
    lead_id = await new_lead(stack)
    owner = (await lead(stack, lead_id))["owner"]["email"]
    for type_ in TO_NEGOTIATION:
        await event(stack, lead_id, type_)
    asked = await ask(
        stack, lead_id, kind="discount", percent=15, reason="three-year deal", requested_by=owner
    )
    assert asked.status_code == 202, asked.text
    started = asked.json()
    approval_id = started["approval_id"]
    assert approval_id == f"approval-{lead_id}-1"
    assert (started["level"], started["approvers"], started["levels"]) == (1, [MANAGER], 2)
    again = await ask(stack, lead_id, kind="discount", percent=5, reason="again")
    assert again.status_code == 409 and approval_id in again.text, again.text

    # Somebody who is not an approver changes nothing; a rejection needs a comment.
    outsider = await decide(stack, approval_id, decision="approve", by="sam.rivera@example.com")
    assert outsider.status_code == 403, outsider.text
    assert outsider.json()["detail"][0]["message"] == "you are not an approver for this request"
    bare = await decide(stack, approval_id, decision="reject", by=MANAGER)
    assert bare.status_code == 422 and bare.json()["detail"][0]["field"] == "comment", bare.text
    assert (await approval(stack, approval_id))["status"] == "pending"

    # The manager lets the level's second pass: the director's turn.
    async def escalated() -> dict[str, Any] | None:
        found = await approval(stack, approval_id)
        return found if found["level"] == 2 else None

    waiting = await eventually_async(escalated, "escalated to the director", within=8)
    assert waiting["approvers"] == [DIRECTOR] and waiting["status"] == "pending", waiting
    late = await decide(stack, approval_id, decision="approve", by=MANAGER)
    assert late.status_code == 403, late.text

    approved = await decide(stack, approval_id, decision="approve", by=DIRECTOR, comment="ok")
    assert approved.status_code == 200, approved.text
    result = approved.json()
    assert (result["outcome"], result["decided_by"], result["level"]) == (
        "approved",
        DIRECTOR,
        2,
    )
    # The same decision twice is answered the same way, and taken once.
    twice = await decide(stack, approval_id, decision="approve", by=DIRECTOR, comment="ok")
    assert twice.status_code == 200 and twice.json() == result, twice.text
    other = await decide(stack, approval_id, decision="reject", by=DIRECTOR, comment="no")
    assert other.status_code == 409, other.text

    body = await until(
        stack, lead_id, lambda b: of_type(b, "approval_decided"), what="recorded the approval"
    )
    decided = of_type(body, "approval_decided")
    assert len(decided) == 1, types(body)
    assert decided[0]["data"]["approver"] == DIRECTOR and decided[0]["data"]["percent"] == "15"
    assert decided[0]["data"]["comment"] == "ok"
    assert [e["data"]["level"] for e in of_type(body, "approval_escalated")] == [2]
    assert body["stage"] == "negotiation"

    async def discounted() -> dict[str, Any] | None:
        state = await lead_state(stack, lead_id)
        return state if state["approved_discount"] == "15" else None

    state = await eventually_async(discounted, "kept the discount on the lead")
    assert state["open_approvals"] == {} and state["stage"] == "negotiation"
    asked_of = [n.recipient for n in notifications(stack.db, lead_id, "approval_request")]
    assert asked_of == [MANAGER, DIRECTOR], asked_of
    told = notifications(stack.db, lead_id, "approval_result")
    assert [n.recipient for n in told] == [owner] and "Approved by" in told[0].text
    # The negotiation goes on, discount approved: a second discount may be asked now.
    assert (await event(stack, lead_id, "won", amount="8500", currency="EUR"))["stage"] == "won"
    listed = await approval(stack, approval_id)
    assert listed["status"] == "approved" and listed["decided_by"] == DIRECTOR
    assert at(listed["decided_at"]) == at(result["decided_at"])
    # Once its workflow has ended, the same decision still gets the same answer.
    child = stack.client.get_workflow_handle(approval_id)
    assert await eventually_async(lambda: completed(child), "the approval ended")
    after = await decide(stack, approval_id, decision="approve", by=DIRECTOR, comment="ok")
    assert after.status_code == 200 and after.json() == result, after.text
    assert (await decide(stack, approval_id, decision="approve", by=MANAGER)).status_code == 409
    await record_history(stack, lead_id, "discount_escalates_then_the_director_approves_approval")


# ------------------------------------------------------------------------- timeout


@SQLITE
async def test_final_timeout_rejects_and_tells_the_requester(stack: Stack) -> None:
    publish(
        stack,
        chains(reassignment={"levels": [{"approvers": ["pool_manager"], "timeout": "1s"}]}),
    )
    lead_id = await new_lead(stack)
    owner = (await lead(stack, lead_id))["owner"]["email"]
    asked = await ask(stack, lead_id, kind="reassignment", reason="out next week")
    assert asked.status_code == 202, asked.text
    approval_id = asked.json()["approval_id"]

    async def ended() -> dict[str, Any] | None:
        found = await approval(stack, approval_id)
        return found if found["status"] != "pending" else None

    found = await eventually_async(ended, "timed out", within=8)
    assert (found["status"], found["timed_out"], found["decided_by"]) == (
        "rejected",
        True,
        "timeout",
    )
    # The installation token asked for nobody in particular: the lead's owner hears.
    told = await eventually(
        lambda: notifications(stack.db, lead_id, "approval_result"), "told the requester"
    )
    assert [n.recipient for n in told] == [owner] and "Timed out" in told[0].text, told
    late = await decide(stack, approval_id, decision="approve", by=MANAGER)
    assert late.status_code == 409, late.text
    body = await lead(stack, lead_id)
    assert body["owner"]["email"] == owner and "reassigned" not in types(body)
    assert of_type(body, "approval_decided")[0]["data"]["timed_out"] is True


# ------------------------------------------------------------------------- reassignment


@SQLITE
async def test_approved_reassignment_reroutes_and_a_dispute_gives_the_lead_away(
    stack: Stack,
) -> None:
    manager_only = {"levels": [{"approvers": ["pool_manager"], "timeout": "1m"}]}
    publish(stack, chains(reassignment=manager_only, ownership_dispute=manager_only))
    lead_id = await new_lead(stack)
    first = (await lead(stack, lead_id))["owner"]["email"]
    asked = await ask(stack, lead_id, kind="reassignment", reason="too many leads this week")
    assert asked.status_code == 202, asked.text
    approval_id = asked.json()["approval_id"]
    approved = await decide(stack, approval_id, decision="approve", by=MANAGER)
    assert approved.status_code == 200, approved.text
    body = await until(stack, lead_id, lambda b: b["owner"]["email"] != first, what="re-routed")
    moved = of_type(body, "reassigned")[-1]["data"]
    assert moved["from"] == first and approval_id in moved["by"], moved
    second = body["owner"]["email"]

    claimant = next(
        r
        for r in ("avery.park@example.com", "jordan.lee@example.com", "sam.rivera@example.com")
        if r != second
    )
    asked = await ask(
        stack, lead_id, kind="ownership_dispute", claimant=claimant, reason="my account"
    )
    assert asked.status_code == 202, asked.text
    dispute = asked.json()["approval_id"]
    assert dispute == f"approval-{lead_id}-2"
    refused = await decide(stack, dispute, decision="reject", by=MANAGER, comment="")
    assert refused.status_code == 422, refused.text
    assert (await decide(stack, dispute, decision="approve", by=MANAGER)).status_code == 200
    body = await until(
        stack, lead_id, lambda b: b["owner"]["email"] == claimant, what="given to the claimant"
    )
    assert len(of_type(body, "approval_decided")) == 2
    await record_history(stack, lead_id, "approved_reassignment_and_dispute_approval")


# ------------------------------------------------------------------------- withdrawn


@SQLITE
async def test_requests_the_lead_leaves_behind_are_withdrawn_and_cannot_be_decided(
    stack: Stack,
) -> None:
    """A discount and a reassignment wait for the manager; the deal is lost: both end as
    withdrawn (nobody is asked any more, the requester hears why), and a decision sent
    afterwards is refused saying so."""
    manager_only = {"levels": [{"approvers": ["pool_manager"], "timeout": "1h"}]}
    publish(stack, chains(discount=manager_only, reassignment=manager_only))
    lead_id = await new_lead(stack)
    owner = (await lead(stack, lead_id))["owner"]["email"]
    for type_ in TO_NEGOTIATION:
        await event(stack, lead_id, type_)
    discount = await ask(stack, lead_id, kind="discount", percent=10, reason="pilot")
    reassignment = await ask(stack, lead_id, kind="reassignment", reason="on leave")
    assert discount.status_code == reassignment.status_code == 202, discount.text
    ids = [discount.json()["approval_id"], reassignment.json()["approval_id"]]
    for approval_id in ids:
        assert (await approval(stack, approval_id))["status"] == "pending"

    assert (await event(stack, lead_id, "lost", reason="budget"))["stage"] in ("lost", "nurturing")

    async def withdrawn(approval_id: str) -> dict[str, Any] | None:
        found = await approval(stack, approval_id)
        return found if found["status"] != "pending" else None

    for approval_id in ids:
        found = await eventually_async(partial(withdrawn, approval_id), "withdrawn", within=8)
        assert (found["status"], found["decided_by"], found["timed_out"]) == (
            "withdrawn",
            "lifecycle",
            False,
        ), found
        assert found["comment"].startswith("the lead is "), found
        late = await decide(stack, approval_id, decision="approve", by=MANAGER)
        assert late.status_code == 409, late.text
        assert "withdrawn (the lead is " in late.json()["detail"][0]["message"], late.text
        child = stack.client.get_workflow_handle(approval_id)
        assert await eventually_async(partial(completed, child), "the approval ended")

    def told_twice() -> list[Any] | None:
        told = notifications(stack.db, lead_id, "approval_result")
        return told if len(told) == 2 else None

    told = await eventually(told_twice, "told the requester of both")
    assert {n.recipient for n in told} == {owner}
    assert all("Withdrawn on " in n.text and "the lead is " in n.text for n in told), told
    body = await until(
        stack,
        lead_id,
        lambda b: len(of_type(b, "approval_decided")) == 2,
        what="both endings on the timeline",
    )
    assert {e["data"]["outcome"] for e in of_type(body, "approval_decided")} == {"withdrawn"}
    assert body["owner"]["email"] == owner and "reassigned" not in types(body)
    assert "approval_not_applied" not in types(body)
    state = await lead_state(stack, lead_id)
    assert state["open_approvals"] == {} and state["approvals_withdrawn"] == []
    listed = await stack.http.get("/api/v1/approvals?status=withdrawn", headers=stack.auth)
    assert {a["approval_id"] for a in listed.json()["approvals"]} == set(ids), listed.text
    await record_history(stack, lead_id, "requests_left_behind_are_withdrawn_approval")


# ------------------------------------------------------------------------- refusals


@SQLITE
async def test_requests_that_do_not_apply_or_are_malformed_are_refused(stack: Stack) -> None:
    publish(stack)  # no approvals section
    lead_id = await new_lead(stack)
    wrong_stage = await ask(stack, lead_id, kind="discount", percent=10, reason="x")
    assert wrong_stage.status_code == 409, wrong_stage.text
    assert wrong_stage.json()["stage"] == "assigned"
    assert "'assigned'" in wrong_stage.json()["detail"][0]["message"]
    unconfigured = await ask(stack, lead_id, kind="reassignment", reason="x")
    assert unconfigured.status_code == 409, unconfigured.text
    message = unconfigured.json()["detail"][0]["message"]
    assert "no approval chain is configured for reassignment" in message, message
    malformed: list[tuple[dict[str, object], str]] = [
        ({"kind": "discount", "reason": "x"}, "percent"),
        ({"kind": "discount", "percent": 10.005, "reason": "x"}, "percent"),
        ({"kind": "discount", "percent": 120, "reason": "x"}, "percent"),
        ({"kind": "refund", "reason": "x"}, "kind"),
        ({"kind": "reassignment"}, "reason"),
        ({"kind": "reassignment", "reason": "x", "to": "nobody@example.com"}, "to"),
        ({"kind": "ownership_dispute", "reason": "x"}, "claimant"),
        ({"kind": "reassignment", "reason": "x", "colour": "blue"}, "colour"),
        ({"kind": "reassignment", "reason": "x", "requested_by": "me"}, "requested_by"),
    ]
    for body, field in malformed:
        response = await ask(stack, lead_id, **body)
        assert response.status_code == 422, (body, response.text)
        assert field in [d["field"] for d in response.json()["detail"]], (body, response.json())
    assert (await ask(stack, "0" * 24, kind="reassignment", reason="x")).status_code == 404
    unknown = await decide(stack, f"approval-{'0' * 24}-1", decision="approve", by=MANAGER)
    assert unknown.status_code == 404, unknown.text
    assert not {"approval_requested"} & set(types(await lead(stack, lead_id)))


# ------------------------------------------------------------------------- admin app


@SQLITE
async def test_an_approver_decides_in_the_admin_app(
    stack: Stack, browser: Browser, admin_users: AdminUsers, screenshots: Screenshots
) -> None:
    lead_approver = {"levels": [{"approvers": [admin_users.team_lead], "timeout": "1m"}]}
    publish(stack, chains(reassignment=lead_approver, ownership_dispute=lead_approver))
    lead_id = await new_lead(stack, first_name="Robin", company="Quinn <Labs> & Co")
    first = await ask(stack, lead_id, kind="reassignment", reason="<b>on leave</b>")
    assert first.status_code == 202, first.text
    page = await browser.new_page()
    await login(page, stack.base_url, admin_users.team_lead, admin_users.password)
    await page.goto(f"{stack.base_url}/admin/approvals")
    row = page.locator(f"#{first.json()['approval_id']}")
    await expect(row).to_contain_text("Robin")
    await expect(row).to_contain_text("<b>on leave</b>")  # shown as text, not markup
    await screenshots.take(page, "approvals-pending")
    await row.get_by_text("Reject…").click()
    await row.get_by_label("Why (required)").fill("keep it with the owner")
    await screenshots.take(page, "approvals-rejecting")
    await row.get_by_role("button", name="Reject", exact=True).click()
    await expect(page.locator(".flash")).to_contain_text("You rejected the request")
    decided = page.locator("#decided")
    await expect(decided).to_contain_text("keep it with the owner")
    await expect(decided).to_contain_text("Terry Lead")  # the team lead's name
    # A dispute left waiting when the lead is disqualified ends as withdrawn.
    claimant = "sam.rivera@example.com"
    if (await lead(stack, lead_id))["owner"]["email"] == claimant:
        claimant = "jordan.lee@example.com"
    dispute = await ask(
        stack, lead_id, kind="ownership_dispute", claimant=claimant, reason="my account"
    )
    assert dispute.status_code == 202, dispute.text
    await event(stack, lead_id, "disqualified", reason="a student project")
    withdrawn = page.locator(f"#{dispute.json()['approval_id']}")

    async def shown() -> bool | None:
        await page.goto(f"{stack.base_url}/admin/approvals")
        return (
            await withdrawn.count() == 1 and "withdrawn" in await withdrawn.inner_text()
        ) or None

    await eventually_async(shown, "the withdrawn dispute on the page", within=8)
    await expect(withdrawn).to_contain_text("nobody: the lead moved on")
    await expect(withdrawn).to_contain_text("the lead is disqualified now")
    await screenshots.take(page, "approvals-decided")
    # Each step is in the audit log, newest first, with who took it.
    await page.goto(f"{stack.base_url}/admin/audit?kind=approval")
    steps = page.locator("#audit tbody tr")
    await expect(steps.first).to_contain_text("Leadflow (the lead moved on)")
    await expect(steps.first).to_contain_text("withdrew ownership dispute for Robin")
    await expect(steps.first).to_contain_text("the lead is disqualified now")
    rejected = page.locator("#audit tr.action-approval_rejected")
    await expect(rejected).to_contain_text("team.lead@example.com")
    await expect(rejected).to_contain_text("keep it with the owner")
    await expect(page.locator("#audit tr.action-approval_requested")).to_have_count(2)
    await expect(page.locator("#audit tr.audit-config")).to_have_count(0)
    await screenshots.laptop(page, "audit-approvals")
    await page.goto(f"{stack.base_url}/admin/audit")  # with the configuration's changes
    await expect(page.locator("#audit tr.audit-approval")).to_have_count(4)
    await expect(page.locator("#audit tr.audit-config").first).to_be_visible()
    # A viewer is no approver here: nothing to decide.
    await page.context.clear_cookies()
    await login(page, stack.base_url, admin_users.viewer, admin_users.password)
    await page.goto(f"{stack.base_url}/admin/approvals")
    await expect(page.locator("#pending")).to_have_count(0)
    await page.close()


# ------------------------------------------------------------------------- pure parts


BASE = """
reps:
  - {email: avery.park@example.com, name: Avery Park}
pools:
  - {name: Inbound, manager: avery.park@example.com, members: [{rep: avery.park@example.com}]}
fallback: {pool: Inbound}
"""


def test_approval_chain_problems_are_located() -> None:
    text = (
        BASE
        + """approvals:
  discount:
    levels:
      - {up_to: 25, approvers: [pool_manager, the boss], timeout: 4h}
      - {up_to: 10, approvers: [director@example.com], timeout: 1d}
      - {approvers: [], timeout: 2d}
  reassignment:
    levels: []
"""
    )
    found = {(p.location, p.line): p.message for p in check_yaml(text)}
    assert "unknown approver 'the boss'" in found[("approvals.discount.levels[0].approvers[1]", 10)]
    withdrawn = BASE + (
        "approvals:\n  discount:\n    levels:\n"
        "      - {approvers: [pool_manager], timeout: 4h}\n"
        "    on_timeout: withdrawn\n"
    )
    [problem] = check_yaml(withdrawn)
    assert problem.location == "approvals.discount.on_timeout", problem
    assert "approved or rejected" in problem.message
    assert "at least one approver" in found[("approvals.discount.levels[2].approvers", 12)]
    assert "at least one level" in found[("approvals.reassignment.levels", 14)]
    ordered = BASE + (
        "approvals:\n  discount:\n    levels:\n"
        "      - {up_to: 25, approvers: [pool_manager], timeout: 4h}\n"
        "      - {up_to: 10, approvers: [director@example.com], timeout: 1d}\n"
    )
    [problem] = check_yaml(ordered)
    assert (problem.location, problem.line) == ("approvals.discount.levels[1].up_to", 11)
    assert "must be above levels[0].up_to (25%)" in problem.message


def test_approval_messages_escape_what_people_wrote() -> None:
    request = ApprovalRequest(kind="discount", percent="12.5", reason="<!channel> & <b>")
    text, blocks = approval_request(
        "approval-x-1", request, "Pat <Doe>", "Acme & Co", "Avery", 1, 2, at("2026-12-01T10:00Z")
    )
    shown = str(blocks)
    assert "<!channel>" not in shown and "&lt;!channel&gt; &amp; &lt;b&gt;" in shown
    assert "Pat &lt;Doe&gt;" in shown and "12.5% discount" in text
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        (APPROVE_ACTION, "approval-x-1"),
        (REJECT_ACTION, "approval-x-1"),
    ]
    result = ApprovalResult(
        approval_id="approval-x-1",
        lead_id="x",
        request=request,
        outcome=Outcome.rejected,
        decided_by="dana@example.com",
        decided_at=at("2026-12-01T11:00Z"),
        level=2,
        comment="too <deep>",
    )
    text, blocks = approval_locked(
        request, "Pat", None, "Avery", result=result, decider_name="Dana"
    )
    assert "Rejected by Dana" in text and "too <deep>" in text
    assert not [b for b in blocks if b["type"] == "actions"]
    assert "too &lt;deep&gt;" in str(blocks)
    gone = result.model_copy(
        update={
            "outcome": Outcome.withdrawn,
            "decided_by": "lifecycle",
            "comment": "the lead is <lost> now",
        }
    )
    text, blocks = approval_locked(request, "Pat", None, "Avery", result=gone)
    assert "Withdrawn on 2026-12-01 11:00 UTC: the lead is <lost> now." in text
    assert "the lead is &lt;lost&gt; now" in str(blocks)


percents = st.decimals(min_value=0, max_value=100, places=2)


@given(
    st.lists(st.decimals(min_value="0.01", max_value=100, places=2), max_size=4, unique=True),
    percents,
    st.booleans(),
)
def test_a_discount_starts_at_the_first_level_that_covers_it(
    bounds: list[Any], percent: Any, manager: bool
) -> None:
    ups = sorted(bounds)
    levels = [{"up_to": up, "approvers": ["pool_manager"], "timeout": "1h"} for up in ups] + [
        {"approvers": [DIRECTOR], "timeout": "1d"}
    ]
    config = ApprovalsConfig.model_validate({"discount": {"levels": levels}})
    request = ApprovalRequest(kind="discount", percent=percent, reason="deal")
    steps, start, outcome = plan(config, request, MANAGER if manager else None)
    first = next(i for i, up in enumerate([*ups, None]) if up is None or percent <= up)
    # Levels naming only the pool's manager are skipped when the pool has none.
    expected = first + 1 if manager else len(ups) + 1
    assert steps[start].number == expected and outcome is Outcome.rejected
    assert all(s.approvers for s in steps)
