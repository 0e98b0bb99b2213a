"""Repeated submissions of a lead and the changes its owner accepts: absorbed in bounded
batches, so a flood of posts never makes one huge activity payload or history event."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.lead import LeadActivities
    from domain.lead import EventType
    from domain.lifecycle import (
        RECENT_SUBMISSION_IDS,
        RESUBMISSION_BATCH_BYTES,
        RESUBMISSION_BATCH_ITEMS,
        AcceptChanges,
        LeadLifecycleInput,
        RecordResubmissionsInput,
        Resubmission,
        SubmissionReceived,
    )

from workflows.steps import StepFailed, StepRunner


class Resubmissions(StepRunner):
    _pending: list[SubmissionReceived]
    _accepts: list[AcceptChanges]

    def _take_batch(self) -> list[SubmissionReceived]:
        """The next pending submissions, bounded by count and by bytes."""
        batch: list[SubmissionReceived] = []
        size = 0
        while self._pending and len(batch) < RESUBMISSION_BATCH_ITEMS:
            item = self._pending[0]
            item_size = len(item.submission.model_dump_json()) if item.detailed else 0
            if batch and size + item_size > RESUBMISSION_BATCH_BYTES:
                break
            batch.append(self._pending.pop(0))
            size += item_size
        return batch

    async def _absorb_batch(self, params: LeadLifecycleInput) -> None:
        """Count one bounded batch of repeated submissions, keep the first ones in detail,
        fill the lead's empty fields from them and bring the CRM record up to date."""
        state = self.state
        batch = self._take_batch()
        if not batch:
            return
        records: list[Resubmission] = []
        filled_any = False
        for item in batch:
            if item.submission_id in state.recent_ids:
                continue  # the same post delivered twice
            state.recent_ids = [*state.recent_ids, item.submission_id][-RECENT_SUBMISSION_IDS:]
            state.submissions += 1
            if (
                not item.detailed
                or state.submission is None
                or state.detailed_resubmissions >= params.detail_cap
            ):
                continue
            state.detailed_resubmissions += 1
            changes = state.submission.absorb(item.submission)
            state.submission = changes.merged
            state.proposed.update(changes.proposed)
            filled_any = filled_any or bool(changes.filled)
            records.append(
                Resubmission(
                    submission_id=item.submission_id,
                    received_at=item.received_at,
                    filled=changes.filled,
                    proposed=changes.proposed,
                )
            )
        try:
            await self._step(
                f"resubmitted:{state.submissions}",
                LeadActivities.record_resubmissions,
                RecordResubmissionsInput(
                    lead_id=params.lead_id,
                    idempotency_key=f"{self._key}:resubmitted",
                    resubmissions=records,
                    total_submissions=state.submissions,
                    submission=state.submission if filled_any else None,
                ),
            )
        except StepFailed:
            pass
        if filled_any:
            await self._crm_write(f"{self._key}:crm:{state.submissions}")

    async def _apply_accepted_changes(self) -> None:
        """Apply the proposed values the owner accepted, record it and update the CRM."""
        state = self.state
        while self._accepts and state.submission is not None:
            accept = self._accepts.pop(0)
            wanted = accept.fields or list(state.proposed)
            changes = {f: state.proposed[f] for f in wanted if f in state.proposed}
            if not changes:
                continue
            state.submission = state.submission.with_changes(changes)
            for field in changes:
                del state.proposed[field]
            await self._record(
                f"accepted:{len(state.recent_ids)}:{state.submissions}:{sorted(changes)}",
                EventType.changes_accepted,
                {"accepted_by": accept.accepted_by, **{k: str(v) for k, v in changes.items()}},
                submission=state.submission,
            )
            await self._crm_write(f"{self._key}:crm:accepted:{sorted(changes)}")

    def _history_is_long(self, params: LeadLifecycleInput) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= params.history_events_limit
            or info.get_current_history_size() >= params.history_bytes_limit
        )
