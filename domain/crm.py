"""What Leadflow sends to and reads from a CRM, independent of the vendor."""

from __future__ import annotations

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
