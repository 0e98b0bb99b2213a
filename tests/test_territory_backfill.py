"""Migration 0015's backfill: leads routed before ``leads.territory`` was kept get the
territory that their routing version gives their routing facts."""

from __future__ import annotations

from typing import Any

from domain.config_checks import validated
from store import config as config_store
from store.db import Database
from store.models import Lead, utcnow
from store.territory_backfill import backfill_territories

CONFIG: dict[str, Any] = {
    "reps": [{"email": "a@example.com", "name": "A"}],
    "territories": [
        {"name": "DACH", "countries": ["DE", "AT", "CH"]},
        {"name": "Nordics", "countries": ["SE", "NO", "DK", "FI"]},
    ],
    "rules": [],
    "fallback": {"rep": "a@example.com"},
}


def _lead(lead_id: str, routing: Any, territory: str | None = None) -> Lead:
    return Lead(
        id=lead_id,
        workflow_id=f"lead-{lead_id}",
        email=f"{lead_id}@example.com",
        stage="assigned",
        received_at=utcnow(),
        routing=routing,
        territory=territory,
    )


def _routed(country: str, version: int | None) -> dict[str, Any]:
    """What the assignment stores: the facts (country as its ISO code) and the decision."""
    return {"facts": {"country": country.upper()}, "decision": {"config_version": version}}


def test_routed_leads_without_a_territory_get_their_versions_one(db: Database) -> None:
    with db.session() as session:
        config_store.save_draft(session, validated(CONFIG), "test", None)
        version = config_store.publish(session, "test")
        session.add_all(
            [
                _lead("de", _routed("de", version)),
                _lead("se", _routed("se", version)),
                _lead("us", _routed("us", version)),  # in no territory
                _lead("gone", _routed("de", version + 5)),  # its version does not exist
                _lead("kept", _routed("de", version), territory="Elsewhere"),
                _lead("unrouted", None),
                _lead("odd", {"facts": "?", "decision": {"config_version": True}}),
            ]
        )
    with db.session() as session:
        assert backfill_territories(session) == 2
    with db.read() as session:
        got = {lead.id: lead.territory for lead in session.query(Lead)}
    assert got == {
        "de": "DACH",
        "se": "Nordics",
        "us": None,
        "gone": None,
        "kept": "Elsewhere",
        "unrouted": None,
        "odd": None,
    }
    with db.session() as session:
        assert backfill_territories(session) == 0  # nothing left to do
