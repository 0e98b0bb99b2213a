"""The territory of leads routed before Leadflow kept one (``leads.territory``, a KPI
slice since migration 0012): worked out again from what routing saw.

Each routed lead keeps the facts its rules were tested on and the configuration version
that routed it (``leads.routing``), so its territory is the one that version's
territories give those facts (``domain.routing.Router.territory_of``), exactly what the
assignment would have stored. A lead routed by a version that is gone or no longer reads
(a document of an older schema) keeps none, as does a lead in no territory. Run once by
migration 0015."""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain.routing import Router
from store import config as config_store
from store.models import Lead

log = logging.getLogger("leadflow.store")

_CHUNK = 1_000


def backfill_territories(session: Session) -> int:
    """Set the territory of every routed lead that has none and is in one; how many."""
    routers: dict[int, Router | None] = {}
    rows = session.execute(
        select(Lead.id, Lead.routing).where(Lead.territory.is_(None), Lead.routing.is_not(None))
    ).all()
    found: list[dict[str, Any]] = []
    for lead_id, routing in rows:
        facts, version = _routed_by(routing)
        if facts is None or version is None:
            continue
        if version not in routers:
            routers[version] = _router(session, version)
        router = routers[version]
        territory = router.territory_of(facts) if router is not None else None
        if territory is not None:
            found.append({"id": lead_id, "territory": territory})
    for start in range(0, len(found), _CHUNK):  # ORM bulk update by primary key
        session.execute(update(Lead), found[start : start + _CHUNK])
    return len(found)


def _routed_by(routing: object) -> tuple[dict[str, Any] | None, int | None]:
    """The facts a lead was routed on and the configuration version that routed it."""
    if isinstance(routing, str):
        try:
            routing = json.loads(routing)
        except ValueError:
            return None, None
    if not isinstance(routing, dict):
        return None, None
    facts = routing.get("facts")
    decision = routing.get("decision")
    version = decision.get("config_version") if isinstance(decision, dict) else None
    return (
        facts if isinstance(facts, dict) else None,
        version if isinstance(version, int) and not isinstance(version, bool) else None,
    )


def _router(session: Session, version: int) -> Router | None:
    try:
        return Router.build(config_store.version(session, version), version)
    except Exception as err:  # gone, or a document this code no longer reads
        log.warning("territories of leads routed by version %s not worked out: %s", version, err)
        return None
