"""What Leadflow sends to and reads from a CRM, independent of the vendor."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field


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
