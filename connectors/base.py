"""The ``CRM`` protocol every vendor module implements, and the error tree every vendor's
errors are mapped to in one place per module::

    ConnectorError                 anything a CRM call can fail with
    ├── RetryableError             try again later: 5xx, timeouts, connection errors
    │   └── RateLimited            429 / REQUEST_LIMIT_EXCEEDED; carries retry_after (s)
    └── PermanentError             retrying will not help; carries the vendor's message
        ├── AuthError              401/403, expired or revoked credentials
        └── InvalidRecord          the vendor refused the record (validation, duplicates)

Activities turn ``RetryableError`` into a Temporal retry (honouring ``retry_after``) and
``PermanentError`` into a non-retryable ``ApplicationError``.
"""

from __future__ import annotations

from typing import Protocol

from domain.accounts import AccountMatch
from domain.crm import (
    ChangePage,
    CheckItem,
    Conversion,
    CrmChange,
    CrmLeadData,
    CrmLeadRef,
    CrmNotice,
    CrmOwner,
    CrmTask,
    DealWon,
    LeadStatus,
)


class ConnectorError(Exception):
    """Base of every CRM error. ``vendor_message`` is what the vendor said, verbatim."""

    def __init__(self, message: str, *, vendor_message: str | None = None) -> None:
        super().__init__(message)
        self.vendor_message = vendor_message or message


class RetryableError(ConnectorError):
    """A transient failure; the same call may succeed later."""

    def __init__(
        self, message: str, *, vendor_message: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, vendor_message=vendor_message)
        self.retry_after = retry_after


class RateLimited(RetryableError):
    """The vendor asked us to slow down."""


class PermanentError(ConnectorError):
    """A failure that will repeat on retry."""


class AuthError(PermanentError):
    """Credentials missing, wrong, expired or lacking permission."""


class InvalidRecord(PermanentError):
    """The vendor refused the record's content."""


class CRM(Protocol):
    """What Leadflow needs from a CRM. Calls are synchronous; activities run them on the
    worker's thread pool. Every write is idempotent: an activity is retried after a
    timeout or a killed worker, possibly after the write went through, so a repeated call
    must leave the CRM as one call would."""

    name: str

    def upsert_lead(self, lead: CrmLeadData, idempotency_key: str) -> CrmLeadRef:
        """Create the lead, or update the one with the same email, setting its owner.
        Calling twice with the same key and data leaves one record."""
        ...

    def get_lead(self, crm_id: str) -> CrmLeadData | None:
        """The lead with this CRM id, or None."""
        ...

    def find_account(
        self,
        *,
        email_domain: str | None,
        website_domain: str | None,
        company: str | None,
        free_mail: bool,
    ) -> AccountMatch | None:
        """The existing account a lead belongs to: by email or website domain first
        (never a free-mail domain), then by normalised company name with a fuzzy
        threshold (``domain.accounts.best_match``); None when there is none."""
        ...

    def set_status(self, crm_id: str, status: LeadStatus, reason: str | None) -> None:
        """Set the lead's status and status reason (``None`` clears the reason); setting
        the same values again changes nothing. ``converted`` is set by ``convert_lead``
        only, and a converted lead's status no longer changes: both raise
        ``InvalidRecord``, as does a ``crm_id`` the CRM does not have."""
        ...

    def set_nurture(self, crm_id: str, member: bool, list_name: str) -> None:
        """Add the lead to the nurture list ``list_name`` (``member``) or remove it. Adding
        a member or removing a non-member changes nothing; the lead's other lists are
        kept. ``InvalidRecord`` when the CRM has no lead ``crm_id``."""
        ...

    def create_task(self, task: CrmTask, idempotency_key: str) -> str:
        """Create a follow-up task on the lead ``task.crm_id``; its CRM id. A repeated call
        with the same ``idempotency_key`` creates nothing and returns the first task's id
        (the first call's content stands). ``InvalidRecord`` when the lead is missing."""
        ...

    def convert_lead(self, crm_id: str, deal: DealWon, idempotency_key: str) -> Conversion:
        """Convert the won lead into an account, a contact and a deal, and mark it
        ``converted``. A lead converts once: converting it again, with any key or deal,
        creates nothing and returns the first conversion with ``created`` False.
        ``InvalidRecord`` when the lead is missing."""
        ...

    def list_owners(self) -> list[CrmOwner]:
        """Every user who can own records, active or not (all pages; HubSpot's archived
        owners included with ``active`` False), for linking reps by email."""
        ...

    def changes_since(self, mark: str | None) -> ChangePage:
        """The lifecycle-relevant changes of records modified at or after ``mark``,
        oldest first, and the next mark. ``None`` starts from now: no changes, and the
        mark of the present, so a new installation does not replay the CRM's past. A
        record modified in the same second as the mark is returned again on the next
        call rather than skipped (its ``change_id`` is the same, so it is applied once).
        Changes Leadflow itself made are not returned."""
        ...

    def interpret(self, notice: CrmNotice) -> list[CrmChange]:
        """The changes a webhook's notice stands for (may read the CRM, e.g. a deal's
        contact and amount); none when it changes nothing Leadflow follows or was made
        by Leadflow itself."""
        ...

    def check(self, nurture_list: str | None) -> list[CheckItem]:
        """What works and what is missing with the configured credentials, for
        ``leadflow crm check``: authentication, permissions or scopes, the owners it can
        see, the custom fields or properties Leadflow writes, the nurture list or
        campaign ``nurture_list``. Never raises for a failed check: it is a line."""
        ...

    def record_url(self, crm_id: str) -> str | None:
        """Where a person opens the lead's record in the CRM, when it has a web page."""
        ...

    def ping(self) -> None:
        """Raise ``ConnectorError`` if the CRM cannot be reached with our credentials."""
        ...
