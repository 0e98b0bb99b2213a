"""How Leadflow talks to HubSpot: the ``CRM`` protocol over hubspot-api-client with a
private app token. A Leadflow lead is a HubSpot contact.

- Leads: created, or, when HubSpot answers 409 "Contact already exists. Existing ID: N"
  (also a create retried after a 504 that had gone through), updated as contact N;
  never found by a search after a write (search is eventually consistent).
- Owners: ``hubspot_owner_id`` is an owner's ``id`` (not its ``userId``); archived owners
  come back inactive.
- Status: ``hs_lead_status`` (reason in ``leadflow_status_reason``); a contact whose
  ``lifecyclestage`` is ``customer`` is converted.
- Nurture: a static (MANUAL) contact list, found by name.
- Tasks: idempotent by association (consistent, unlike search): a task of the contact
  with the same subject and due date is the one a lost answer created.
- Conversion: a company (associated, matching, or new), a won deal in the configured
  pipeline marked with ``leadflow_id`` and associated with both, and the contact's
  lifecycle stage ``customer``; a contact with such a deal is converted already.

Errors are classified in ``hubspot_errors``; the SDK set-up is in ``hubspot_client``;
polling and webhooks in ``hubspot_changes``; ``leadflow crm check`` in ``hubspot_check``.
A private app token does not expire, so there is no re-authentication: a 401 is final."""

from __future__ import annotations

import threading
import zlib
from typing import Any

from connectors.base import AuthError, InvalidRecord
from connectors.hubspot_changes import ChangeReader
from connectors.hubspot_check import run_checks
from connectors.hubspot_client import NOT_FOUND, HubSpotApi
from connectors.hubspot_convert import Converter
from connectors.hubspot_errors import ContactExists
from connectors.hubspot_records import (
    CONTACT_PROPERTIES,
    CONVERTED_STAGE,
    LEAD_STATUS,
    TASK_TO_CONTACT,
    lead_from,
    lead_properties,
    link,
    noon_utc,
    utc_day,
    web_domain,
)
from domain.accounts import Account, AccountMatch, best_match, normalize_company
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
from settings import Settings

CONTACT_TYPE_ID = "0-1"
# HubSpot's task types are CALL, EMAIL and TODO (its name for a plain to-do): ours are to-dos.
TASK_TYPE = "TODO"


class HubSpotCRM:
    name = "hubspot"

    def __init__(
        self,
        *,
        token: str,
        base_url: str = "https://api.hubapi.com",
        timeout_s: float = 15.0,
        pipeline: str = "default",
        won_stage: str = "closedwon",
        lost_stage: str = "closedlost",
        portal_id: str | None = None,
        app_url: str = "https://app.hubspot.com",
    ) -> None:
        self._api = HubSpotApi(token, base_url, timeout_s)
        self._portal_id = portal_id
        self._app_url = app_url.rstrip("/")
        self._pipeline = pipeline
        self._won_stage = won_stage
        self._lost_stage = lost_stage
        self._changes = ChangeReader(
            self._api, pipeline=pipeline, won_stage=won_stage, lost_stage=lost_stage
        )
        self._converter = Converter(
            self._api, pipeline=pipeline, won_stage=won_stage, find_account=self.find_account
        )
        self._lists: dict[str, str] = {}
        self._lists_lock = threading.Lock()
        # Writes to one contact's tasks or conversion wait for each other in this
        # process (striped by contact id, so memory stays bounded).
        self._stripes = [threading.Lock() for _ in range(64)]

    @classmethod
    def from_settings(cls, settings: Settings) -> HubSpotCRM:
        if settings.hubspot_token is None:
            raise AuthError("LEADFLOW_HUBSPOT_TOKEN is not set (the private app's access token)")
        return cls(
            token=settings.hubspot_token.get_secret_value(),
            base_url=settings.hubspot_base_url,
            timeout_s=settings.crm_timeout_s,
            pipeline=settings.hubspot_pipeline,
            won_stage=settings.hubspot_won_stage,
            lost_stage=settings.hubspot_lost_stage,
            portal_id=settings.hubspot_portal_id,
        )

    def record_url(self, crm_id: str) -> str | None:
        """The contact's page in HubSpot (needs the account's id,
        ``LEADFLOW_HUBSPOT_PORTAL_ID``)."""
        if not self._portal_id:
            return None
        return f"{self._app_url}/contacts/{self._portal_id}/record/0-1/{crm_id}"

    def _stripe(self, crm_id: str) -> threading.Lock:
        return self._stripes[zlib.crc32(crm_id.encode()) % len(self._stripes)]

    # -- leads -------------------------------------------------------------------------

    def upsert_lead(self, lead: CrmLeadData, idempotency_key: str) -> CrmLeadRef:  # noqa: ARG002
        # The email is HubSpot's natural key of contacts: the idempotency key is not needed.
        api = self._api
        api.ensure_properties("contacts")
        values = lead_properties(lead)
        band = values.get("numemployees")
        if band and not api.allowed("contacts", "numemployees", band):
            # This account's dropdown lacks the band: one invalid option would refuse
            # the whole contact, so the head count is left out.
            del values["numemployees"]
        body = {"properties": {**values, "hs_lead_status": "NEW"}, "associations": []}
        try:
            created = api.call(api.contacts.create, body)
        except ContactExists as exists:
            return self._update_contact(exists.existing_id, values)
        owner = (created.properties or {}).get("hubspot_owner_id") or lead.owner_id
        return CrmLeadRef(crm=self.name, crm_id=str(created.id), owner_id=owner, created=True)

    def _update_contact(self, crm_id: str, values: dict[str, str]) -> CrmLeadRef:
        api = self._api
        # The email is left alone: HubSpot may have matched it as the contact's
        # secondary address, and writing it would make it the primary one.
        changes = {k: v for k, v in values.items() if k != "email"}
        updated = api.call(api.contacts.update, crm_id, {"properties": changes})
        written = updated.properties or {}
        owner = values.get("hubspot_owner_id")
        if owner is None and "hubspot_owner_id" in written:
            owner = written["hubspot_owner_id"] or None
        elif owner is None:  # the contact keeps its owner: which is it?
            current = api.call(api.contacts.get_by_id, crm_id, properties=["hubspot_owner_id"])
            owner = (current.properties or {}).get("hubspot_owner_id") or None
        return CrmLeadRef(crm=self.name, crm_id=str(updated.id), owner_id=owner, created=False)

    def get_lead(self, crm_id: str) -> CrmLeadData | None:
        api = self._api
        found = api.call(
            api.contacts.get_by_id, crm_id, properties=list(CONTACT_PROPERTIES), tolerate=NOT_FOUND
        )
        return None if found is None else lead_from(found.properties or {})

    def set_status(self, crm_id: str, status: LeadStatus, reason: str | None) -> None:
        names = ["hs_lead_status", "leadflow_status_reason", "lifecyclestage"]
        current = self._api.contact(crm_id, names).properties or {}
        converted = current.get("lifecyclestage") == CONVERTED_STAGE
        if converted:
            if status is LeadStatus.converted:
                return
            raise InvalidRecord(f"contact {crm_id} is converted: its status cannot change")
        if status is LeadStatus.converted:
            raise InvalidRecord(f"contact {crm_id}: a lead is converted by conversion only")
        wanted = {"hs_lead_status": LEAD_STATUS[status], "leadflow_status_reason": reason or ""}
        if all((current.get(k) or "") == v for k, v in wanted.items()):
            return
        self._api.ensure_properties("contacts")
        self._api.call(self._api.contacts.update, crm_id, {"properties": wanted})

    # -- accounts ----------------------------------------------------------------------

    def find_account(
        self,
        *,
        email_domain: str | None,
        website_domain: str | None,
        company: str | None,
        free_mail: bool,
    ) -> AccountMatch | None:
        domains = {d.casefold() for d in (website_domain, None if free_mail else email_domain) if d}
        candidates: dict[str, Account] = {}
        if domains:
            values = sorted(domains | {f"www.{d}" for d in domains})
            self._companies(
                {"propertyName": "domain", "operator": "IN", "values": values}, candidates
            )
            found = best_match(
                candidates.values(),
                email_domain=email_domain.casefold() if email_domain else None,
                website_domain=website_domain.casefold() if website_domain else None,
                company=None,
                free_mail=free_mail,
            )
            if found is not None:
                return found
        words = sorted(normalize_company(company or "").split(), key=len, reverse=True)
        if words:
            token = {"propertyName": "name", "operator": "CONTAINS_TOKEN", "value": words[0]}
            self._companies(token, candidates)
        return best_match(
            candidates.values(),
            email_domain=email_domain.casefold() if email_domain else None,
            website_domain=website_domain.casefold() if website_domain else None,
            company=company,
            free_mail=free_mail,
        )

    def _companies(self, condition: dict[str, Any], into: dict[str, Account]) -> None:
        request = {
            "filterGroups": [{"filters": [condition]}],
            "properties": ["name", "domain", "hubspot_owner_id"],
            "limit": 100,
        }
        page = self._api.call(self._api.company_search.do_search, request)
        for company in page.results or []:
            values = company.properties or {}
            into[str(company.id)] = Account(
                crm_id=str(company.id),
                name=values.get("name") or values.get("domain") or str(company.id),
                domain=web_domain(values.get("domain")),
                owner_id=values.get("hubspot_owner_id") or None,
            )

    # -- nurture lists -----------------------------------------------------------------

    def set_nurture(self, crm_id: str, member: bool, list_name: str) -> None:
        api = self._api
        list_id = self._list_id(list_name)
        change = api.memberships.add if member else api.memberships.remove
        answer = api.call(change, list_id, [crm_id], tolerate=NOT_FOUND)
        if answer is None:  # the list was deleted since we looked it up
            with self._lists_lock:
                self._lists.pop(list_name, None)
            raise InvalidRecord(f"HubSpot has no contact list named {list_name!r}")
        if crm_id in (answer.record_ids_missing or []):
            # Not a member, or no such contact: only the second is an error.
            self._api.contact(crm_id, ["email"])

    def _list_id(self, list_name: str) -> str:
        with self._lists_lock:
            if list_name in self._lists:
                return self._lists[list_name]
        api = self._api
        found = api.call(api.lists.get_by_name, list_name, CONTACT_TYPE_ID, tolerate=NOT_FOUND)
        if found is None:
            raise InvalidRecord(
                f"HubSpot has no contact list named {list_name!r}: create a static list of "
                "contacts with that name"
            )
        if found.list.processing_type == "DYNAMIC":
            raise InvalidRecord(
                f"HubSpot list {list_name!r} is an active list (HubSpot decides its members): "
                "make it a static list"
            )
        with self._lists_lock:
            self._lists[list_name] = str(found.list.list_id)
        return str(found.list.list_id)

    # -- tasks -------------------------------------------------------------------------

    def create_task(self, task: CrmTask, idempotency_key: str) -> str:  # noqa: ARG002
        # Idempotent by content rather than by key: a task of this contact with the same
        # subject and due date is the one an earlier attempt created (its answer lost).
        api = self._api
        with self._stripe(task.crm_id):
            existing = self._same_task(task)
            if existing is not None:
                return existing
            values = {
                "hs_task_subject": task.subject,
                "hs_task_body": task.description or "",
                "hs_timestamp": noon_utc(task.due),
                "hs_task_status": "NOT_STARTED",
                "hs_task_type": TASK_TYPE,
            }
            if task.owner_id:
                values["hubspot_owner_id"] = task.owner_id
            body = {"properties": values, "associations": [link(task.crm_id, TASK_TO_CONTACT)]}
            return str(api.call(api.tasks.create, body).id)

    def _same_task(self, task: CrmTask) -> str | None:
        api = self._api
        task_ids = api.linked("contacts", task.crm_id, "tasks")
        for start in range(0, len(task_ids), 100):
            request = {
                "inputs": [{"id": i} for i in task_ids[start : start + 100]],
                "properties": ["hs_task_subject", "hs_timestamp"],
                "propertiesWithHistory": [],
            }
            for found in api.call(api.task_batch.read, request).results or []:
                values = found.properties or {}
                if (
                    values.get("hs_task_subject") == task.subject
                    and utc_day(values.get("hs_timestamp")) == task.due
                ):
                    return str(found.id)
        return None

    # -- conversion --------------------------------------------------------------------

    def convert_lead(self, crm_id: str, deal: DealWon, idempotency_key: str) -> Conversion:  # noqa: ARG002
        # A contact converts once (its Leadflow deal marks it): no key needed.
        if not (len(deal.currency) == 3 and deal.currency.isalpha()):
            raise InvalidRecord(f"{deal.currency!r} is not an ISO 4217 currency code")
        if not deal.amount.is_finite() or deal.amount < 0:
            raise InvalidRecord(f"invalid deal amount {deal.amount}")
        with self._stripe(crm_id):
            return self._converter.convert(crm_id, deal)

    # -- owners, changes, checks -------------------------------------------------------

    def list_owners(self) -> list[CrmOwner]:
        api = self._api
        owners: list[CrmOwner] = []
        for archived in (False, True):
            after: str | None = None
            while True:
                page = api.call(api.owners.get_page, limit=100, after=after, archived=archived)
                for owner in page.results or []:
                    if owner.email:
                        name = " ".join(n for n in (owner.first_name, owner.last_name) if n)
                        owners.append(
                            CrmOwner(
                                id=str(owner.id),
                                email=owner.email,
                                name=name or None,
                                active=not archived,
                            )
                        )
                after = page.paging.next.after if page.paging and page.paging.next else None
                if not after:
                    break
        return owners

    def changes_since(self, mark: str | None) -> ChangePage:
        return self._changes.changes_since(mark)

    def interpret(self, notice: CrmNotice) -> list[CrmChange]:
        return self._changes.interpret(notice)

    def check(self, nurture_list: str | None) -> list[CheckItem]:
        return run_checks(
            self.list_owners,
            self._api,
            nurture_list,
            pipeline=self._pipeline,
            stages=(self._won_stage, self._lost_stage),
        )

    def ping(self) -> None:
        self._api.call(self._api.contacts.get_page, limit=1)
