"""Converting a won HubSpot contact: a company (the contact's, the matching account, or
a new one), a deal in the won stage of the configured pipeline associated with both and
marked with ``leadflow_id``, and the contact's lifecycle stage ``customer``. A contact
with such a deal is converted: converting it again returns that deal.

Every record is created with its associations in the same request, so that an attempt
whose answer was lost left records a retry finds through the contact's associations
(consistent) rather than through search (which lags behind writes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.hubspot_client import HubSpotApi
from connectors.hubspot_records import (
    COMPANY_TO_CONTACT,
    CONVERTED_STAGE,
    DEAL_TO_COMPANY,
    DEAL_TO_CONTACT,
    associated,
    link,
    noon_utc,
    web_domain,
)
from domain.accounts import AccountMatch
from domain.crm import Conversion, DealWon
from domain.rules import FREEMAIL_DOMAINS

FindAccount = Callable[..., AccountMatch | None]
CONTACT_FIELDS = [
    "email",
    "company",
    "website",
    "hubspot_owner_id",
    "lifecyclestage",
    "leadflow_id",
]
# Lifecycle stages move forward only: these are customer or past it.
CUSTOMER_OR_LATER = (CONVERTED_STAGE, "evangelist", "other")


class Converter:
    def __init__(
        self, api: HubSpotApi, *, pipeline: str, won_stage: str, find_account: FindAccount
    ) -> None:
        self._api = api
        self._pipeline = pipeline
        self._won_stage = won_stage
        self._find_account = find_account

    def convert(self, crm_id: str, deal: DealWon) -> Conversion:
        api = self._api
        api.ensure_properties("deals")
        contact = api.contact(crm_id, CONTACT_FIELDS, ["deals", "companies"])
        values = contact.properties or {}
        deal_ids = associated(contact, "deals")
        done = self._leadflow_deal(deal_ids)
        if done is None:
            # A deal a rep already closed won in HubSpot (the change that brought the
            # lead here): it is the conversion's deal, marked as Leadflow's from now on.
            adopted = self._won_deal(deal_ids)
            if adopted is not None:
                leadflow_id = values.get("leadflow_id") or crm_id
                api.call(api.deals.update, adopted, {"properties": {"leadflow_id": leadflow_id}})
                deal_read = api.call(api.deals.get_by_id, adopted, associations=["companies"])
                companies = associated(deal_read, "companies") or associated(contact, "companies")
                account = companies[0] if companies else self._company_for(contact, None)
                self._mark_customer(crm_id, values)
                return Conversion(
                    account_id=account, contact_id=crm_id, deal_id=adopted, created=True
                )
        if done is not None:
            deal_read = api.call(api.deals.get_by_id, done, associations=["companies"])
            companies = associated(deal_read, "companies") or associated(contact, "companies")
            account = companies[0] if companies else self._company_for(contact, None)
            self._mark_customer(crm_id, values)
            return Conversion(account_id=account, contact_id=crm_id, deal_id=done, created=False)
        owner = deal.owner_id or values.get("hubspot_owner_id") or None
        account = self._company_for(contact, owner)
        properties = {
            "dealname": deal.name,
            "amount": str(deal.amount),
            "deal_currency_code": deal.currency.upper(),
            "closedate": noon_utc(deal.close_date),
            "pipeline": self._pipeline,
            "dealstage": self._won_stage,
            "leadflow_id": values.get("leadflow_id") or crm_id,
        }
        if owner:
            properties["hubspot_owner_id"] = owner
        links = [link(crm_id, DEAL_TO_CONTACT), link(account, DEAL_TO_COMPANY)]
        created = api.call(api.deals.create, {"properties": properties, "associations": links})
        self._mark_customer(crm_id, values)
        return Conversion(
            account_id=account, contact_id=crm_id, deal_id=str(created.id), created=True
        )

    def _leadflow_deal(self, deal_ids: list[str]) -> str | None:
        """The won deal Leadflow's conversion created (or adopted) among these, if any."""
        for deal_id, values in self._won_deals(deal_ids):
            if values.get("leadflow_id"):
                return deal_id
        return None

    def _won_deal(self, deal_ids: list[str]) -> str | None:
        """A deal of the pipeline closed won by someone else, if any."""
        for deal_id, values in self._won_deals(deal_ids):
            if values.get("pipeline") in (None, self._pipeline):
                return deal_id
        return None

    def _won_deals(self, deal_ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
        if not deal_ids:
            return []
        request = {
            "inputs": [{"id": i} for i in deal_ids[:100]],
            "properties": ["dealstage", "pipeline", "leadflow_id"],
            "propertiesWithHistory": [],
        }
        found = self._api.call(self._api.deal_batch.read, request).results or []
        return [
            (str(d.id), d.properties or {})
            for d in found
            if (d.properties or {}).get("dealstage") == self._won_stage
        ]

    def _company_for(self, contact: Any, owner: str | None) -> str:
        """The contact's company: associated with it, else the matching account (then
        associated with it), else a new one created associated with it."""
        api = self._api
        crm_id = str(contact.id)
        companies = associated(contact, "companies")
        if companies:
            return companies[0]
        values = contact.properties or {}
        email_domain = str(values.get("email") or "").rpartition("@")[2].casefold() or None
        free = email_domain in FREEMAIL_DOMAINS
        website = web_domain(values.get("website"))
        match = self._find_account(
            email_domain=email_domain,
            website_domain=website,
            company=values.get("company"),
            free_mail=free,
        )
        if match is not None:
            company_id = match.account.crm_id
            api.call(api.associations.create_default, "contacts", crm_id, "companies", company_id)
            return company_id
        domain = website if free else email_domain
        company = {"name": values.get("company") or domain or values.get("email") or crm_id}
        if domain:
            company["domain"] = domain
        if owner:
            company["hubspot_owner_id"] = owner
        body = {"properties": company, "associations": [link(crm_id, COMPANY_TO_CONTACT)]}
        return str(api.call(api.companies.create, body).id)

    def _mark_customer(self, crm_id: str, values: dict[str, Any]) -> None:
        if values.get("lifecyclestage") not in CUSTOMER_OR_LATER:
            body = {"properties": {"lifecyclestage": CONVERTED_STAGE}}
            self._api.call(self._api.contacts.update, crm_id, body)
