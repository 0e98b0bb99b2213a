"""Changes made in the CRM, brought into the lifecycle.

- ``CrmNotice``: one webhook delivery's notice (started by ``web/webhooks.py`` with the id
  ``crm-notice-<crm>-<delivery id>``, so a delivery repeated by the CRM starts nothing
  new): interpreted by the connector (which may read the deal behind it), then each
  change sent to its lead.
- ``CrmPoll``: run by the schedule ``crm-poll`` for orgs without webhooks: the changes
  since the stored high-water mark, each sent to its lead, then the new mark stored. A
  poll that dies half-way runs again from the old mark; every change carries a stable
  event id, so nothing is applied twice and nothing is skipped.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.crm_inbound import CrmInboundActivities
    from domain.crm import CrmNotice
    from domain.crm_events import ChangeOutcome, NoticeFailure

from workflows.steps import RETRY, failure_of

STEP = timedelta(seconds=30)
# A change the CRM reported is worth delivering for a day; after that the CRM's
# own retries (and the next poll) have taken over.
GIVE_UP = timedelta(days=1)
# Notice runs before failures were recorded failed the run instead.
RECORD_FAILURES = "record-crm-notice-failures"


@workflow.defn(name="CrmNotice")
class CrmNoticeWorkflow:
    """A step that fails for good (the CRM refuses to say what changed, a change cannot
    reach its lead) is recorded for the needs-attention page, whose Retry runs the
    notice again under a new id; the notice's other changes still go through."""

    @workflow.run
    async def run(self, notice: CrmNotice) -> list[ChangeOutcome]:
        try:
            changes = await workflow.execute_activity_method(
                CrmInboundActivities.interpret_notice,
                notice,
                start_to_close_timeout=STEP,
                schedule_to_close_timeout=GIVE_UP,
                retry_policy=RETRY,
            )
        except ActivityError as err:
            await self._failed(notice, "read", err)
            return []
        outcomes = []
        for number, change in enumerate(changes, start=1):
            try:
                outcomes.append(
                    await workflow.execute_activity_method(
                        CrmInboundActivities.apply_change,
                        change,
                        start_to_close_timeout=STEP,
                        schedule_to_close_timeout=GIVE_UP,
                        retry_policy=RETRY,
                    )
                )
            except ActivityError as err:
                await self._failed(notice, f"send {number}", err)
        return outcomes

    async def _failed(self, notice: CrmNotice, step: str, err: ActivityError) -> None:
        """Record the step's failure, or fail the run as before this record existed."""
        found = failure_of(err)
        if found is None or not workflow.patched(RECORD_FAILURES):
            raise err
        await workflow.execute_activity_method(
            CrmInboundActivities.record_notice_failure,
            NoticeFailure(
                workflow_id=workflow.info().workflow_id,
                step=step,
                notice=notice,
                error_type=found[0],
                message=found[1],
            ),
            start_to_close_timeout=STEP,
            schedule_to_close_timeout=GIVE_UP,
            retry_policy=RETRY,
        )


@workflow.defn(name="CrmPoll")
class CrmPollWorkflow:
    @workflow.run
    async def run(self) -> list[ChangeOutcome]:
        # A poll is short-lived: the next one (the schedule skips overlaps) retries what
        # this one could not do.
        page = await workflow.execute_activity_method(
            CrmInboundActivities.poll_changes,
            start_to_close_timeout=timedelta(minutes=5),
            schedule_to_close_timeout=timedelta(minutes=30),
            retry_policy=RETRY,
        )
        outcomes = []
        for change in page.changes:
            outcomes.append(
                await workflow.execute_activity_method(
                    CrmInboundActivities.apply_change,
                    change,
                    start_to_close_timeout=STEP,
                    schedule_to_close_timeout=timedelta(hours=1),
                    retry_policy=RETRY,
                )
            )
        await workflow.execute_activity_method(
            CrmInboundActivities.save_mark,
            page.mark,
            start_to_close_timeout=STEP,
            retry_policy=RETRY,
        )
        return outcomes
