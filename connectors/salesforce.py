"""Salesforce behind the ``CRM`` protocol, through simple-salesforce (REST API) and two
SOAP partner API calls (``login`` and ``convertLead``).

- A lead is a Salesforce ``Lead``, found again by its email (a non-converted Lead with
  that ``Email``; SOQL's ``=`` ignores case), so a retried write updates the record the
  first try created. Score, Leadflow id and status reason go to the custom fields
  ``Leadflow_Score__c``, ``Leadflow_Id__c`` and ``Leadflow_Status_Reason__c``.
- Every Lead write carries ``Sforce-Auto-Assign: FALSE``: REST writes otherwise run the
  org's active assignment rule, on updates too, replacing the owner Leadflow chose.
- Nurture lists are Campaigns (membership: ``CampaignMember``); tasks are ``Task``s;
  a conversion is ``convertLead`` (``salesforce_convert``); changes made in Salesforce
  come back through ``salesforce_changes``; ``leadflow crm check`` is
  ``salesforce_check``.
- Sessions, logins and the one re-login after an expired session are
  ``salesforce_auth``; the error mapping is ``salesforce_errors``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from connectors.base import AuthError, InvalidRecord
from connectors.salesforce_access import AUTO_ASSIGN_OFF, Record, SalesforceAccess
from connectors.salesforce_auth import SalesforceConnection, choose_credentials
from connectors.salesforce_changes import ChangeReader
from connectors.salesforce_check import run_checks
from connectors.salesforce_convert import LeadConverter, website_domain
from connectors.salesforce_leads import (
    CUSTOM_FIELDS,
    READ_FIELDS,
    REASON_FIELD,
    lead_fields,
    lead_from_record,
    required_defaults,
    text_value,
)
from connectors.salesforce_soql import (
    date_literal,
    is_id,
    like_containing,
    quote,
    quote_id,
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

# Leadflow's lead statuses as values of the Lead ``Status`` picklist. The first two and
# the last are in every org's default picklist; "Nurturing" and "Qualified" are added by
# the admin (``leadflow crm check`` says which are missing). ``converted`` has no entry:
# only ``convertLead`` converts, setting the org's converted status.
LEAD_STATUS_VALUES: dict[LeadStatus, str] = {
    LeadStatus.open: "Open - Not Contacted",
    LeadStatus.working: "Working - Contacted",
    LeadStatus.nurturing: "Nurturing",
    LeadStatus.qualified: "Qualified",
    LeadStatus.disqualified: "Closed - Not Converted",
}
TASK_STATUS = "Not Started"
log = logging.getLogger("leadflow.crm")


def significant_word(company: str) -> str | None:
    """The longest word of the normalised company name (legal forms dropped), for a
    ``LIKE`` search whose candidates ``best_match`` then judges."""
    words = [w for w in normalize_company(company).split() if len(w) >= 3]
    return max(words, key=len) if words else None


class SalesforceCRM:
    name = "salesforce"

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        security_token: str | None = None,
        consumer_key: str | None = None,
        private_key: str | None = None,
        private_key_path: Path | str | None = None,
        login_url: str = "https://login.salesforce.com",
        instance_url: str | None = None,
        access_token: str | None = None,
        api_version: str = "62.0",
        timeout_s: float = 15.0,
    ) -> None:
        """Configured for JWT bearer (``consumer_key``, ``private_key[_path]``,
        ``username``), username-password (``username``, ``password``,
        ``security_token``) or a fixed token (``instance_url``, ``access_token``).
        Nothing is called until the first operation."""
        if private_key is None and private_key_path is not None:
            try:
                private_key = Path(private_key_path).read_text()
            except OSError as err:
                raise AuthError(
                    f"LEADFLOW_SALESFORCE_PRIVATE_KEY_PATH: cannot read {private_key_path}: "
                    f"{err.strerror}"
                ) from None
        creds = choose_credentials(
            consumer_key=consumer_key,
            private_key=private_key,
            username=username,
            password=password,
            security_token=security_token,
            login_url=login_url,
            instance_url=instance_url,
            access_token=access_token,
        )
        self._conn = SalesforceConnection(creds, api_version=api_version, timeout_s=timeout_s)
        self._access = SalesforceAccess(self._conn)
        self._changes = ChangeReader(self._access)
        self._converter = LeadConverter(self._access, self.find_account)

    @classmethod
    def from_settings(cls, settings: Settings) -> SalesforceCRM:
        def secret(value: Any) -> str | None:
            return None if value is None else str(value.get_secret_value())

        return cls(
            username=settings.salesforce_username,
            password=secret(settings.salesforce_password),
            security_token=secret(settings.salesforce_security_token),
            consumer_key=settings.salesforce_consumer_key,
            private_key_path=settings.salesforce_private_key_path,
            login_url=settings.salesforce_login_url,
            instance_url=settings.salesforce_instance_url,
            access_token=secret(settings.salesforce_access_token),
            api_version=settings.salesforce_api_version,
            timeout_s=settings.crm_timeout_s,
        )

    @property
    def logins(self) -> int:
        """Sessions opened so far (the first login and each re-login)."""
        return self._conn.logins

    def close(self) -> None:
        """Release the HTTP connections."""
        self._conn.close()

    # -- leads ---------------------------------------------------------------------------

    def upsert_lead(self, lead: CrmLeadData, idempotency_key: str) -> CrmLeadRef:  # noqa: ARG002
        # The email is the natural key (looked up before writing), so the idempotency
        # key is not needed: a retry after a lost answer finds the first try's Lead.
        email = lead.email.strip().lower()
        if "@" not in email:
            raise InvalidRecord(f"invalid email {lead.email!r}")
        found = self._access.query(
            "find the lead by email",
            f"SELECT Id, OwnerId FROM Lead WHERE Email = {quote(email)} AND IsConverted = false "
            "ORDER BY CreatedDate, Id LIMIT 1",
        )
        fields = self._writable(lead_fields(lead))
        if found:
            crm_id = str(found[0]["Id"])
            self._access.update("Lead", crm_id, fields, "update the lead", AUTO_ASSIGN_OFF)
            owner = lead.owner_id or found[0].get("OwnerId")
            return CrmLeadRef(crm=self.name, crm_id=crm_id, owner_id=owner, created=False)
        new = {"Email": email, **required_defaults(email), **fields}
        crm_id = self._access.create("Lead", new, "create the lead", AUTO_ASSIGN_OFF)
        owner = lead.owner_id
        if owner is None:  # Salesforce made the integration user (or a trigger) the owner
            record = self._access.get("Lead", crm_id, ["OwnerId"], "read the lead's owner")
            owner = record.get("OwnerId") if record else None
        return CrmLeadRef(crm=self.name, crm_id=crm_id, owner_id=owner, created=True)

    def _writable(self, fields: Record) -> Record:
        """``fields`` without the custom fields the org lacks: a lead still reaches the
        CRM in an org where they are not set up yet (``leadflow crm check`` says so)."""
        custom = [name for name in fields if name.endswith("__c")]
        if not custom:
            return fields
        present = self._access.field_names("Lead")
        missing = [name for name in custom if name not in present]
        if not missing:
            return fields
        log.warning("Salesforce Lead lacks %s: not written", ", ".join(missing))
        return {name: value for name, value in fields.items() if name not in missing}

    def get_lead(self, crm_id: str) -> CrmLeadData | None:
        if not is_id(crm_id):
            return None
        present = self._access.field_names("Lead")
        fields = [f for f in READ_FIELDS if not f.endswith("__c") or f in present]
        record = self._access.get("Lead", crm_id, fields, "read the lead")
        return None if record is None else lead_from_record(record)

    def _existing_lead(self, crm_id: str, fields: list[str]) -> Record:
        quote_id(crm_id, "lead")
        record = self._access.get("Lead", crm_id, fields, "read the lead")
        if record is None:
            raise InvalidRecord(f"Salesforce has no lead {crm_id!r}")
        return record

    def set_status(self, crm_id: str, status: LeadStatus, reason: str | None) -> None:
        record = self._existing_lead(crm_id, ["Id", "Status", "IsConverted", REASON_FIELD])
        if record.get("IsConverted"):
            if status is LeadStatus.converted:
                return
            raise InvalidRecord(f"lead {crm_id} is converted: its status cannot change")
        if status is LeadStatus.converted:
            raise InvalidRecord(f"lead {crm_id}: a lead is converted by conversion only")
        value, why = LEAD_STATUS_VALUES[status], text_value(REASON_FIELD, reason)
        if record.get("Status") == value and (record.get(REASON_FIELD) or None) == why:
            return
        self._access.update(
            "Lead",
            crm_id,
            self._writable({"Status": value, REASON_FIELD: why}),
            "set the lead's status",
            AUTO_ASSIGN_OFF,
        )

    # -- accounts ------------------------------------------------------------------------

    def _accounts(self, where: str) -> list[Account]:
        records = self._access.query(
            "find accounts",
            f"SELECT Id, Name, Website, OwnerId FROM Account WHERE {where} "
            "ORDER BY CreatedDate, Id LIMIT 200",
        )
        return [
            Account(
                crm_id=str(r["Id"]),
                name=str(r.get("Name") or ""),
                domain=website_domain(r.get("Website")),
                owner_id=r.get("OwnerId"),
            )
            for r in records
        ]

    def find_account(
        self,
        *,
        email_domain: str | None,
        website_domain: str | None,
        company: str | None,
        free_mail: bool,
    ) -> AccountMatch | None:
        email_domain = (email_domain or "").strip().casefold() or None
        website_domain = (website_domain or "").strip().casefold() or None
        domains = [d for d in (None if free_mail else email_domain, website_domain) if d]
        if domains:
            where = " OR ".join(
                f"Website LIKE {like_containing(d)}" for d in dict.fromkeys(domains)
            )
            match = best_match(
                # LIKE finds "acme.com.evil.example" too: only the exact host counts.
                [a for a in self._accounts(where) if a.domain in domains],
                email_domain=email_domain,
                website_domain=website_domain,
                company=None,
                free_mail=free_mail,
            )
            if match is not None:
                return match
        name = (company or "").strip()
        if not name:
            return None
        where = f"Name = {quote(name)}"
        word = significant_word(name)
        if word:
            where += f" OR Name LIKE {like_containing(word)}"
        return best_match(
            self._accounts(where),
            email_domain=None,
            website_domain=None,
            company=name,
            free_mail=free_mail,
        )

    def record_url(self, crm_id: str) -> str | None:
        """The Lead's page in Lightning Experience, on the org's own domain."""
        client = self._conn.current
        base = client.session.instance_url if client is not None else None
        base = base or getattr(self._conn.creds, "instance_url", None)
        return f"{base}/lightning/r/Lead/{crm_id}/view" if base else None

    # -- nurture, tasks, conversion ------------------------------------------------------

    def set_nurture(self, crm_id: str, member: bool, list_name: str) -> None:
        name = list_name.strip()
        if not name:
            raise InvalidRecord("a nurture list needs a name")
        campaigns = self._access.query(
            "find the nurture campaign",
            f"SELECT Id FROM Campaign WHERE Name = {quote(name)} ORDER BY CreatedDate, Id LIMIT 1",
        )
        if not campaigns and not member:
            # Not on a list that does not exist: already what was asked.
            self._existing_lead(crm_id, ["Id"])
            return
        if not campaigns:
            raise InvalidRecord(
                f"Salesforce has no campaign named {name!r}: create it, or change the "
                "nurture list's name in the configuration"
            )
        self._existing_lead(crm_id, ["Id"])
        campaign_id = str(campaigns[0]["Id"])
        members = self._access.query(
            "find the campaign membership",
            f"SELECT Id FROM CampaignMember WHERE CampaignId = {quote_id(campaign_id)} "
            f"AND LeadId = {quote_id(crm_id)}",
        )
        if not member:
            for found in members:
                self._access.delete("CampaignMember", str(found["Id"]), "leave the campaign")
            return
        if members:
            return
        try:
            self._access.create(
                "CampaignMember",
                {"CampaignId": campaign_id, "LeadId": crm_id},
                "join the campaign",
            )
        except InvalidRecord as err:
            # A concurrent call added the lead first: it is a member, which was the aim.
            if "DUPLICATE_VALUE" not in str(err):
                raise

    def create_task(self, task: CrmTask, idempotency_key: str) -> str:  # noqa: ARG002
        # Salesforce cannot filter on a task's Description (a long text), where the key
        # could have been kept: the lead, subject and due date identify the task instead,
        # looked up before creating, so a retry after a lost answer finds the first one.
        subject = text_value("Subject", task.subject)
        if subject is None:
            raise InvalidRecord("a task needs a subject")
        found = self._access.query(
            "find the task",
            f"SELECT Id FROM Task WHERE WhoId = {quote_id(task.crm_id, 'lead')} "
            f"AND Subject = {quote(subject)} AND ActivityDate = {date_literal(task.due)} "
            "ORDER BY CreatedDate, Id LIMIT 1",
        )
        if found:
            return str(found[0]["Id"])
        fields: Record = {
            "WhoId": task.crm_id,
            "Subject": subject,
            "ActivityDate": task.due.isoformat(),
            "Status": TASK_STATUS,
        }
        if task.owner_id:
            fields["OwnerId"] = task.owner_id
        if task.description:
            fields["Description"] = text_value("Description", task.description)
        return self._access.create("Task", fields, "create the task")

    def convert_lead(self, crm_id: str, deal: DealWon, idempotency_key: str) -> Conversion:  # noqa: ARG002
        # A lead converts once: the lead itself is the key (see salesforce_convert).
        return self._converter.convert(crm_id, deal)

    # -- users, changes, checks ----------------------------------------------------------

    def list_owners(self) -> list[CrmOwner]:
        records = self._access.query(
            "list the users", "SELECT Id, Email, Name, IsActive FROM User ORDER BY Id"
        )
        return [
            CrmOwner(
                id=str(r["Id"]),
                email=str(r["Email"]),
                name=r.get("Name"),
                active=bool(r.get("IsActive")),
            )
            for r in records
            if r.get("Email")
        ]

    def changes_since(self, mark: str | None) -> ChangePage:
        return self._changes.changes_since(mark)

    def interpret(self, notice: CrmNotice) -> list[CrmChange]:
        return self._changes.interpret(notice)

    def check(self, nurture_list: str | None) -> list[CheckItem]:
        return run_checks(
            self._access,
            self._conn.creds.method,
            nurture_list,
            converter=self._converter,
            custom_fields=CUSTOM_FIELDS,
            statuses=list(LEAD_STATUS_VALUES.values()),
        )

    def ping(self) -> None:
        self._access.ping()
