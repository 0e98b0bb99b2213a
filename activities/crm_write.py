"""What a lead's CRM write sends and keeps, for the activities that write it (the first
write, a resubmission's or a reassignment's update, the hand-off): the CRM view of a
submission, and the record of the write on the lead (its CRM id, a ``crm_synced`` event
once per idempotency key)."""

from __future__ import annotations

from domain.crm import CrmLeadData, CrmLeadRef
from domain.lead import EventType, LeadSubmission
from domain.lifecycle import CrmSyncResult
from store import leads as lead_store
from store.db import Database


def crm_lead_data(
    lead_id: str, submission: LeadSubmission, owner_id: str | None, score: int | None
) -> CrmLeadData:
    """The CRM view of a submission, owned by the CRM user ``owner_id``
    (``activities.crm_owner``)."""
    return CrmLeadData(
        email=submission.email,
        first_name=submission.first_name,
        last_name=submission.last_name,
        company=submission.company,
        title=submission.title,
        phone=submission.phone,
        country=submission.country,
        state=submission.state,
        website=submission.website,
        industry=submission.industry,
        company_size=submission.company_size,
        lead_source=submission.source or submission.utm_source or "Web",
        description=submission.message,
        score=score,
        owner_id=owner_id,
        leadflow_id=lead_id,
        extra=submission.extra,
    )


def record_crm_write(
    db: Database,
    lead_id: str,
    key: str,
    ref: CrmLeadRef,
    detail: dict[str, str | bool | None] | None = None,
    *,
    unlinked: str | None = None,
) -> CrmSyncResult:
    """Keep the lead's CRM id and put the write on its timeline (``crm_synced``), once
    per idempotency key. ``unlinked``: the rep whose CRM user is unknown (the record was
    written without an owner)."""
    with db.session() as session:
        lead = lead_store.get_lead(session, lead_id)
        if lead is not None:
            lead.crm_id = ref.crm_id
        lead_store.add_event_once(
            session,
            lead_id,
            EventType.crm_synced,
            idempotency_key=key,
            data={
                "crm": ref.crm,
                "crm_id": ref.crm_id,
                "owner_id": ref.owner_id,
                "created": ref.created,
                **({"owner_not_linked": unlinked} if unlinked else {}),
                **(detail or {}),
            },
        )
    return CrmSyncResult(
        crm=ref.crm, crm_id=ref.crm_id, created=ref.created, owner_unlinked=unlinked
    )
