"""Changes made in Salesforce, read back as vendor-neutral ``CrmChange``s: polled with
SOQL since a high-water mark, or interpreted from an Outbound Message's notice. Both
paths map a record's values through the same functions, so a poll and a notice of one
change give the same ``change_id``
(``salesforce:<object>:<id>:<field>=<value>``).

What is followed:

- Lead ``Status`` "Working - Contacted" → contacted; "Closed - Not Converted" →
  disqualified (the status is the reason);
- Lead ``OwnerId`` when it is a user (``005…``; a queue ``00G…`` owns no lead for us)
  other than the integration user → owner_changed;
- Opportunity closed and won → won (``Amount``, ``CurrencyIsoCode`` or USD in a
  single-currency org); closed and not won → lost (the ``StageName`` is the reason). An
  opportunity's lead is the Lead whose ``ConvertedOpportunityId`` it is.

Records last modified by Leadflow's integration user are skipped. Polling reads the
records' current values, not which field changed: a lead a rep modified reports its
status and owner as they are, and a value seen before comes back with the same change
id (applied once). A rep's change followed by one of Leadflow's before the poll is not
seen by the poll (an Outbound Message still reports it).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import PermanentError
from connectors.salesforce_access import Record, SalesforceAccess
from connectors.salesforce_soql import datetime_literal, is_id, parse_datetime, quote, same_id
from domain.crm import ChangePage, CrmChange, CrmChangeKind, CrmNotice

CONTACTED_STATUS = "Working - Contacted"
DISQUALIFIED_STATUS = "Closed - Not Converted"
DEFAULT_CURRENCY = "USD"
# Per object and poll. A full page is read again from its last second next time.
POLL_LIMIT = 2000
_MAX_CHANGE_ID = 200


def change_id(sobject: str, record_id: str, field: str, value: str) -> str:
    """``salesforce:<object>:<id>:<field>=<value>``, kept within 200 characters."""
    text = f"salesforce:{sobject}:{record_id}:{field}={value}"
    if len(text) <= _MAX_CHANGE_ID:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[: _MAX_CHANGE_ID - 17]}#{digest}"


def lead_changes(
    lead_id: str,
    status: str | None,
    owner_id: str | None,
    occurred_at: datetime | None,
    own_user_id: str,
) -> list[CrmChange]:
    """The changes a Lead's current ``Status`` and ``OwnerId`` stand for. The integration
    user as owner is where Salesforce puts a lead Leadflow wrote without one: no rep's
    assignment, so no owner change."""
    changes = []
    if status == CONTACTED_STATUS:
        changes.append(
            CrmChange(
                change_id=change_id("Lead", lead_id, "Status", status),
                crm_id=lead_id,
                kind=CrmChangeKind.contacted,
                occurred_at=occurred_at,
            )
        )
    elif status == DISQUALIFIED_STATUS:
        changes.append(
            CrmChange(
                change_id=change_id("Lead", lead_id, "Status", status),
                crm_id=lead_id,
                kind=CrmChangeKind.disqualified,
                reason=status,
                occurred_at=occurred_at,
            )
        )
    if owner_id and owner_id.startswith("005") and not same_id(owner_id, own_user_id):
        changes.append(
            CrmChange(
                change_id=change_id("Lead", lead_id, "OwnerId", owner_id),
                crm_id=lead_id,
                kind=CrmChangeKind.owner_changed,
                owner_id=owner_id,
                occurred_at=occurred_at,
            )
        )
    return changes


def deal_changes(
    opportunity_id: str,
    lead_id: str,
    *,
    stage: str | None,
    closed: bool,
    won: bool,
    amount: Decimal | None,
    currency: str,
    occurred_at: datetime | None,
) -> list[CrmChange]:
    if not closed or not stage:
        return []
    return [
        CrmChange(
            change_id=change_id("Opportunity", opportunity_id, "StageName", stage),
            crm_id=lead_id,
            kind=CrmChangeKind.won if won else CrmChangeKind.lost,
            amount=amount if won else None,
            currency=currency if won else None,
            reason=None if won else stage,
            occurred_at=occurred_at,
        )
    ]


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _amount(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


class ChangeReader:
    """``changes_since`` and ``interpret`` over one connector's access."""

    def __init__(self, access: SalesforceAccess) -> None:
        self._access = access

    def _multi_currency(self) -> bool:
        return "CurrencyIsoCode" in self._access.field_names("Opportunity")

    def _currency(self, record: Record) -> str:
        return str(record.get("CurrencyIsoCode") or DEFAULT_CURRENCY)

    def changes_since(self, mark: str | None) -> ChangePage:
        if mark is None:
            return ChangePage(changes=[], mark=datetime_literal(self._access.server_time()))
        try:
            since = parse_datetime(mark)
        except ValueError:
            raise PermanentError(
                f"the stored Salesforce poll mark {mark!r} is unreadable"
            ) from None
        literal = datetime_literal(since)
        own = self._access.session().user_id
        leads = self._access.query(
            "poll changed leads",
            "SELECT Id, Status, OwnerId, IsConverted, LastModifiedDate, LastModifiedById "
            f"FROM Lead WHERE LastModifiedDate >= {literal} "
            f"ORDER BY LastModifiedDate, Id LIMIT {POLL_LIMIT}",
        )
        currency_field = ", CurrencyIsoCode" if self._multi_currency() else ""
        deals = self._access.query(
            "poll closed opportunities",
            "SELECT Id, StageName, IsClosed, IsWon, Amount"
            f"{currency_field}, LastModifiedDate, LastModifiedById FROM Opportunity "
            f"WHERE LastModifiedDate >= {literal} AND IsClosed = true "
            f"ORDER BY LastModifiedDate, Id LIMIT {POLL_LIMIT}",
        )
        found: list[tuple[datetime, str, list[CrmChange]]] = []
        for lead in leads:
            if same_id(lead.get("LastModifiedById"), own) or _truthy(lead.get("IsConverted")):
                continue
            at = _moment(lead.get("LastModifiedDate"))
            changes = lead_changes(lead["Id"], lead.get("Status"), lead.get("OwnerId"), at, own)
            found.append((at or since, lead["Id"], changes))
        theirs = [d for d in deals if not same_id(d.get("LastModifiedById"), own)]
        lead_of = self._leads_of([d["Id"] for d in theirs])
        for deal in theirs:
            lead_id = lead_of.get(deal["Id"][:15])
            if lead_id is None:
                continue  # not an opportunity of a converted lead
            at = _moment(deal.get("LastModifiedDate"))
            changes = deal_changes(
                deal["Id"],
                lead_id,
                stage=deal.get("StageName"),
                closed=_truthy(deal.get("IsClosed")),
                won=_truthy(deal.get("IsWon")),
                amount=_amount(deal.get("Amount")),
                currency=self._currency(deal),
                occurred_at=at,
            )
            found.append((at or since, deal["Id"], changes))
        found.sort(key=lambda item: (item[0], item[1]))
        return ChangePage(
            changes=[c for _, _, changes in found for c in changes],
            mark=datetime_literal(self._next_mark(since, leads, deals)),
        )

    @staticmethod
    def _next_mark(since: datetime, leads: list[Record], deals: list[Record]) -> datetime:
        """The newest modification read; when a page was full, no later than its last
        record's second, so that what the limit cut off is read next time (``>=``
        re-reads that second; the repeats carry the same change ids)."""
        full = [page for page in (leads, deals) if len(page) >= POLL_LIMIT]
        pages = full or [leads, deals]
        moments = [
            moment
            for page in pages
            for moment in (_moment(r.get("LastModifiedDate")) for r in page[-1:])
            if moment is not None
        ]
        if not moments:
            return since
        newest = min(moments) if full else max(moments)
        return max(newest, since)

    def _leads_of(self, opportunity_ids: list[str]) -> dict[str, str]:
        """The converted Lead of each opportunity that has one, by the opportunity's
        15-character id."""
        found: dict[str, str] = {}
        ids = [i for i in opportunity_ids if is_id(i)]
        for start in range(0, len(ids), 200):
            chunk = ", ".join(quote(i) for i in ids[start : start + 200])
            for lead in self._access.query(
                "find the leads of opportunities",
                "SELECT Id, ConvertedOpportunityId FROM Lead "
                f"WHERE ConvertedOpportunityId IN ({chunk})",
            ):
                found[str(lead["ConvertedOpportunityId"])[:15]] = str(lead["Id"])
        return found

    def interpret(self, notice: CrmNotice) -> list[CrmChange]:
        own = self._access.session().user_id
        if notice.source and same_id(notice.source, own):
            return []
        fields = notice.fields
        occurred_at = notice.occurred_at or _moment(fields.get("LastModifiedDate"))
        if notice.object == "lead":
            if _truthy(fields.get("IsConverted")):
                return []
            return lead_changes(
                notice.object_id, fields.get("Status"), fields.get("OwnerId"), occurred_at, own
            )
        if not is_id(notice.object_id):
            return []
        deal: dict[str, Any] = dict(fields)
        wanted = ["StageName", "IsClosed", "IsWon", "Amount"]
        if self._multi_currency():
            wanted.append("CurrencyIsoCode")
        if any(deal.get(name) in (None, "") for name in wanted):
            record = self._access.get(
                "Opportunity", notice.object_id, ["Id", *wanted], "read the opportunity"
            )
            if record is None:
                return []
            deal = {name: deal.get(name) or record.get(name) for name in wanted}
        lead_id = self._leads_of([notice.object_id]).get(notice.object_id[:15])
        if lead_id is None:
            return []
        return deal_changes(
            notice.object_id,
            lead_id,
            stage=deal.get("StageName"),
            closed=_truthy(deal.get("IsClosed")),
            won=_truthy(deal.get("IsWon")),
            amount=_amount(deal.get("Amount")),
            currency=self._currency(deal),
            occurred_at=occurred_at,
        )
