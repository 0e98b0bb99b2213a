"""The lifecycle workflow and its activities against CRM failures, retries and missing
reps; activities called twice change nothing twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.lead import LeadActivities
from activities.notify import NotifyActivities
from bots.notifier import OfflineNotifier
from connectors.base import InvalidRecord, RateLimited
from connectors.local import LocalCRM
from domain.crm import CrmLeadData, CrmLeadRef
from domain.lead import LeadSubmission
from domain.lifecycle import AssignLeadInput, NotifyOwnerInput
from store.db import Database
from store.models import LeadEvent, Notification, PoolStateRow, Rep
from store.models_crm import CrmRecord
from tests.conftest import Stack, running_stack, unique_email


class FlakyCRM(LocalCRM):
    """The local CRM behind a failure script: each call pops the next error, if any."""

    def __init__(self, db: Database, failures: list[Exception]) -> None:
        super().__init__(db)
        self.failures = failures
        self.calls: list[float] = []

    def upsert_lead(self, lead: CrmLeadData, idempotency_key: str) -> CrmLeadRef:
        self.calls.append(time.monotonic())
        if self.failures:
            raise self.failures.pop(0)
        return super().upsert_lead(lead, idempotency_key)


@pytest.fixture
async def flaky_stack(
    request: pytest.FixtureRequest,
    client: Client,
    db: Database,
    task_queue: str,
    tmp_path: Path,
) -> AsyncIterator[tuple[Stack, FlakyCRM]]:
    crm = FlakyCRM(db, list(request.param))
    async with running_stack(client, db, task_queue, tmp_path, crm=crm) as stack:
        yield stack, crm


@pytest.mark.parametrize(
    "flaky_stack",
    [[InvalidRecord("refused", vendor_message="FIELD_CUSTOM_VALIDATION_EXCEPTION: bad lead")]],
    indirect=True,
)
async def test_crm_refusal_is_recorded_and_rep_still_notified(
    flaky_stack: tuple[Stack, FlakyCRM],
) -> None:
    stack, crm = flaky_stack
    lead_id = (await stack.submit(email=unique_email())).json()["lead_id"]
    lead = await stack.wait_for(lead_id)
    failed = [e for e in lead["events"] if e["type"] == "crm_sync_failed"]
    assert len(failed) == 1
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION: bad lead" in failed[0]["data"]["message"]
    assert failed[0]["data"]["error"] == "InvalidRecord"
    assert lead["crm_id"] is None
    assert len(crm.calls) == 1  # permanent: not retried


@pytest.mark.parametrize(
    "flaky_stack",
    [[RateLimited("429", retry_after=0.6), RateLimited("429", retry_after=0.6)]],
    indirect=True,
)
async def test_rate_limited_crm_is_retried_after_retry_after(
    flaky_stack: tuple[Stack, FlakyCRM],
) -> None:
    stack, crm = flaky_stack
    lead_id = (await stack.submit(email=unique_email())).json()["lead_id"]
    lead = await stack.wait_for(lead_id)
    assert lead["crm_id"] is not None
    assert len(crm.calls) == 3
    gaps = [b - a for a, b in zip(crm.calls, crm.calls[1:], strict=False)]
    assert all(gap >= 0.55 for gap in gaps), gaps
    assert not [e for e in lead["events"] if e["type"] == "crm_sync_failed"]


async def test_lead_without_eligible_rep_is_kept_unassigned(stack: Stack) -> None:
    with stack.db.session() as session:
        session.execute(update(Rep).values(active=False))
    lead_id = (await stack.submit(email=unique_email())).json()["lead_id"]
    lead = await stack.wait_for(lead_id, stage="scored", notified=False)
    for _ in range(100):
        if any(e["type"] == "crm_synced" for e in lead["events"]):
            break
        await asyncio.sleep(0.05)
        lead = await stack.wait_for(lead_id, stage="scored", notified=False)
    types = [e["type"] for e in lead["events"]]
    assert "unassigned" in types and "crm_synced" in types
    assert lead["owner"] is None
    unassigned = next(e for e in lead["events"] if e["type"] == "unassigned")
    reason = unassigned["data"]["reason"]
    assert "nobody in pool 'Inbound' could take it" in reason and "(inactive)" in reason
    with stack.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 0
        assert session.scalars(select(CrmRecord)).one().owner_id is None


def _activities(db: Database) -> LeadActivities:
    return LeadActivities(
        db, LocalCRM(db), OfflineNotifier(db), default_team="Inbound", base_url="http://test"
    )


def test_assign_twice_takes_one_turn_and_returns_the_same_decision(db: Database) -> None:
    acts = _activities(db)
    params = AssignLeadInput(
        lead_id="a" * 24,
        workflow_id="lead-" + "a" * 24,
        idempotency_key="lead-x:run1",
        submission=LeadSubmission(email="x@acme.com"),
        received_at=datetime.now(UTC),
    )
    env = ActivityEnvironment()
    first = env.run(acts.assign_lead, params)
    second = env.run(acts.assign_lead, params)
    assert first == second
    with db.session() as session:
        [pool] = session.scalars(select(PoolStateRow)).all()
        assert pool.state["decisions"] == 1
        assert (
            session.scalar(
                select(func.count()).select_from(LeadEvent).where(LeadEvent.type == "assigned")
            )
            == 1
        )


def test_notify_twice_sends_one_message(db: Database) -> None:
    acts = _activities(db)
    env = ActivityEnvironment()
    assignment = env.run(
        acts.assign_lead,
        AssignLeadInput(
            lead_id="b" * 24,
            workflow_id="lead-" + "b" * 24,
            idempotency_key="lead-y:run1",
            submission=LeadSubmission(email="y@acme.com"),
            received_at=datetime.now(UTC),
        ),
    )
    owner = assignment.decision.owner
    assert owner is not None
    params = NotifyOwnerInput(
        lead_id="b" * 24,
        idempotency_key="lead-y:run1:notify",
        owner=owner,
        submission=LeadSubmission(email="y@acme.com"),
        received_at=datetime.now(UTC),
    )
    notices = NotifyActivities(
        db, LocalCRM(db), OfflineNotifier(db), default_team="Inbound", base_url="http://test"
    )
    first = env.run(notices.notify_owner, params)
    second = env.run(notices.notify_owner, params)
    assert first.notification_id == second.notification_id
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 1
        assert (
            session.scalar(
                select(func.count())
                .select_from(LeadEvent)
                .where(LeadEvent.type == "owner_notified")
            )
            == 1
        )
