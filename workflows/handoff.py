"""A won lead becomes a customer of account management: converted in the CRM (account,
contact, a closed-won deal with the amount), given an account manager through the
configuration's account-management pool, onboarding tasks created for them, the win
announced, and the lead recorded as handed off with its sales-cycle length.

A child workflow of the lead's lifecycle with the id ``handoff-<lead_id>``: one hand-off
per lead, whatever a restarted worker does. Every step's idempotency key is built from
that id, so a hand-off run again after a failure redoes nothing that was done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.handoff import HandoffActivities
    from activities.lead import LeadActivities
    from domain.lead import EventType, Stage
    from domain.lifecycle import (
        RecordEventInput,
    )
    from domain.lifecycle_steps import (
        AccountManagerInput,
        AnnounceWinInput,
        ConvertInput,
        HandoffInput,
        HandoffResult,
        OnboardingInput,
    )

from workflows.steps import RETRY

In = TypeVar("In")
Out = TypeVar("Out")


@workflow.defn(name="Handoff")
class HandoffWorkflow:
    def __init__(self) -> None:
        self._params: HandoffInput | None = None

    def _act(self, activity: Callable[[Any, In], Out], arg: In) -> Awaitable[Out]:
        assert self._params is not None
        return workflow.execute_activity_method(
            activity,
            arg,
            start_to_close_timeout=timedelta(seconds=self._params.activity_timeout_s),
            schedule_to_close_timeout=timedelta(seconds=self._params.step_give_up_s),
            retry_policy=RETRY,
        )

    @workflow.run
    async def run(self, params: HandoffInput) -> HandoffResult:
        key = f"handoff-{params.lead_id}"
        self._params = params
        converted = await self._act(
            HandoffActivities.convert_lead,
            ConvertInput(
                lead_id=params.lead_id,
                idempotency_key=f"{key}:convert",
                submission=params.submission,
                owner=params.owner,
                crm_id=params.crm_id,
                amount=params.amount,
                currency=params.currency,
                won_at=params.won_at,
            ),
        )
        manager = await self._act(
            HandoffActivities.choose_account_manager,
            AccountManagerInput(
                lead_id=params.lead_id,
                idempotency_key=f"{key}:account_manager",
                submission=params.submission,
            ),
        )
        tasks = await self._act(
            HandoffActivities.create_onboarding_tasks,
            OnboardingInput(
                lead_id=params.lead_id,
                idempotency_key=f"{key}:onboarding",
                crm_id=converted.crm_id,
                account_manager=manager,
                won_at=params.won_at,
            ),
        )
        cycle_days = max(0.0, (params.won_at - params.received_at).total_seconds() / 86400)
        await self._act(
            HandoffActivities.announce_win,
            AnnounceWinInput(
                lead_id=params.lead_id,
                idempotency_key=f"{key}:announce",
                submission=params.submission,
                owner=params.owner,
                account_manager=manager,
                amount=params.amount,
                currency=params.currency,
                cycle_days=cycle_days,
                received_at=params.received_at,
                won_at=params.won_at,
            ),
        )
        await self._act(
            LeadActivities.record_event,
            RecordEventInput(
                lead_id=params.lead_id,
                idempotency_key=f"{key}:handed_off",
                type=EventType.handed_off,
                stage=Stage.handed_off,
                data={
                    "account_manager": manager.email,
                    "cycle_days": round(cycle_days, 3),
                    "account_id": converted.account_id,
                    "deal_id": converted.deal_id,
                    "amount": params.amount,
                    "currency": params.currency,
                },
            ),
        )
        return HandoffResult(
            account_manager=manager,
            account_id=converted.account_id,
            contact_id=converted.contact_id,
            deal_id=converted.deal_id,
            tasks=tasks,
            cycle_days=cycle_days,
        )
