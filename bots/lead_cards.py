"""A lead's card (``bots.blocks.lead_card``) from what Leadflow stored about it: the
submission, the routing decision with its explanation, the score's parts, the stage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bots.blocks.lead_card import LastAction, LeadCard, lead_card_blocks, lead_card_text
from bots.notifier import Message
from domain.lead import EventType, LeadSubmission, Owner, Stage
from domain.lifecycle import CardFacts
from store import leads as lead_store
from store.models import Notification


def lead_card(
    session: Session,
    lead_id: str,
    *,
    owner: Owner,
    submission: LeadSubmission,
    score: int | None,
    grade: str | None,
    lead_url: str,
    stage: Stage = Stage.assigned,
    sla_due: datetime | None = None,
    last: LastAction | None = None,
    crm_url: str | None = None,
) -> LeadCard:
    lead = lead_store.get_lead(session, lead_id)
    decision: dict[str, Any] = ((lead.routing or {}) if lead else {}).get("decision") or {}
    explanation: dict[str, Any] = decision.get("explanation") or {}
    pool: dict[str, Any] = explanation.get("pool") or {}
    scored = lead_store.latest_event(session, lead_id, EventType.scored)
    parts = (scored.data.get("parts") or []) if scored is not None else []
    return LeadCard(
        lead_id=lead_id,
        name=submission.full_name,
        email=submission.email,
        company=submission.company,
        title=submission.title,
        country=submission.country,
        source=submission.source or submission.utm_source,
        score=score,
        grade=grade,
        score_reasons=score_reasons(parts),
        rule=decision.get("rule"),
        pool=decision.get("pool"),
        strategy=pool.get("strategy"),
        owner_name=owner.name,
        owner_slack_id=owner.slack_user_id,
        stage=stage,
        sla_due=sla_due,
        lead_url=lead_url,
        crm_url=crm_url,
        last=last,
    )


def card_of(
    lead_id: str,
    facts: CardFacts,
    *,
    owner: Owner,
    submission: LeadSubmission,
    score: int | None,
    grade: str | None,
    lead_url: str,
    sla_due: datetime | None = None,
    crm_url: str | None = None,
) -> LeadCard:
    """The card from what the assignment handed on (no reads)."""
    return LeadCard(
        lead_id=lead_id,
        name=submission.full_name,
        email=submission.email,
        company=submission.company,
        title=submission.title,
        country=submission.country,
        source=submission.source or submission.utm_source,
        score=score,
        grade=grade,
        score_reasons=facts.score_reasons,
        rule=facts.rule,
        pool=facts.pool,
        strategy=facts.strategy,
        owner_name=owner.name,
        owner_slack_id=owner.slack_user_id,
        sla_due=sla_due,
        lead_url=lead_url,
        crm_url=crm_url,
    )


def score_reasons(parts: list[dict[str, Any]]) -> list[str]:
    """The score's parts that weigh most, as "+20 title contains VP"."""
    ranked = sorted((p for p in parts if p.get("points")), key=lambda p: -abs(float(p["points"])))
    return [f"{float(p['points']):+g} {p.get('reason') or p.get('rule')}" for p in ranked[:3]]


def stored_card(
    session: Session, lead_id: str, stage: Stage, last: LastAction | None, base_url: str
) -> LeadCard | None:
    """The card of a stored lead, rebuilt for ``stage``; None without lead or owner."""
    lead = lead_store.get_lead(session, lead_id)
    if lead is None or lead.owner is None:
        return None
    owner = lead.owner
    return lead_card(
        session,
        lead_id,
        owner=Owner(
            rep_id=owner.id, name=owner.name, email=owner.email, slack_user_id=owner.slack_user_id
        ),
        submission=LeadSubmission.model_validate(lead.data),
        score=lead.score,
        grade=lead.grade,
        lead_url=f"{base_url}/admin/leads/{lead_id}",
        stage=stage,
        last=last,
    )


def card_message(
    session: Session, lead_id: str, stage: Stage, last: LastAction | None, base_url: str
) -> tuple[str, Message] | None:
    """The idempotency key of the lead's card as delivered (its latest ``new_lead``
    message) and the card rebuilt for ``stage``; None when the lead has no card."""
    row = session.scalars(
        select(Notification)
        .where(Notification.lead_id == lead_id, Notification.kind == "new_lead")
        .order_by(Notification.id.desc())
    ).first()
    if row is None:
        return None
    card = stored_card(session, lead_id, stage, last, base_url)
    if card is None:
        return None
    message = Message(
        kind="new_lead", lead_id=lead_id, text=lead_card_text(card), blocks=lead_card_blocks(card)
    )
    return row.idempotency_key, message
