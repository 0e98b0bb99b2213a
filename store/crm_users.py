"""What Leadflow keeps about the configured CRM: its users (for linking reps by email),
the changes it delivered (so that a repeated delivery is applied once), and where polling
it for changes stopped."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from domain.crm import CrmOwner
from store.models import Lead, utcnow
from store.models_crm import CrmInbound, CrmPollMark, CrmUser


def save_owners(session: Session, crm: str, owners: list[CrmOwner]) -> None:
    """Replace what is known of ``crm``'s users with ``owners``."""
    session.execute(delete(CrmUser).where(CrmUser.crm == crm))
    seen: set[str] = set()
    now = utcnow()
    for owner in owners:
        if owner.id in seen:
            continue
        seen.add(owner.id)
        session.add(
            CrmUser(
                crm=crm,
                owner_id=owner.id[:100],
                email=owner.email.strip().casefold()[:320],
                name=(owner.name or "")[:200] or None,
                active=owner.active,
                synced_at=now,
            )
        )


def last_synced(session: Session, crm: str) -> datetime | None:
    """When ``crm``'s users were last read (None: never, or it has none)."""
    return session.scalars(select(func.min(CrmUser.synced_at)).where(CrmUser.crm == crm)).first()


def known_owners(session: Session, crm: str) -> list[CrmOwner]:
    rows = session.scalars(select(CrmUser).where(CrmUser.crm == crm).order_by(CrmUser.email))
    return [CrmOwner(id=r.owner_id, email=r.email, name=r.name, active=r.active) for r in rows]


def owner_id_for(session: Session, crm: str, email: str, configured: str | None) -> str | None:
    """The id of the CRM user a rep's records are given to: the configured one when it is
    an active user of ``crm``, else the active user with the rep's email; None when the
    rep is not linked (``domain.crm_links`` decides the same way)."""
    user = linked_user(session, crm, email, configured)
    return user.owner_id if user is not None else None


def linked_user(session: Session, crm: str, email: str, configured: str | None) -> CrmUser | None:
    """The user of ``crm`` a rep is linked to (see ``owner_id_for``)."""
    if configured:
        row = session.get(CrmUser, (crm, configured))
        if row is not None and row.active:
            return row
    return session.scalars(
        select(CrmUser).where(
            CrmUser.crm == crm, CrmUser.email == email.strip().casefold(), CrmUser.active
        )
    ).first()


def lead_for_crm_id(session: Session, crm_id: str) -> str | None:
    """The id of the lead whose CRM record is ``crm_id``."""
    return session.scalars(select(Lead.id).where(Lead.crm_id == crm_id)).first()


# ---------------------------------------------------------------------------- inbound


def seen_inbound(session: Session, source: str, event_id: str) -> bool:
    return session.get(CrmInbound, (source, event_id)) is not None


def record_inbound(session: Session, source: str, event_id: str) -> None:
    if session.get(CrmInbound, (source, event_id)) is None:
        session.add(CrmInbound(source=source, event_id=event_id))


# ---------------------------------------------------------------------------- polling


def poll_mark(session: Session, crm: str) -> str | None:
    row = session.get(CrmPollMark, crm)
    return row.mark if row is not None else None


def save_poll_mark(session: Session, crm: str, mark: str) -> None:
    row = session.get(CrmPollMark, crm)
    if row is None:
        session.add(CrmPollMark(crm=crm, mark=mark))
    else:
        row.mark = mark
