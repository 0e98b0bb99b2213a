"""What the activities of the lifecycle after routing share: their collaborators, the
published configuration in force, the CRM's errors as Temporal failures, messages."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from activities.crm_owner import CrmOwners
from activities.errors import to_application_error
from bots.notifier import Message, Notifier
from connectors.base import CRM, ConnectorError
from domain.lead import Owner
from domain.routing import Router
from store import routing as routing_store
from store.db import Database

log = logging.getLogger("leadflow.activities")


class StepActivities:
    """What the lifecycle's activities share: their collaborators (handed in, so tests
    can pass others), the published configuration, the CRM's error mapping, and messages."""

    def __init__(
        self,
        db: Database,
        crm: CRM,
        notifier: Notifier,
        *,
        default_team: str,
        base_url: str,
    ) -> None:
        self._db = db
        self._crm = crm
        self._owners = CrmOwners(db, crm.name)
        self._notifier = notifier
        self._routers = routing_store.RouterCache(default_team)
        self._base_url = base_url

    # -- helpers ---------------------------------------------------------------------

    def _router(self) -> Router:
        with self._db.read() as session:
            return self._routers.current(session)

    def _lead_url(self, lead_id: str) -> str:
        return f"{self._base_url}/admin/leads/{lead_id}"

    @contextmanager
    def _vendor(self) -> Iterator[None]:
        """CRM errors as Temporal failures: retryable ones retry, permanent ones park."""
        try:
            yield
        except ConnectorError as err:
            log.warning("CRM %s: %s", self._crm.name, type(err).__name__)
            raise to_application_error(err, self._crm.name) from None

    def _notify(self, owner: Owner, kind: str, lead_id: str, text: str, key: str, *, b: Any) -> int:
        message = Message(kind=kind, lead_id=lead_id, text=text, blocks=b)
        return self._notifier.notify(owner, message, key)
