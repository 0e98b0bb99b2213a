"""The running stack on a vendor CRM: the fake served on localhost, the scenario
configuration's reps as its users (linked by email), and the worker and web app using the
real connector over HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client

from activities.crm_inbound import sync_rep_links
from store import reps as rep_store
from store.db import Database
from store.migrate import upgrade
from tests.conftest import Stack, running_stack
from tests.fakes.control import CrmFake
from tests.lifecycle_support import CONFIG, publish

HUBSPOT_SECRET = "hubspot-client-secret-for-tests"
SALESFORCE_PATH_SECRET = "outbound-path-secret-for-tests-0123456789"
SCENARIO_REPS = [
    line.split("email: ")[1].split(",")[0]
    for line in CONFIG.splitlines()
    if line.strip().startswith("- {email:")
]


@dataclass
class VendorStack:
    stack: Stack
    fake: CrmFake
    vendor: str
    users: dict[str, str]  # rep email → CRM owner id

    @property
    def webhook_path(self) -> str:
        if self.vendor == "hubspot":
            return "/webhooks/hubspot"
        return f"/webhooks/salesforce/{SALESFORCE_PATH_SECRET}"


@contextlib.contextmanager
def running_fake(vendor: str) -> Iterator[CrmFake]:
    if vendor == "salesforce":
        from tests.fakes.salesforce_api import running_salesforce

        with running_salesforce(timeout_s=5.0) as sf:
            yield sf
    else:
        from tests.fakes.hubspot_api import running_hubspot

        with running_hubspot() as hs:
            yield hs


def vendor_settings(vendor: str, fake: CrmFake) -> dict[str, Any]:
    if vendor == "hubspot":
        return {"crm_backend": "hubspot", "hubspot_client_secret": HUBSPOT_SECRET}
    org_id = fake.org.org_id  # type: ignore[attr-defined]
    return {
        "crm_backend": "salesforce",
        "salesforce_outbound_secret": SALESFORCE_PATH_SECRET,
        "salesforce_org_id": org_id,
    }


def app_database(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'app.db'}")
    upgrade(database)
    with database.session() as session:
        rep_store.seed_demo(session)
    return database


def _nurture_list(config: dict[str, Any]) -> None:
    # The campaign (Salesforce) or list (HubSpot) the fakes' orgs have.
    config["nurture"]["list_name"] = "Nurture"


@contextlib.asynccontextmanager
async def vendor_stack(
    vendor: str,
    client: Client,
    task_queue: str,
    tmp_path: Path,
    *,
    linked: list[str] | None = None,
    **durations: object,
) -> AsyncIterator[VendorStack]:
    """``linked``: the reps who have a CRM user (default: all of the scenario's)."""
    db = app_database(tmp_path)
    try:
        with running_fake(vendor) as fake:
            users = {
                email: fake.add_user(email, email.split("@")[0].replace(".", " ").title())
                for email in (SCENARIO_REPS if linked is None else linked)
            }
            crm = fake.connector()
            publish(db, _nurture_list, **durations)
            sync_rep_links(db, crm)
            async with running_stack(
                client, db, task_queue, tmp_path, crm=crm, **vendor_settings(vendor, fake)
            ) as stack:
                yield VendorStack(stack, fake, vendor, users)
    finally:
        db.dispose()
