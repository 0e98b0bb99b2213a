"""The embedded local CRM: lead records in the app database, for development and demos.
It behaves like a CRM that dedupes leads by email and converts a lead once, into an
account, a contact and a deal; a converted lead's status no longer changes (as in
Salesforce)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.base import InvalidRecord
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
from domain.rules import FREEMAIL_DOMAINS
from store.db import Database
from store.models import Rep, utcnow
from store.models_crm import CrmAccount, CrmConversion, CrmRecord, CrmTaskRow

# Accounts of the demo, so that the demo configuration's account-owner rule has owners to
# find: (name, domain, owner's CRM id as in config/demo.yaml).
DEMO_ACCOUNTS = [
    ("Globex Corporation", "globex.example", "local-owner-2"),
    ("Initech", "initech.example", "local-owner-3"),
]


class LocalCRM:
    name = "local"

    def __init__(self, db: Database) -> None:
        self._db = db

    def upsert_lead(self, lead: CrmLeadData, idempotency_key: str) -> CrmLeadRef:  # noqa: ARG002
        # The email is the natural key here, so the idempotency key is not needed.
        return self._upsert(lead, race_retry=True)

    def _upsert(self, lead: CrmLeadData, *, race_retry: bool) -> CrmLeadRef:
        # Keyed by email, so a retry with the same key (or another key for the same
        # person) updates the one record instead of creating a second.
        if not lead.email or "@" not in lead.email:
            raise InvalidRecord(f"invalid email {lead.email!r}")
        lead = lead.model_copy(update={"email": lead.email.strip().casefold()})
        fields = lead.model_dump(exclude={"email", "owner_id", "leadflow_id"}, exclude_none=True)
        try:
            with self._db.session() as session:
                record = session.scalars(
                    select(CrmRecord).where(CrmRecord.email == lead.email)
                ).first()
                created = record is None
                if record is None:
                    record = CrmRecord(
                        id=f"LC-{uuid.uuid4().hex[:12].upper()}",
                        email=lead.email,
                        leadflow_id=lead.leadflow_id,
                        fields=fields,
                        owner_id=lead.owner_id,
                    )
                    session.add(record)
                else:
                    record.fields = {**record.fields, **fields}
                    if lead.owner_id is not None:
                        record.owner_id = lead.owner_id
                    record.leadflow_id = lead.leadflow_id
                    record.updated_at = utcnow()
                session.flush()
                return CrmLeadRef(
                    crm=self.name, crm_id=record.id, owner_id=record.owner_id, created=created
                )
        except IntegrityError:
            # A concurrent writer created the same email first (PostgreSQL): once more,
            # which now finds and updates that record.
            if not race_retry:
                raise
            return self._upsert(lead, race_retry=False)

    def get_lead(self, crm_id: str) -> CrmLeadData | None:
        with self._db.session() as session:
            record = session.get(CrmRecord, crm_id)
            if record is None:
                return None
            return CrmLeadData(
                email=record.email,
                owner_id=record.owner_id,
                leadflow_id=record.leadflow_id,
                **record.fields,
            )

    def set_status(self, crm_id: str, status: LeadStatus, reason: str | None) -> None:
        with self._db.session() as session:
            record = _record(session, crm_id)
            if record.status == LeadStatus.converted:
                if status is LeadStatus.converted:
                    return
                raise InvalidRecord(f"lead {crm_id} is converted: its status cannot change")
            if status is LeadStatus.converted:
                raise InvalidRecord(f"lead {crm_id}: a lead is converted by conversion only")
            if (record.status, record.status_reason) != (status.value, reason):
                record.status = status.value
                record.status_reason = reason
                record.updated_at = utcnow()

    def set_nurture(self, crm_id: str, member: bool, list_name: str) -> None:
        if not list_name.strip():
            raise InvalidRecord("a nurture list needs a name")
        with self._db.session() as session:
            record = _record(session, crm_id)
            lists = list(record.nurture_lists or [])
            if member == (list_name in lists):
                return
            # A new list object: SQLAlchemy sees a JSON column change by assignment only.
            record.nurture_lists = (
                [*lists, list_name] if member else [n for n in lists if n != list_name]
            )
            record.updated_at = utcnow()

    def create_task(self, task: CrmTask, idempotency_key: str) -> str:
        if not 0 < len(task.subject) <= MAX_SUBJECT:
            raise InvalidRecord(f"a task subject has 1 to {MAX_SUBJECT} characters")
        try:
            with self._db.session() as session:
                existing = _task_id(session, idempotency_key)
                if existing is not None:
                    return existing
                _record(session, task.crm_id)
                row = CrmTaskRow(
                    id=_new_id("LT"),
                    crm_lead_id=task.crm_id,
                    owner_id=task.owner_id,
                    subject=task.subject,
                    due=task.due,
                    description=task.description,
                    idempotency_key=idempotency_key,
                )
                session.add(row)
                session.flush()
                return row.id
        except IntegrityError:
            # A concurrent call with the same key created the task first (PostgreSQL).
            with self._db.read() as session:
                found = _task_id(session, idempotency_key)
            if found is None:
                raise
            return found

    def convert_lead(self, crm_id: str, deal: DealWon, idempotency_key: str) -> Conversion:  # noqa: ARG002
        # A lead converts once (one crm_conversions row per lead), so the lead is the
        # natural key and the idempotency key is not needed.
        if not 0 < len(deal.name) <= MAX_SUBJECT:
            raise InvalidRecord(f"a deal name has 1 to {MAX_SUBJECT} characters")
        if not (len(deal.currency) == 3 and deal.currency.isalpha()):
            raise InvalidRecord(f"{deal.currency!r} is not an ISO 4217 currency code")
        if not deal.amount.is_finite() or deal.amount < 0 or len(str(deal.amount)) > 40:
            raise InvalidRecord(f"invalid deal amount {deal.amount}")
        return self._convert(crm_id, deal, race_retry=True)

    def _convert(self, crm_id: str, deal: DealWon, *, race_retry: bool) -> Conversion:
        try:
            with self._db.session() as session:
                # Locked, so a concurrent conversion of this lead waits here and then
                # finds this one's row.
                record = _record(session, crm_id)
                done = session.scalars(
                    select(CrmConversion).where(CrmConversion.crm_lead_id == crm_id)
                ).first()
                if done is not None:
                    return Conversion(
                        account_id=done.account_id,
                        contact_id=done.contact_id,
                        deal_id=done.deal_id,
                        created=False,
                    )
                owner_id = deal.owner_id or record.owner_id
                row = CrmConversion(
                    crm_lead_id=crm_id,
                    account_id=_account_for(session, record, owner_id).id,
                    contact_id=_new_id("LN"),
                    deal_id=_new_id("LD"),
                    deal_name=deal.name,
                    amount=str(deal.amount),
                    currency=deal.currency.upper(),
                    close_date=deal.close_date,
                    owner_id=owner_id,
                )
                session.add(row)
                record.status = LeadStatus.converted.value
                record.status_reason = None
                record.updated_at = utcnow()
                session.flush()
                return Conversion(
                    account_id=row.account_id,
                    contact_id=row.contact_id,
                    deal_id=row.deal_id,
                    created=True,
                )
        except IntegrityError:
            # A concurrent conversion of this lead, or of another lead of the same new
            # company, committed first: once more, which now finds its row.
            if not race_retry:
                raise
            return self._convert(crm_id, deal, race_retry=False)

    def find_account(
        self,
        *,
        email_domain: str | None,
        website_domain: str | None,
        company: str | None,
        free_mail: bool,
    ) -> AccountMatch | None:
        with self._db.read() as session:
            accounts = [
                Account(crm_id=a.id, name=a.name, domain=a.domain, owner_id=a.owner_id)
                for a in session.scalars(select(CrmAccount))
            ]
        return best_match(
            accounts,
            email_domain=email_domain,
            website_domain=website_domain,
            company=company,
            free_mail=free_mail,
        )

    def upsert_account(self, name: str, domain: str | None, owner_id: str | None) -> Account:
        """Create or update the account of this name (the local CRM's accounts are few
        and named uniquely)."""
        with self._db.session() as session:
            account = session.scalars(select(CrmAccount).where(CrmAccount.name == name)).first()
            if account is None:
                account = CrmAccount(id=f"LA-{uuid.uuid4().hex[:12].upper()}", name=name)
                session.add(account)
            account.domain = domain.casefold() if domain else None
            account.owner_id = owner_id
            session.flush()
            return Account(
                crm_id=account.id, name=account.name, domain=account.domain, owner_id=owner_id
            )

    def ping(self) -> None:
        self._db.ping()

    def record_url(self, crm_id: str) -> str | None:  # noqa: ARG002
        # The embedded CRM has no pages of its own: the lead's page in the admin app is it.
        return None

    def list_owners(self) -> list[CrmOwner]:
        """Every rep is a user of the embedded CRM, under the CRM owner id the
        configuration gives it (its email when none)."""
        with self._db.read() as session:
            reps = list(session.scalars(select(Rep).order_by(Rep.id)))
            return [
                CrmOwner(id=r.crm_owner_id or r.email, email=r.email, name=r.name, active=r.active)
                for r in reps
            ]

    def changes_since(self, mark: str | None) -> ChangePage:  # noqa: ARG002
        # Nobody but Leadflow writes to the embedded CRM: there is never a change to
        # bring back. The mark is the present, as for a first poll.
        return ChangePage(changes=[], mark=utcnow().isoformat())

    def interpret(self, notice: CrmNotice) -> list[CrmChange]:  # noqa: ARG002
        # The embedded CRM sends no webhooks.
        return []

    def check(self, nurture_list: str | None) -> list[CheckItem]:
        try:
            self._db.ping()
        except Exception as err:
            return [CheckItem(name="database", ok=False, detail=f"cannot be reached: {err}")]
        owners = self.list_owners()
        with self._db.read() as session:
            records = session.scalars(select(CrmRecord.id)).all()
        items = [
            CheckItem(
                name="connection",
                ok=True,
                detail="the embedded CRM keeps its records in Leadflow's own database",
            ),
            CheckItem(
                name="owners",
                ok=bool(owners),
                detail=f"{sum(o.active for o in owners)} active reps are its users"
                if owners
                else "no reps yet: publish a configuration with reps",
            ),
            CheckItem(name="records", ok=True, detail=f"{len(records)} lead records"),
        ]
        if nurture_list:
            items.append(
                CheckItem(
                    name="nurture list",
                    ok=True,
                    detail=f"{nurture_list!r}: lists of the embedded CRM exist on first use",
                )
            )
        return items

    def seed_demo_accounts(self) -> int:
        """Create the demo accounts when the CRM has none; how many were created."""
        with self._db.read() as session:
            if session.scalars(select(CrmAccount.id).limit(1)).first() is not None:
                return 0
        for name, domain, owner_id in DEMO_ACCOUNTS:
            self.upsert_account(name, domain, owner_id)
        return len(DEMO_ACCOUNTS)


# Salesforce's limit for a task's subject and an opportunity's name is shorter (255/120);
# ours is the column's.
MAX_SUBJECT = 255


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12].upper()}"


def _record(session: Session, crm_id: str) -> CrmRecord:
    """The lead ``crm_id``, locked until the transaction ends (``FOR UPDATE`` on
    PostgreSQL; SQLite has one writer at a time), so that writes to one lead do not
    overwrite each other; ``InvalidRecord`` when there is none."""
    record = session.get(CrmRecord, crm_id, with_for_update=True)
    if record is None:
        raise InvalidRecord(f"the local CRM has no lead {crm_id!r}")
    return record


def _task_id(session: Session, idempotency_key: str) -> str | None:
    return session.scalars(
        select(CrmTaskRow.id).where(CrmTaskRow.idempotency_key == idempotency_key)
    ).first()


def _account_for(session: Session, record: CrmRecord, owner_id: str | None) -> CrmAccount:
    """The account a converted lead joins: the one named as its company (legal forms and
    case aside), else a new one owned by ``owner_id``, named after the company (or the
    person's email when the lead names no company) with its email domain."""
    company = str(record.fields.get("company") or record.email)[:200]
    wanted = normalize_company(company)
    for account in session.scalars(select(CrmAccount)):
        if normalize_company(account.name) == wanted:
            return account
    email_domain = record.email.rpartition("@")[2].casefold()
    account = CrmAccount(
        id=_new_id("LA"),
        name=company,
        domain=None if email_domain in FREEMAIL_DOMAINS else email_domain,
        owner_id=owner_id,
    )
    session.add(account)
    return account
