"""Activities of the hand-off of a won customer to account management (the ``Handoff``
child workflow): the CRM conversion, the account manager chosen through the
configuration's account-management pool, the onboarding tasks, the win announcement.

Each records its timeline event under the hand-off's idempotency key, so a retried or
re-run hand-off converts once, assigns once, creates each task once and announces once.
"""

from __future__ import annotations

from decimal import Decimal

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.base import StepActivities
from activities.crm_write import crm_lead_data
from activities.errors import classified
from bots.blocks import lifecycle as blocks
from bots.notifier import Message
from domain.crm import CrmTask, DealWon
from domain.lead import EventType, Owner
from domain.lifecycle_steps import (
    AccountManagerInput,
    AnnounceWinInput,
    ConvertInput,
    ConvertResult,
    OnboardingInput,
)
from domain.rules import facts_of
from store import leads as lead_store
from store import routing as routing_store
from store.models import utcnow


class HandoffActivities(StepActivities):
    """The hand-off's activities; the same collaborators as the lifecycle's."""

    @activity.defn(name="convert_lead")
    @classified
    def convert_lead(self, params: ConvertInput) -> ConvertResult:
        """Convert the won lead in the CRM: account, contact and a closed-won deal with
        the amount. Converting twice returns the first conversion."""
        sub = params.submission
        with self._vendor():
            crm_id = params.crm_id
            if crm_id is None:
                owner_id = self._owners.of(params.owner).owner_id
                data = crm_lead_data(params.lead_id, sub, owner_id, None)
                crm_id = self._crm.upsert_lead(data, f"{params.idempotency_key}:lead").crm_id
            conversion = self._crm.convert_lead(
                crm_id,
                DealWon(
                    name=f"{sub.company or sub.full_name} — new customer",
                    amount=Decimal(params.amount),
                    currency=params.currency,
                    close_date=params.won_at.date(),
                    owner_id=self._owners.of(params.owner).owner_id,
                ),
                params.idempotency_key,
            )
        with self._db.session() as session:
            lead_store.add_event_once(
                session,
                params.lead_id,
                EventType.converted,
                idempotency_key=params.idempotency_key,
                data={
                    "crm_id": crm_id,
                    "account_id": conversion.account_id,
                    "contact_id": conversion.contact_id,
                    "deal_id": conversion.deal_id,
                    "amount": params.amount,
                    "currency": params.currency,
                },
            )
        return ConvertResult(
            crm_id=crm_id,
            account_id=conversion.account_id,
            contact_id=conversion.contact_id,
            deal_id=conversion.deal_id,
        )

    @activity.defn(name="choose_account_manager")
    @classified
    def choose_account_manager(self, params: AccountManagerInput) -> Owner:
        """Route the new customer through the configuration's account-management pool
        (``handoff.pool``), once."""
        key = f"{params.idempotency_key}:chosen"
        router = self._router()
        with self._db.session() as session:
            done = lead_store.event_recorded(session, key)
            if done is not None:
                return Owner.model_validate(done.data["account_manager"])
            pool = router.config.handoff.pool
            if pool is None:
                raise ApplicationError(
                    "no account-management pool is configured: set handoff.pool in the "
                    "configuration, publish, then retry",
                    type="NoAccountManagementPool",
                    non_retryable=True,
                )
            facts = facts_of(params.submission, None, None)
            decision = routing_store.decide(session, router, facts, utcnow(), seed=key, pool=pool)
            if decision.owner is None:
                raise ApplicationError(
                    f"nobody in pool {pool!r} can take the customer: {decision.reason}",
                    type="NoAccountManager",
                    non_retryable=True,
                )
            lead_store.add_event(
                session,
                params.lead_id,
                EventType.account_manager_assigned,
                idempotency_key=key,
                data={
                    "account_manager": decision.owner.model_dump(mode="json"),
                    "pool": pool,
                    "reason": decision.reason,
                    "config_version": router.version,
                },
            )
            return decision.owner

    @activity.defn(name="create_onboarding_tasks")
    @classified
    def create_onboarding_tasks(self, params: OnboardingInput) -> list[str]:
        """The configuration's onboarding tasks, in the CRM, for the account manager."""
        config = self._router().config
        am = params.account_manager
        ids: list[str] = []
        with self._vendor():
            for index, task in enumerate(config.handoff.onboarding_tasks):
                ids.append(
                    self._crm.create_task(
                        CrmTask(
                            crm_id=params.crm_id,
                            owner_id=self._owners.of(am).owner_id,
                            subject=task.subject,
                            due=(params.won_at + task.due_in).date(),
                        ),
                        f"{params.idempotency_key}:{index}",
                    )
                )
        with self._db.session() as session:
            lead_store.add_event_once(
                session,
                params.lead_id,
                EventType.onboarding_tasks_created,
                idempotency_key=params.idempotency_key,
                data={"tasks": ids, "owner": am.email},
            )
        return ids

    @activity.defn(name="announce_win")
    @classified
    def announce_win(self, params: AnnounceWinInput) -> None:
        """The win, to the team's wins channel, and the customer, to its account
        manager; once each."""
        sub = params.submission
        text, b = blocks.win_announcement(
            rep_name=params.owner.name if params.owner else "the team",
            company=sub.company or sub.full_name,
            amount=Decimal(params.amount),
            currency=params.currency,
            cycle_days=round(params.cycle_days),
            account_manager_name=params.account_manager.name if params.account_manager else None,
            rep_slack_id=params.owner.slack_user_id if params.owner else None,
        )
        self._notifier.announce(
            Message(kind="win", lead_id=params.lead_id, text=text, blocks=b),
            f"{params.idempotency_key}:channel",
        )
        if params.account_manager is not None:
            text, b = blocks.handoff_to_account_manager(
                account_manager_name=params.account_manager.name,
                company=sub.company or sub.full_name,
                rep_name=params.owner.name if params.owner else "the team",
                contact_name=sub.full_name,
                contact_email=sub.email,
                amount=Decimal(params.amount),
                currency=params.currency,
                close_date=params.won_at.date(),
                lead_url=self._lead_url(params.lead_id),
                account_manager_slack_id=params.account_manager.slack_user_id,
            )
            self._notify(
                params.account_manager,
                "handoff",
                params.lead_id,
                text,
                f"{params.idempotency_key}:account_manager",
                b=b,
            )
            text, b = blocks.account_manager_took_over(
                params.account_manager.name,
                sub.company or sub.full_name,
                params.account_manager.slack_user_id,
            )
            self._notifier.announce(
                Message(kind="win_handoff", lead_id=params.lead_id, text=text, blocks=b),
                f"{params.idempotency_key}:channel:handoff",
                thread_of=f"{params.idempotency_key}:channel",
            )
        with self._db.session() as session:
            lead_store.add_event_once(
                session,
                params.lead_id,
                EventType.win_announced,
                idempotency_key=params.idempotency_key,
                data={
                    "amount": params.amount,
                    "currency": params.currency,
                    "cycle_days": round(params.cycle_days, 2),
                },
            )
