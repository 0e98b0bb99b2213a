"""A lead submitted over HTTP is scored, routed, owned in the CRM and its owner notified."""

from __future__ import annotations

from sqlalchemy import select

from store.models import Notification
from store.models_crm import CrmRecord
from tests.conftest import Stack, unique_email


async def test_lead_is_routed_owned_in_crm_and_owner_notified(stack: Stack) -> None:
    email = unique_email()
    response = await stack.submit(
        email=f"  {email.upper()} ",
        first_name="Jane",
        company="Acme",
        title="VP Sales",
        company_size=300,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status_url"].endswith(f"/leads/{body['lead_id']}")

    lead = await stack.wait_for(body["lead_id"])
    assert lead["owner"] is not None
    assert lead["score"] is not None and lead["score"] > 0
    types = [e["type"] for e in lead["events"]]
    assert types[:5] == ["captured", "scored", "assigned", "crm_synced", "owner_notified"]

    with stack.db.session() as session:
        record = session.scalars(select(CrmRecord).where(CrmRecord.email == email)).one()
        notes = session.scalars(
            select(Notification).where(Notification.lead_id == body["lead_id"])
        ).all()
        assert record.owner_id is not None
        assert lead["crm_id"] == record.id
        assert len(notes) == 1
        assert notes[0].rep is not None and notes[0].rep.email == lead["owner"]["email"]
