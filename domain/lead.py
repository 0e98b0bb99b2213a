"""The lead as it crosses every boundary: the validated submission, its identity, and its
lifecycle stages and events."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

MAX_EXTRA_FIELDS = 20
MAX_EXTRA_KEY = 64
MAX_EXTRA_VALUE = 1000
EXTRA_PREFIX = "extra."

MAX_EMAIL_LOCAL_PART = 64  # RFC 5321, section 4.5.3.1.1

# Pass as ``model_validate(..., context=AT_INTAKE)`` where a submission enters Leadflow: it
# is then refused (ValueError naming the field) for control characters or an over-long
# email. Without it -- a submission read back from a Temporal history or the database,
# accepted before these rules -- control characters are removed instead, so that an old
# lead never fails its workflow or an activity on every retry.
AT_INTAKE: dict[str, bool] = {"intake": True}

# Control characters (Unicode category Cc) and the Unicode line and paragraph separators:
# invisible, they break log lines, CSV exports and scripts, and PostgreSQL refuses NUL.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The same less tab and newline, which a multi-line description may hold.
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# Line breaks as browsers send them (CRLF), old Macs wrote them, or Unicode spells them.
_LINE_BREAK = re.compile("\r\n?|[\u2028\u2029]")


def _at_intake(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("intake"))


def control_character_error(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` is refused for a control character, or None when it has none. The
    message names the code point, never the text around it."""
    found = (_CONTROL_IN_TEXT if multiline else _CONTROL).search(value)
    if found is None:
        return None
    allowed = " (tab and line breaks are allowed)" if multiline else ""
    return f"must not contain control characters (found U+{ord(found.group()):04X}){allowed}"


def _without_controls(value: str, info: ValidationInfo, *, multiline: bool = False) -> str:
    error = control_character_error(value, multiline=multiline)
    if error is None:
        return value
    if _at_intake(info):
        raise ValueError(error)
    return (_CONTROL_IN_TEXT if multiline else _CONTROL).sub("", value).strip()


def _single_line(value: str, info: ValidationInfo) -> str:
    return _without_controls(value, info)


def _multi_line(value: str, info: ValidationInfo) -> str:
    return _without_controls(value, info, multiline=True)


def _unix_line_breaks(value: object) -> object:
    return _LINE_BREAK.sub("\n", value) if isinstance(value, str) else value


ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(_single_line)
]
LongText = Annotated[
    str,
    BeforeValidator(_unix_line_breaks),
    StringConstraints(strip_whitespace=True, max_length=5000),
    AfterValidator(_multi_line),
]


def normalize_email(email: str) -> str:
    """The identity form of an email: surrounding whitespace removed, lower case."""
    return email.strip().lower()


def _normalized_email(value: str, info: ValidationInfo) -> str:
    local = value.rpartition("@")[0]
    if len(local) > MAX_EMAIL_LOCAL_PART and _at_intake(info):
        raise ValueError(
            f"the part before the @-sign is longer than {MAX_EMAIL_LOCAL_PART} characters"
        )
    return normalize_email(value)


def _not_a_boolean(value: object) -> object:
    # JSON true/false would pass as 1/0; digit strings (HTML forms) and numbers still do.
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true or false")
    return value


CompanySize = Annotated[int, Field(ge=1, le=10_000_000), BeforeValidator(_not_a_boolean)]


_PHONE = re.compile(r"^[0-9+()./\- xext]{4,40}$", re.IGNORECASE)
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")  # fullmatch


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
    changes_accepted = "changes_accepted"
    step_failed = "step_failed"
    lifecycle_resumed = "lifecycle_resumed"
    lifecycle_closed = "lifecycle_closed"
    # What people and the CRM report (``domain.stages.LeadEventType``).
    contacted = "contacted"
    meeting_booked = "meeting_booked"
    no_response = "no_response"
    declined = "declined"
    presentation_held = "presentation_held"
    presentation_failed = "presentation_failed"
    qualified = "qualified"
    disqualified = "disqualified"
    proposal_sent = "proposal_sent"
    negotiation_started = "negotiation_started"
    won = "won"
    lost = "lost"
    engagement = "engagement"
    reassigned = "reassigned"
    owner_changed = "owner_changed"
    # What the lifecycle does by itself.
    sla_reminded = "sla_reminded"
    sla_escalated = "sla_escalated"
    stale_reminded = "stale_reminded"
    nurture_started = "nurture_started"
    recycled = "recycled"
    converted = "converted"
    account_manager_assigned = "account_manager_assigned"
    onboarding_tasks_created = "onboarding_tasks_created"
    win_announced = "win_announced"
    handed_off = "handed_off"
    retry_requested = "retry_requested"
    # A change made in the CRM that does not apply to the lead's stage: recorded, not forced.
    crm_change_not_applied = "crm_change_not_applied"
    # Approvals (``workflows.approval``): asked, escalated to the next level, decided (or
    # timed out), and an approved request the lead's stage no longer allowed to apply.
    approval_requested = "approval_requested"
    approval_escalated = "approval_escalated"
    approval_decided = "approval_decided"
    approval_not_applied = "approval_not_applied"


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
    postal_code: ShortText | None = None
    website: ShortText | None = None
    company_size: CompanySize | None = None
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
    def _bounded_extra(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if len(value) > MAX_EXTRA_FIELDS:
            raise ValueError(f"at most {MAX_EXTRA_FIELDS} extra fields are accepted")
        if not _at_intake(info):
            value = {_CONTROL.sub("", k): _CONTROL.sub("", v) for k, v in value.items()}
        for key, item in value.items():
            if not _KEY.fullmatch(key):
                raise ValueError(
                    f"extra field name {key[:80]!r} must start with a letter and use only "
                    f"letters, digits, '_', '-', '.' (at most {MAX_EXTRA_KEY} characters)"
                )
            if len(item) > MAX_EXTRA_VALUE:
                raise ValueError(f"extra field {key!r} is longer than {MAX_EXTRA_VALUE} characters")
            error = control_character_error(item)
            if error:
                raise ValueError(f"extra field {key!r} {error}")
        return value

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.email

    def merged_with(self, newer: LeadSubmission) -> LeadSubmission:
        """This submission updated with every non-empty field of a newer one. Only for
        runs recorded before resubmissions stopped overwriting fields (see ``absorb``)."""
        data = self.model_dump()
        for key, value in newer.model_dump().items():
            if key == "extra":
                data["extra"] = {**data["extra"], **value}
            elif value not in (None, ""):
                data[key] = value
        if len(data["extra"]) > MAX_EXTRA_FIELDS:
            data["extra"] = dict(list(data["extra"].items())[-MAX_EXTRA_FIELDS:])
        return LeadSubmission.model_validate(data)

    def absorb(self, newer: LeadSubmission) -> SubmissionChanges:
        """What a later, unauthenticated submission of the same person may change.

        Anyone who knows an address can post the form again, so a resubmission only fills
        fields that are still empty (and adds free-form fields not yet known, within the
        limit); a value that differs from one already held is not applied but returned as
        a proposed change, for the lead's owner to accept."""
        data = self.model_dump()
        filled: dict[str, str | int] = {}
        proposed: dict[str, str | int] = {}
        for key, value in newer.model_dump(exclude={"email", "extra"}).items():
            if value in (None, ""):
                continue
            if data[key] in (None, ""):
                data[key] = value
                filled[key] = value
            elif data[key] != value:
                proposed[key] = value
        for key, value in newer.extra.items():
            current = data["extra"].get(key)
            if current is None and len(data["extra"]) < MAX_EXTRA_FIELDS:
                data["extra"][key] = value
                filled[f"{EXTRA_PREFIX}{key}"] = value
            elif current != value:
                proposed[f"{EXTRA_PREFIX}{key}"] = value
        merged = LeadSubmission.model_validate(data) if filled else self
        return SubmissionChanges(merged=merged, filled=filled, proposed=proposed)

    def with_changes(self, changes: dict[str, str | int]) -> LeadSubmission:
        """This submission with the given fields set (``extra.<name>`` for free-form
        fields): how an owner applies proposed changes they accepted."""
        data = self.model_dump()
        for key, value in changes.items():
            if key.startswith(EXTRA_PREFIX):
                data["extra"][key.removeprefix(EXTRA_PREFIX)] = value
            elif key in data and key not in ("email", "extra"):
                data[key] = value
        return LeadSubmission.model_validate(data)


class SubmissionChanges(BaseModel):
    """The result of absorbing a resubmission: the lead's submission afterwards, the empty
    fields it filled, and the differing values it proposed but did not apply."""

    merged: LeadSubmission
    filled: dict[str, str | int] = Field(default_factory=dict)
    proposed: dict[str, str | int] = Field(default_factory=dict)


def field_errors(err: ValidationError) -> list[dict[str, str]]:
    """A refused submission's problems, one ``{"field", "message"}`` each, in the words
    every boundary uses (``POST /leads``, the bulk import): ``is required``, the unknown
    field's hint, our validators' messages without pydantic's prefix."""
    out = []
    for item in err.errors():
        field = ".".join(str(p) for p in item["loc"]) or "body"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field; send free-form fields inside 'extra'"
        elif item["type"] == "missing":
            message = "is required"
        elif item["type"] == "value_error":
            message = message.removeprefix("Value error, ")  # pydantic's wording, not ours
        out.append({"field": field, "message": message})
    return out


def lead_key(email: str, secret: bytes, source_system: str = "web") -> str:
    """Stable identity of a lead: a keyed hash (HMAC-SHA256 with the installation's secret)
    of the source system and the normalised email. Ids, URLs and logs never carry the
    address, and nobody without the secret can compute a lead's id from an address."""
    raw = f"{source_system}:{normalize_email(email)}".encode()
    return hmac.new(secret, raw, hashlib.sha256).hexdigest()[:24]


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
