"""What Leadflow sends to and reads from a CRM, independent of the vendor."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

# The CRMs by name, as people write them.
CRM_LABELS = {"local": "embedded CRM", "salesforce": "Salesforce", "hubspot": "HubSpot"}


def crm_label(name: str) -> str:
    return CRM_LABELS.get(name, name)


class CrmLeadData(BaseModel):
    """The lead fields Leadflow writes. ``owner_id`` is the CRM's own user id of the rep."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    title: str | None = None
    phone: str | None = None
    country: str | None = None
    state: str | None = None
    website: str | None = None
    industry: str | None = None
    company_size: int | None = None
    lead_source: str | None = None
    description: str | None = None
    score: int | None = None
    owner_id: str | None = None
    leadflow_id: str
    extra: dict[str, str] = Field(default_factory=dict)


class CrmLeadRef(BaseModel):
    """A lead as stored in the CRM after a write."""

    crm: str
    crm_id: str
    owner_id: str | None
    created: bool


class LeadStatus(StrEnum):
    """A lead's status in the CRM (Salesforce's lead ``Status`` picklist, in our words)."""

    open = "open"
    working = "working"
    nurturing = "nurturing"
    qualified = "qualified"
    disqualified = "disqualified"
    converted = "converted"


class CrmTask(BaseModel):
    """A follow-up task on a lead (``crm_id``), assigned to ``owner_id`` (a CRM user id)."""

    crm_id: str
    owner_id: str | None
    subject: str
    due: date
    description: str | None = None


class DealWon(BaseModel):
    """The deal a won lead is converted with."""

    name: str
    amount: Decimal
    currency: str
    close_date: date
    owner_id: str | None = None


class Conversion(BaseModel):
    """The records a lead conversion produced. ``created`` is False when the lead had been
    converted before: these are then the first conversion's records."""

    account_id: str
    contact_id: str
    deal_id: str
    created: bool


class CrmOwner(BaseModel):
    """A user of the CRM who can own records. ``id`` is what an owner field takes
    (Salesforce ``User.Id``; HubSpot's owner ``id``, not its ``userId``); ``active`` is
    False for a deactivated user or an archived owner, never linked to a rep."""

    id: str
    email: str
    name: str | None = None
    active: bool = True


class CrmChangeKind(StrEnum):
    """A change made in the CRM that Leadflow turns into a lifecycle event."""

    contacted = "contacted"
    disqualified = "disqualified"
    owner_changed = "owner_changed"
    won = "won"
    lost = "lost"


class CrmChange(BaseModel):
    """One change of a lead's record (or of its deal) made in the CRM, vendor-neutral.

    ``change_id`` is stable: the same change seen twice (a webhook delivered again, a
    record polled twice, a webhook and a poll of the same change) has the same id, which
    becomes the lifecycle event's ``event_id`` so that it is applied once. ``crm_id`` is
    the lead's record (Salesforce ``Lead``, HubSpot contact), also for a deal's change."""

    change_id: str = Field(min_length=1, max_length=200)
    crm_id: str
    kind: CrmChangeKind
    owner_id: str | None = None  # owner_changed: the new owner's CRM id
    amount: Decimal | None = None  # won: the deal's amount
    currency: str | None = None  # won: ISO 4217
    reason: str | None = None  # disqualified/lost: the CRM's status or stage, in words
    occurred_at: datetime | None = None


class CrmNotice(BaseModel):
    """What a CRM webhook said about one record, before interpretation: which record
    (``object`` is ``lead`` for a Salesforce Lead or a HubSpot contact, ``deal`` for a
    Salesforce Opportunity or a HubSpot deal) and the new values of the fields it names
    (vendor field names: ``hs_lead_status``, ``Status``, ``OwnerId``, ``dealstage``…).
    ``notice_id`` is the delivery's stable id (HubSpot ``eventId``, Salesforce
    notification ``Id``); ``source`` who made the change when the vendor says so
    (HubSpot ``changeSource``, Salesforce ``LastModifiedById``)."""

    notice_id: str = Field(min_length=1, max_length=200)
    object: Literal["lead", "deal"]
    object_id: str = Field(min_length=1, max_length=100)
    fields: dict[str, str | None]
    occurred_at: datetime | None = None
    source: str | None = None


class ChangePage(BaseModel):
    """Changes modified since a high-water mark, oldest first, and the mark to ask from
    next time (opaque to callers; stored between polls)."""

    changes: list[CrmChange]
    mark: str


class CheckItem(BaseModel):
    """One line of ``leadflow crm check``: what was checked, whether it works, and in
    words a sales-ops admin understands what was found or what to do."""

    name: str
    ok: bool
    detail: str
