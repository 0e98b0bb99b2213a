"""Converting a won lead: the SOAP ``convertLead`` call (an account — the existing one
the company matches, else a new one —, a contact and an opportunity), then the
opportunity set closed-won with the deal's amount and close date.

A lead converts once. When it is converted already (by an earlier call whose answer was
lost, or by a rep), its ``ConvertedAccountId``/``ContactId``/``OpportunityId`` are the
answer, with ``created`` False, and the opportunity is still made closed-won with the
amount."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from connectors.base import InvalidRecord, PermanentError
from connectors.salesforce_access import Record, SalesforceAccess
from connectors.salesforce_errors import VendorError, classify
from connectors.salesforce_leads import NOT_PROVIDED
from connectors.salesforce_soap import convert_envelope
from connectors.salesforce_soql import quote, quote_id
from domain.accounts import AccountMatch
from domain.crm import Conversion, DealWon
from domain.rules import FREEMAIL_DOMAINS

# Salesforce's length of Opportunity.Name.
MAX_OPPORTUNITY_NAME = 120
_LEAD_FIELDS = [
    "Id",
    "IsConverted",
    "ConvertedAccountId",
    "ConvertedContactId",
    "ConvertedOpportunityId",
    "OwnerId",
    "Company",
    "Email",
    "Website",
]
FindAccount = Callable[..., AccountMatch | None]


def _check_deal(deal: DealWon) -> str:
    name = " ".join(deal.name.split())[:MAX_OPPORTUNITY_NAME]
    if not name:
        raise InvalidRecord("a deal needs a name")
    if not (len(deal.currency) == 3 and deal.currency.isalpha()):
        raise InvalidRecord(f"{deal.currency!r} is not an ISO 4217 currency code")
    if not deal.amount.is_finite() or deal.amount < 0:
        raise InvalidRecord(f"invalid deal amount {deal.amount}")
    return name


def email_domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.rpartition("@")[2].strip().casefold() or None


def website_domain(website: str | None) -> str | None:
    """The host of a Website value (``https://www.acme.com/about`` → ``acme.com``)."""
    text = (website or "").strip().casefold()
    if not text:
        return None
    try:
        host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    except ValueError:
        return None
    return host.removeprefix("www.") or None


def _same_value(stored: Any, wanted: Any) -> bool:
    if isinstance(wanted, float) and stored is not None:
        try:
            return Decimal(str(stored)) == Decimal(str(wanted))
        except InvalidOperation:
            return False
    return bool(stored == wanted)


class LeadConverter:
    def __init__(self, access: SalesforceAccess, find_account: FindAccount) -> None:
        self._access = access
        self._find_account = find_account
        self._converted_status: str | None = None
        self._won_stage: str | None = None

    def convert(self, crm_id: str, deal: DealWon) -> Conversion:
        name = _check_deal(deal)
        lead = self._lead(crm_id)
        if lead.get("IsConverted"):
            return self._converted_before(lead, deal, name)
        owner = deal.owner_id or lead.get("OwnerId")
        if not owner or not str(owner).startswith("005"):
            # A queue cannot own the account and contact: a queue-owned lead needs a
            # user, and without the deal's owner that is the integration user.
            owner = deal.owner_id or self._access.session().user_id
        account = self._account_for(lead)
        status = self.converted_status()
        result = self._access.convert_lead(
            lambda session_id: convert_envelope(
                session_id,
                lead_id=crm_id,
                converted_status=status,
                owner_id=owner,
                account_id=account,
                opportunity_name=name,
            )
        )
        if not result.success:
            again = self._lead(crm_id)
            if again.get("IsConverted"):  # converted meanwhile by another call
                return self._converted_before(again, deal, name)
            raise classify(
                400,
                [VendorError(e.code, e.message, e.fields) for e in result.errors],
                "convert the lead",
            )
        if not (result.account_id and result.contact_id and result.opportunity_id):
            raise PermanentError("Salesforce converted the lead but named no opportunity")
        self._close_won(result.opportunity_id, deal)
        return Conversion(
            account_id=result.account_id,
            contact_id=result.contact_id,
            deal_id=result.opportunity_id,
            created=True,
        )

    def _lead(self, crm_id: str) -> Record:
        quote_id(crm_id, "lead")
        lead = self._access.get("Lead", crm_id, _LEAD_FIELDS, "read the lead to convert")
        if lead is None:
            raise InvalidRecord(f"Salesforce has no lead {crm_id!r}")
        return lead

    def _converted_before(self, lead: Record, deal: DealWon, name: str) -> Conversion:
        account_id, contact_id = lead.get("ConvertedAccountId"), lead.get("ConvertedContactId")
        if not (account_id and contact_id):
            raise InvalidRecord(f"lead {lead['Id']} is converted but names no account or contact")
        opportunity_id = lead.get("ConvertedOpportunityId")
        if opportunity_id:
            self._close_won(str(opportunity_id), deal, unless_done=True)
        else:
            # Converted by a rep without an opportunity: one is created on the account,
            # found again by its name on a repeated call.
            opportunity_id = self._opportunity_on(str(account_id), deal, name)
        return Conversion(
            account_id=str(account_id),
            contact_id=str(contact_id),
            deal_id=str(opportunity_id),
            created=False,
        )

    def _account_for(self, lead: Record) -> str | None:
        """The existing account the lead's company or domain matches, if any."""
        domain = email_domain(lead.get("Email"))
        company = lead.get("Company")
        match = self._find_account(
            email_domain=domain,
            website_domain=website_domain(lead.get("Website")),
            company=None if company == NOT_PROVIDED else company,
            free_mail=domain in FREEMAIL_DOMAINS,
        )
        return match.account.crm_id if match else None

    def _deal_fields(self, deal: DealWon) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "StageName": self.won_stage(),
            "Amount": float(deal.amount),
            "CloseDate": deal.close_date.isoformat(),
        }
        if "CurrencyIsoCode" in self._access.field_names("Opportunity"):
            fields["CurrencyIsoCode"] = deal.currency.upper()
        return fields

    def _close_won(self, opportunity_id: str, deal: DealWon, *, unless_done: bool = False) -> None:
        """Set the opportunity closed-won with the deal's amount and close date; with
        ``unless_done``, only when it does not hold these values yet (no needless write
        that would make Leadflow its last modifier)."""
        fields = self._deal_fields(deal)
        if unless_done:
            current = self._access.get(
                "Opportunity", opportunity_id, list(fields), "read the converted opportunity"
            )
            if current is not None and all(
                _same_value(current.get(name), value) for name, value in fields.items()
            ):
                return
        self._access.update("Opportunity", opportunity_id, fields, "close the opportunity won")

    def _opportunity_on(self, account_id: str, deal: DealWon, name: str) -> str:
        found = self._access.query(
            "find the deal's opportunity",
            f"SELECT Id FROM Opportunity WHERE AccountId = {quote_id(account_id, 'account')} "
            f"AND Name = {quote(name)} ORDER BY CreatedDate, Id LIMIT 1",
        )
        if found:
            self._close_won(str(found[0]["Id"]), deal)
            return str(found[0]["Id"])
        fields = {"Name": name, "AccountId": account_id, **self._deal_fields(deal)}
        if deal.owner_id:
            fields["OwnerId"] = deal.owner_id
        return self._access.create("Opportunity", fields, "create the deal's opportunity")

    def converted_status(self) -> str:
        """The lead status a conversion sets (``LeadStatus`` with ``IsConverted``)."""
        if self._converted_status is None:
            found = self._access.query(
                "read the converted lead status",
                "SELECT Id, ApiName, MasterLabel FROM LeadStatus WHERE IsConverted = true "
                "ORDER BY SortOrder LIMIT 1",
            )
            if not found:
                raise InvalidRecord("Salesforce has no converted lead status (LeadStatus)")
            self._converted_status = str(found[0].get("ApiName") or found[0]["MasterLabel"])
        return self._converted_status

    def won_stage(self) -> str:
        """The stage of a won opportunity (an active ``OpportunityStage`` with ``IsWon``)."""
        if self._won_stage is None:
            found = self._access.query(
                "read the won opportunity stage",
                "SELECT Id, ApiName, MasterLabel FROM OpportunityStage "
                "WHERE IsWon = true AND IsActive = true ORDER BY SortOrder LIMIT 1",
            )
            if not found:
                raise InvalidRecord("Salesforce has no active won opportunity stage")
            self._won_stage = str(found[0].get("ApiName") or found[0]["MasterLabel"])
        return self._won_stage
