"""The CRM connectors' tables: the embedded CRM's records, accounts, tasks and
conversions (``connectors.local``), the CRM users mapped to reps, and what CRM webhooks and
polls brought in (``store.crm_users``). One Alembic revision per change of this file, as
for ``store.models``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, utcnow


class CrmRecord(Base):
    """A lead record of the embedded local CRM. ``status`` is a ``domain.crm.LeadStatus``
    value; ``nurture_lists`` names the nurture lists the lead is on."""

    __tablename__ = "crm_records"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    owner_id: Mapped[str | None] = mapped_column(String(100))
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    leadflow_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default="open", server_default="open")
    status_reason: Mapped[str | None] = mapped_column(Text)
    nurture_lists: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CrmAccount(Base):
    """An account (company) of the embedded local CRM, with its owner's CRM id."""

    __tablename__ = "crm_accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    domain: Mapped[str | None] = mapped_column(String(253), index=True)
    owner_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrmTaskRow(Base):
    """A follow-up task on a lead of the embedded local CRM; ``idempotency_key`` makes a
    retried create leave one task."""

    __tablename__ = "crm_tasks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    crm_lead_id: Mapped[str] = mapped_column(ForeignKey("crm_records.id"), index=True)
    owner_id: Mapped[str | None] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(255))
    due: Mapped[date] = mapped_column(Date)
    description: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrmConversion(Base):
    """A won lead of the embedded local CRM converted into an account, a contact and a
    deal. One per lead (``crm_lead_id`` is unique), so a second conversion cannot happen.
    ``amount`` is the deal's decimal amount as text (exact on every backend)."""

    __tablename__ = "crm_conversions"

    id: Mapped[int] = mapped_column(primary_key=True)
    crm_lead_id: Mapped[str] = mapped_column(ForeignKey("crm_records.id"), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("crm_accounts.id"))
    contact_id: Mapped[str] = mapped_column(String(40))
    deal_id: Mapped[str] = mapped_column(String(40))
    deal_name: Mapped[str] = mapped_column(String(255))
    amount: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    close_date: Mapped[date] = mapped_column(Date)
    owner_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrmUser(Base):
    """A user of the configured CRM who can own records, as ``leadflow reps sync`` last
    saw it; reps are linked to them by email (``store.crm_users``)."""

    __tablename__ = "crm_users"
    __table_args__ = (Index("ix_crm_users_crm_email", "crm", "email"),)

    crm: Mapped[str] = mapped_column(String(20), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrmInbound(Base):
    """A delivery from a CRM webhook or a Slack event (``source`` says which), kept by its
    id so that a delivery repeated by the sender is handled once."""

    __tablename__ = "crm_inbound"

    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrmPollMark(Base):
    """Where polling the CRM for changes stopped: the connector's high-water mark."""

    __tablename__ = "crm_poll_marks"

    crm: Mapped[str] = mapped_column(String(20), primary_key=True)
    mark: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CrmNoticeFailure(Base):
    """A webhook's notice that could not be brought into the lifecycle for good (the CRM
    refused to say what changed, or the change could not be sent to its lead): what it
    said, which step failed and why, for the needs-attention page and its Retry. One row
    per failed workflow and step; ``retried_at`` set once somebody ran it again."""

    __tablename__ = "crm_notice_failures"
    __table_args__ = (
        UniqueConstraint("workflow_id", "step", name="uq_crm_notice_failures_step"),
        Index("ix_crm_notice_failures_open", "retried_at", "failed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(200))
    step: Mapped[str] = mapped_column(String(40))
    crm: Mapped[str] = mapped_column(String(20))
    notice: Mapped[dict[str, Any]] = mapped_column(JSON)
    error_type: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    retried_at: Mapped[datetime | None] = mapped_column(default=None)
    retried_by: Mapped[str | None] = mapped_column(String(320), default=None)
    retry_workflow_id: Mapped[str | None] = mapped_column(String(200), default=None)
