"""The lead as it crosses every boundary: the validated submission, its identity, and its
lifecycle stages and events."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
)

MAX_EXTRA_FIELDS = 20
MAX_EXTRA_KEY = 64
MAX_EXTRA_VALUE = 1000

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]


def normalize_email(email: str) -> str:
    """The identity form of an email: surrounding whitespace removed, lower case."""
    return email.strip().lower()


def _normalized_email(value: str) -> str:
    return normalize_email(value)


_PHONE = re.compile(r"^[0-9+()./\- xext]{4,40}$", re.IGNORECASE)
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")


class Stage(StrEnum):
    """Lifecycle stages (LIFECYCLE.md part B)."""

    captured = "captured"
    scored = "scored"
    assigned = "assigned"
    contacted = "contacted"
    meeting_booked = "meeting_booked"
    presentation = "presentation"
    qualified = "qualified"
    disqualified = "disqualified"
    proposal = "proposal"
    negotiation = "negotiation"
    won = "won"
    lost = "lost"
    nurturing = "nurturing"
    handed_off = "handed_off"


class EventType(StrEnum):
    """What can be recorded on a lead's timeline."""

    captured = "captured"
    resubmitted = "resubmitted"
    scored = "scored"
    assigned = "assigned"
    unassigned = "unassigned"
    crm_synced = "crm_synced"
    crm_sync_failed = "crm_sync_failed"
    owner_notified = "owner_notified"
    lifecycle_closed = "lifecycle_closed"


class LeadSubmission(BaseModel):
    """A web-form submission after validation. Unknown top-level fields are refused by the
    intake before they reach this model; free-form fields go into ``extra``."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    email: Annotated[EmailStr, AfterValidator(_normalized_email)]
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    company: ShortText | None = None
    title: ShortText | None = None
    phone: ShortText | None = None
    country: ShortText | None = None
    state: ShortText | None = None
    website: ShortText | None = None
    company_size: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    industry: ShortText | None = None
    source: ShortText | None = None
    utm_source: ShortText | None = None
    utm_medium: ShortText | None = None
    utm_campaign: ShortText | None = None
    utm_term: ShortText | None = None
    utm_content: ShortText | None = None
    message: LongText | None = None
    extra: dict[str, str] = Field(default_factory=dict)

    @field_validator("phone")
    @classmethod
    def _phone_shape(cls, value: str | None) -> str | None:
        if value and not _PHONE.match(value):
            raise ValueError("must be a phone number (digits, spaces, + ( ) - . x)")
        return value or None

    @field_validator("country")
    @classmethod
    def _country_upper(cls, value: str | None) -> str | None:
        if value and len(value) == 2:
            return value.upper()
        return value or None

    @field_validator("extra")
    @classmethod
    def _bounded_extra(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_EXTRA_FIELDS:
            raise ValueError(f"at most {MAX_EXTRA_FIELDS} extra fields are accepted")
        for key, item in value.items():
            if not _KEY.match(key):
                raise ValueError(
                    f"extra field name {key[:80]!r} must start with a letter and use only "
                    f"letters, digits, '_', '-', '.' (at most {MAX_EXTRA_KEY} characters)"
                )
            if len(item) > MAX_EXTRA_VALUE:
                raise ValueError(f"extra field {key!r} is longer than {MAX_EXTRA_VALUE} characters")
        return value

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.email

    def merged_with(self, newer: LeadSubmission) -> LeadSubmission:
        """This submission updated with every non-empty field of a newer one."""
        data = self.model_dump()
        for key, value in newer.model_dump().items():
            if key == "extra":
                data["extra"] = {**data["extra"], **value}
            elif value not in (None, ""):
                data[key] = value
        if len(data["extra"]) > MAX_EXTRA_FIELDS:
            data["extra"] = dict(list(data["extra"].items())[-MAX_EXTRA_FIELDS:])
        return LeadSubmission.model_validate(data)


def lead_key(email: str, source_system: str = "web") -> str:
    """Stable identity of a lead: derived from the normalised email and the source system,
    hashed so that ids, URLs and logs never carry the address itself."""
    raw = f"{source_system}:{normalize_email(email)}".encode()
    return hashlib.sha256(raw).hexdigest()[:24]


def workflow_id_for(lead_id: str) -> str:
    return f"lead-{lead_id}"


class Owner(BaseModel):
    """The rep who owns a lead, as shown to API users and sent to the CRM."""

    rep_id: int
    name: str
    email: str
    crm_owner_id: str | None = None
    slack_user_id: str | None = None


class LeadEvent(BaseModel):
    """One entry of a lead's timeline."""

    type: EventType
    stage: Stage | None = None
    occurred_at: datetime
    data: dict[str, object] = Field(default_factory=dict)
