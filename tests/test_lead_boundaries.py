"""Accepted leads at the edges of a lifecycle run: floods of resubmissions, continue-as-new,
idle close, a run that was terminated, and resubmissions that try to change a lead.

Every post answered 202 must be counted exactly once, and a lead keeps the owner it was
first given whatever run of its lifecycle is asked again."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete, select
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.lead import LeadActivities
from activities.notify import NotifyActivities
from bots.notifier import Message, OfflineNotifier
from connectors.local import LocalCRM
from domain.lead import LeadSubmission, Owner
from domain.lifecycle import AssignLeadInput, NotifyOwnerInput
from store.db import Database
from store.models import Lead, LeadEvent, Notification, PoolStateRow
from store.models_crm import CrmRecord
from tests.conftest import Stack, running_stack, unique_email

T = TypeVar("T")
_OPTIONAL = [f for f in LeadSubmission.model_fields if f not in ("email", "first_name", "extra")]


async def eventually(check: Callable[[], Awaitable[T | None]], within: float, what: str) -> T:
    deadline = asyncio.get_running_loop().time() + within
    last: T | None = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not within {within} s (last: {last!r})")


async def lead_json(stack: Stack, lead_id: str) -> dict[str, Any] | None:
    response = await stack.http.get(f"/leads/{lead_id}", headers=stack.auth)
    return response.json() if response.status_code == 200 else None


async def submissions_reach(
    stack: Stack, lead_id: str, count: int, within: float = 60
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body = await lead_json(stack, lead_id)
        return body if body and body.get("submissions") == count else None

    return await eventually(check, within, f"lead {lead_id} counting {count} submissions")


def event_types(db: Database, lead_id: str) -> Counter[str]:
    with db.read() as session:
        rows = session.scalars(select(LeadEvent.type).where(LeadEvent.lead_id == lead_id))
        return Counter(rows)


async def runs_of(client: Client, workflow_id: str) -> list[Any]:
    return [wf async for wf in client.list_workflows(f"WorkflowId = '{workflow_id}'")]


async def post_many(stack: Stack, email: str, count: int, concurrency: int) -> Counter[int]:
    """``count`` posts for one address, ``concurrency`` at a time; status codes counted."""
    statuses: Counter[int] = Counter()
    queue = list(range(count))

    async def poster() -> None:
        while queue:
            n = queue.pop()
            response = await stack.http.post(
                "/leads", json={"email": email, "title": f"Title {n}", "message": "x" * 2000}
            )
            statuses[response.status_code] += 1

    await asyncio.gather(*(poster() for _ in range(concurrency)))
    return statuses


# ---------------------------------------------------------------------- floods (item 1)


async def test_flood_of_one_address_is_counted_once_each_and_keeps_its_first_owner(
    client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    async with running_stack(
        client,
        db,
        task_queue,
        tmp_path,
        intake_flood_max_posts=10_000,
        resubmission_detail_cap=5,
        lifecycle_history_events_limit=150,
    ) as stack:
        email = unique_email("flood")
        first = await stack.submit(email=email, first_name="Ada", phone="+1 555 0100")
        lead_id = first.json()["lead_id"]
        routed = await stack.wait_for(lead_id)
        owner = routed["owner"]

        statuses = await post_many(stack, email, 250, concurrency=16)
        assert set(statuses) == {202}, statuses
        lead = await submissions_reach(stack, lead_id, 1 + statuses[202], within=120)

        assert lead["owner"] == owner
        types = event_types(stack.db, lead_id)
        assert types["assigned"] == 1 and types["owner_notified"] == 1
        assert types["resubmitted"] == 5  # the detail cap; the rest only counted
        runs = await runs_of(stack.client, f"lead-{lead_id}")
        assert len(runs) > 1, "the run never continued as new"
        for run in runs:
            history = await stack.client.get_workflow_handle(
                run.id, run_id=run.run_id
            ).fetch_history()
            # The threshold plus one bounded batch of work past it.
            assert len(history.events) < 150 + 200


async def test_one_address_flooding_gets_429_with_retry_after(
    client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    async with running_stack(
        client, db, task_queue, tmp_path, intake_flood_max_posts=5, intake_flood_window_s=60
    ) as stack:
        email = unique_email("flood")
        responses = [await stack.submit(email=email) for _ in range(8)]
        codes = [r.status_code for r in responses]
        # The first post of an address through a process is not written down (most leads
        # post once); the window counts from the second.
        assert codes == [202] * 6 + [429] * 2
        refused = responses[-1]
        assert 1 <= int(refused.headers["retry-after"]) <= 61
        assert refused.json()["detail"][0]["field"] == "email"
        # Another address is not affected.
        assert (await stack.submit(email=unique_email())).status_code == 202
        lead_id = responses[0].json()["lead_id"]
        await submissions_reach(stack, lead_id, 6)


# ------------------------------------------------------------ run boundaries (item 2)


# The run boundaries are the workflow's; the database only stores the counts (checked on
# both backends by the flood test), so one backend keeps the suite's time down.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_posts_across_continue_as_new_and_a_closing_run_are_each_counted_once(
    client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    async with running_stack(
        client,
        db,
        task_queue,
        tmp_path,
        intake_flood_max_posts=10_000,
        resubmission_detail_cap=50,
        lifecycle_history_events_limit=50,
    ) as stack:
        email = unique_email("boundary")
        lead_id = (await stack.submit(email=email)).json()["lead_id"]
        owner = (await stack.wait_for(lead_id))["owner"]
        accepted = 1
        # Bursts in a tight loop with pauses, so posts land while runs continue as new;
        # after the second burst the lead is disqualified, so its lifecycle ends, and
        # later posts land while a run closes and after it closed (each starts a new run
        # that counts them and closes again).
        for burst in range(8):
            for _ in range(12):
                response = await stack.submit(email=email, company=f"Burst {burst}")
                assert response.status_code == 202
                accepted += 1
            if burst == 1:
                disqualified = await stack.http.post(
                    f"/leads/{lead_id}/events",
                    json={"type": "disqualified", "reason": "test"},
                    headers=stack.auth,
                )
                assert disqualified.status_code == 202, disqualified.text
            await asyncio.sleep((0.1, 0.6, 1.2, 2.0)[burst % 4])

        lead = await submissions_reach(stack, lead_id, accepted, within=120)
        assert lead["owner"] == owner
        types = event_types(stack.db, lead_id)
        assert types["assigned"] == 1
        assert types["resubmitted"] == min(50, accepted - 1)
        assert types["lifecycle_closed"] >= 1, "no run closed during the test"
        runs = await runs_of(stack.client, f"lead-{lead_id}")
        assert len(runs) >= 3


async def test_a_terminated_run_resumes_from_the_stored_lead_and_keeps_its_owner(
    stack: Stack,
) -> None:
    email = unique_email()
    lead_id = (await stack.submit(email=email, first_name="Grace")).json()["lead_id"]
    owner = (await stack.wait_for(lead_id))["owner"]
    # The history limit (or an operator) ends the run; the next post starts a new run.
    await stack.client.get_workflow_handle(f"lead-{lead_id}").terminate("history too large")
    # Leads arriving in between move the round-robin on: a fresh routing would pick
    # somebody else for this lead.
    for _ in range(2):
        other = (await stack.submit(email=unique_email())).json()["lead_id"]
        await stack.wait_for(other)
    assert (await stack.submit(email=email, title="CTO")).status_code == 202
    lead = await submissions_reach(stack, lead_id, 2)
    assert lead["owner"] == owner
    types = event_types(stack.db, lead_id)
    assert types["assigned"] == 1 and types["owner_notified"] == 1
    assert types["lifecycle_resumed"] == 1


async def test_a_run_ended_before_it_notified_finishes_the_missing_steps(
    client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    """A run terminated between routing and notification: the next run does not route
    again, but does write the CRM record and tell the owner."""
    async with running_stack(client, db, task_queue, tmp_path) as stack:
        email = unique_email()
        lead_id = (await stack.submit(email=email)).json()["lead_id"]
        await stack.wait_for(lead_id)
    # Forget the CRM write and the notification, as if the run had died before them.
    with db.session() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        lead.crm_id, lead.notified_at = None, None
        session.execute(delete(LeadEvent).where(LeadEvent.type == "owner_notified"))
        session.execute(delete(Notification))
    async with running_stack(client, db, task_queue, tmp_path) as stack:
        assert (await stack.submit(email=email)).status_code == 202
        lead_json_ = await stack.wait_for(lead_id)
        assert lead_json_["crm_id"] is not None
        types = event_types(stack.db, lead_id)
        assert types["assigned"] == 1 and types["owner_notified"] == 1


# ----------------------------------------------- resubmissions change nothing (item 3)


async def test_resubmission_fills_empty_fields_only_and_proposes_the_rest(stack: Stack) -> None:
    email = unique_email()
    lead_id = (
        await stack.submit(email=email, phone="+1 555 0100", company_size=50, company="Acme")
    ).json()["lead_id"]
    await stack.wait_for(lead_id)
    await stack.submit(email=email, phone="+1 666 0199", company_size=5000, title="CFO")
    lead = await submissions_reach(stack, lead_id, 2)

    async def crm_title() -> CrmRecord | None:
        with stack.db.read() as session:
            record = session.scalars(select(CrmRecord).where(CrmRecord.email == email)).one()
            return record if record.fields.get("title") == "CFO" else None

    record = await eventually(crm_title, 15, "the empty title filled in the CRM")
    assert record.fields["phone"] == "+1 555 0100"
    assert record.fields["company_size"] == 50
    resubmitted = next(e for e in lead["events"] if e["type"] == "resubmitted")
    assert resubmitted["data"]["filled"] == {"title": "CFO"}
    assert resubmitted["data"]["proposed"] == {"phone": "+1 666 0199", "company_size": 5000}

    # The owner accepts the new phone number (not the size): now the CRM follows.
    accepted = await stack.http.post(
        f"/leads/{lead_id}/changes/accept",
        json={"fields": ["phone"], "accepted_by": "avery.park@example.com"},
        headers=stack.auth,
    )
    assert accepted.status_code == 202, accepted.text

    async def crm_phone() -> CrmRecord | None:
        with stack.db.read() as session:
            found = session.scalars(select(CrmRecord).where(CrmRecord.email == email)).one()
            return found if found.fields.get("phone") == "+1 666 0199" else None

    record = await eventually(crm_phone, 15, "the accepted phone in the CRM")
    assert record.fields["company_size"] == 50
    assert event_types(stack.db, lead_id)["changes_accepted"] == 1


async def test_accepting_changes_needs_the_token_and_an_open_lead(stack: Stack) -> None:
    url = f"/leads/{'0' * 24}/changes/accept"
    assert (await stack.http.post(url, json={})).status_code == 401
    missing = await stack.http.post(url, json={}, headers=stack.auth)
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["field"] == "lead_id"
    bad = await stack.http.post(url, json={"fields": "phone"}, headers=stack.auth)
    assert bad.status_code == 422


# -------------------------------------------- a permanent step failure (item 8)


class RefusingNotifier(OfflineNotifier):
    """A notifier whose delivery fails the way a bad value fails: for good, with the
    lead's data in the exception's message."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.calls = 0

    def notify(self, owner: Owner, message: Message, idempotency_key: str) -> int:
        self.calls += 1
        raise ValueError(f"cannot deliver {message.text!r}")


async def test_permanent_step_failure_is_flagged_not_retried_and_not_logged(
    client: Client,
    db: Database,
    task_queue: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = RefusingNotifier(db)
    async with running_stack(client, db, task_queue, tmp_path, notifier=notifier) as stack:
        email = unique_email("refused")
        response = await stack.submit(email=email, first_name="Eve", last_name="Mallory")
        lead_id = response.json()["lead_id"]

        async def flagged() -> dict[str, Any] | None:
            body = await lead_json(stack, lead_id)
            return body if body and body["needs_attention"] else None

        lead = await eventually(flagged, 30, "the lead flagged as needing attention")
        failed = [e for e in lead["events"] if e["type"] == "step_failed"]
        assert len(failed) == 1 and failed[0]["data"]["step"] == "notify"
        assert "Mallory" not in failed[0]["data"]["message"]
        assert lead["owner"] is not None and lead["crm_id"] is not None
        await asyncio.sleep(1.0)  # a retry (200 ms backoff) would have happened by now
        assert notifier.calls == 1, "a permanent failure was retried"
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "Mallory" not in logged and email not in logged


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_database_refusal_is_a_permanent_failure_without_the_leads_data(db: Database) -> None:
    """A value PostgreSQL cannot store (a NUL character, here past every validator) fails
    the step for good; the failure names the problem, not the value."""
    acts = NotifyActivities(
        db, LocalCRM(db), OfflineNotifier(db), default_team="Inbound", base_url="http://test"
    )
    submission = LeadSubmission.model_construct(
        email="nul@acme.example",
        first_name="Eve\x00Mallory",
        extra={},
        **dict.fromkeys(_OPTIONAL),
    )
    owner = Owner(rep_id=1, name="Avery Park", email="avery.park@example.com")
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(
            acts.notify_owner,
            NotifyOwnerInput(
                lead_id="c" * 24,
                idempotency_key="lead-c:run:notify",
                owner=owner,
                submission=submission,
                received_at=datetime.now(UTC),
            ),
        )
    failure = raised.value
    assert failure.non_retryable and failure.type == "DataError"
    assert "NUL" in failure.message
    assert "Mallory" not in str(failure) and "nul@acme" not in str(failure)
    assert failure.__cause__ is None and failure.__context__ is None


def test_turns_are_not_taken_for_a_lead_that_has_an_owner(db: Database) -> None:
    """The store-level guard behind "a lead is routed once": assign_lead for a lead that
    already has an owner returns that decision, whatever idempotency key it is given."""
    acts = LeadActivities(
        db, LocalCRM(db), OfflineNotifier(db), default_team="Inbound", base_url="http://test"
    )
    env = ActivityEnvironment()

    def assign(key: str) -> Any:
        return env.run(
            acts.assign_lead,
            AssignLeadInput(
                lead_id="b" * 24,
                workflow_id="lead-" + "b" * 24,
                idempotency_key=key,
                submission=LeadSubmission(email="b@acme.com"),
                received_at=datetime.now(UTC),
            ),
        )

    first = assign("lead-b:run1")
    again = assign("lead-b:run2")
    assert again.decision.owner == first.decision.owner
    with db.read() as session:
        [pool] = session.scalars(select(PoolStateRow)).all()
        assert pool.state["decisions"] == 1
