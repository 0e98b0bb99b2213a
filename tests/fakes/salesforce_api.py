"""A fake Salesforce org over HTTP, for tests and for trying ``leadflow dev`` without an
org: ``running_salesforce()`` serves it on a free port and yields ``FakeSalesforce``,
the control object of ``tests/fakes/control.py``'s ``CrmFake`` (seeding, looking,
acting as a rep, injecting faults).

The org (``salesforce_org``) has the integration user ``leadflow@example.com`` (password
``PASSWORD`` + security token ``SECURITY_TOKEN``; connected app ``CONSUMER_KEY`` whose
key is ``private_key_pem()``), a rep ``rita.rep@example.com`` who makes the "human"
changes, a lead queue that the active assignment rule gives every Lead written without
``Sforce-Auto-Assign: FALSE``, the default lead statuses plus "Nurturing" and
"Qualified", the standard opportunity stages, and a campaign "Nurture".

Standalone::

    python -m tests.fakes.salesforce_api --port 8555

prints the settings (instance URL and access token) to point Leadflow at it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Literal

import uvicorn

from connectors.salesforce import SalesforceCRM
from store.reps import DEMO_REPS
from tests.fakes.salesforce_conversion import convert_lead
from tests.fakes.salesforce_gate import Gate
from tests.fakes.salesforce_http import CONSUMER_KEY, PASSWORD, SECURITY_TOKEN, create_app
from tests.fakes.salesforce_org import INTEGRATION_USERNAME, SalesforceOrg
from tests.fakes.salesforce_schema import normal_id
from tests.fakes.server import serve

API_VERSION = "62.0"
STATUS_OF = {"contacted": "Working - Contacted", "disqualified": "Closed - Not Converted"}

__all__ = ["CONSUMER_KEY", "PASSWORD", "SECURITY_TOKEN", "FakeSalesforce", "running_salesforce"]


class FakeSalesforce:
    """Control of a running fake org (``CrmFake``), plus Salesforce-only levers."""

    def __init__(self, gate: Gate, url: str, *, timeout_s: float = 2.0) -> None:
        self.gate = gate
        self.org = gate.org
        self.url = url
        self.timeout_s = timeout_s
        self._connectors: list[SalesforceCRM] = []

    # -- connectors ------------------------------------------------------------------

    def _keep(self, crm: SalesforceCRM) -> SalesforceCRM:
        self._connectors.append(crm)
        return crm

    def connector(self) -> SalesforceCRM:
        """A connector logging in with username, password and security token."""
        return self._keep(
            SalesforceCRM(
                username=INTEGRATION_USERNAME,
                password=PASSWORD,
                security_token=SECURITY_TOKEN,
                login_url=self.url,
                api_version=API_VERSION,
                timeout_s=self.timeout_s,
            )
        )

    def token_connector(self, access_token: str | None = None) -> SalesforceCRM:
        """A connector with a fixed access token (by default the fake's own)."""
        return self._keep(
            SalesforceCRM(
                instance_url=self.url,
                access_token=access_token or self.gate.access_token,
                api_version=API_VERSION,
                timeout_s=self.timeout_s,
            )
        )

    def jwt_connector(self) -> SalesforceCRM:
        """A connector using the JWT bearer flow with the connected app's key."""
        return self._keep(
            SalesforceCRM(
                consumer_key=CONSUMER_KEY,
                private_key=self.gate.private_key_pem(),
                username=INTEGRATION_USERNAME,
                login_url=self.url,
                api_version=API_VERSION,
                timeout_s=self.timeout_s,
            )
        )

    def close(self) -> None:
        for crm in self._connectors:
            crm.close()

    # -- seeding ---------------------------------------------------------------------

    def add_user(self, email: str, name: str, *, active: bool = True) -> str:
        return self.org.add_user(email, name, active=active)

    def add_account(self, name: str, domain: str | None, owner_id: str | None) -> str:
        return self.org.insert(
            "Account",
            {
                "Name": name,
                "Website": f"https://www.{domain}/" if domain else None,
                "OwnerId": owner_id or self.org.integration_user_id,
            },
            self.org.rep_user_id,
        )

    # -- what it holds ---------------------------------------------------------------

    def lead_ids(self, email: str) -> list[str]:
        wanted = email.strip().casefold()
        with self.org.lock:
            return [
                lead_id
                for lead_id, lead in self.org.records["Lead"].items()
                if (lead.get("Email") or "").casefold() == wanted
            ]

    def lead(self, crm_id: str) -> dict[str, object]:
        with self.org.lock:
            return dict(self.org.records["Lead"][normal_id(crm_id)])

    def lead_owner(self, crm_id: str) -> str | None:
        return self.org.value("Lead", crm_id, "OwnerId")  # type: ignore[no-any-return]

    def lead_status(self, crm_id: str) -> str | None:
        return self.org.value("Lead", crm_id, "Status")  # type: ignore[no-any-return]

    def in_nurture(self, crm_id: str, list_name: str) -> bool:
        with self.org.lock:
            campaigns = {
                c["Id"] for c in self.org.records["Campaign"].values() if c["Name"] == list_name
            }
            return any(
                m["CampaignId"] in campaigns and m["LeadId"] == normal_id(crm_id)
                for m in self.org.records["CampaignMember"].values()
            )

    def task_ids(self, crm_id: str) -> list[str]:
        with self.org.lock:
            return [
                t["Id"]
                for t in self.org.records["Task"].values()
                if t["WhoId"] == normal_id(crm_id)
            ]

    def deal_ids(self, crm_id: str) -> list[str]:
        opportunity = self.org.value("Lead", crm_id, "ConvertedOpportunityId")
        return [opportunity] if opportunity else []

    def record(self, sobject: str, record_id: str) -> dict[str, object]:
        with self.org.lock:
            return dict(self.org.records[sobject][normal_id(record_id)])

    # -- a person working in the CRM -------------------------------------------------

    def user_sets_status(self, crm_id: str, kind: Literal["contacted", "disqualified"]) -> None:
        self.org.touch("Lead", normal_id(crm_id), {"Status": STATUS_OF[kind]}, self.org.rep_user_id)

    def user_sets_owner(self, crm_id: str, owner_id: str) -> None:
        self.org.touch("Lead", normal_id(crm_id), {"OwnerId": owner_id}, self.org.rep_user_id)

    def user_closes_deal(self, crm_id: str, *, won: bool, amount: Decimal) -> str:
        rep = self.org.rep_user_id
        with self.org.lock:
            lead = self.org.records["Lead"][normal_id(crm_id)]
            if not lead["IsConverted"]:
                owner = lead["OwnerId"] if str(lead["OwnerId"]).startswith("005") else rep
                convert_lead(
                    self.org,
                    lead["Id"],
                    converted_status="Closed - Converted",
                    owner_id=owner,
                    account_id=None,
                    opportunity_name=f"{lead['Company']} deal",
                    create_opportunity=True,
                    user_id=rep,
                )
            opportunity = lead["ConvertedOpportunityId"]
            if opportunity is None:
                opportunity = self.org.insert(
                    "Opportunity",
                    {"Name": f"{lead['Company']} deal", "AccountId": lead["ConvertedAccountId"]},
                    rep,
                )
            stage = "Closed Won" if won else "Closed Lost"
            self.org.touch(
                "Opportunity",
                opportunity,
                {"StageName": stage, "IsClosed": True, "IsWon": won, "Amount": float(amount)},
                rep,
            )
            return str(opportunity)

    # -- faults and clock ------------------------------------------------------------

    def fail(
        self,
        kind: Literal["429", "5xx", "slow", "expired_session", "validation", "burst"],
        *,
        times: int = 1,
        ratio: float | None = None,
    ) -> None:
        """As ``CrmFake.fail`` ("burst" mixes the concurrent-request limit and 503s):
        "429" is Salesforce's 403 REQUEST_LIMIT_EXCEEDED,
        "5xx" a 503, "expired_session" ends every session (401 INVALID_SESSION_ID),
        "validation" a FIELD_CUSTOM_VALIDATION_EXCEPTION on the next write."""
        self.gate.fail(kind, times, ratio)

    def fail_convert(
        self, kind: Literal["429", "5xx", "slow", "expired_session", "validation"]
    ) -> None:
        """The next SOAP ``convertLead`` call fails this way (REST calls are not affected)."""
        self.gate.fail(kind, 1, None, soap=True)

    def lose_answers(self, times: int = 1) -> None:
        """The next ``times`` writes happen, but their answer is a 503."""
        self.gate.fail("lost", times, None)

    def heal(self) -> None:
        self.gate.heal()

    def calls(self) -> int:
        return self.gate.calls

    @property
    def logins(self) -> int:
        return self.gate.logins

    def expire_sessions(self) -> None:
        self.gate.expire_sessions()

    def freeze_clock(self, moment: datetime | None) -> None:
        """Record changes at ``moment`` (None: the real clock again)."""
        self.org.frozen = moment


@contextmanager
def running_salesforce(
    *, multi_currency: bool = False, timeout_s: float = 2.0
) -> Iterator[FakeSalesforce]:
    """A fake org served on a free localhost port until the block ends."""
    gate = Gate(SalesforceOrg(multi_currency=multi_currency))
    with serve(create_app(gate)) as url:
        fake = FakeSalesforce(gate, url, timeout_s=timeout_s)
        try:
            yield fake
        finally:
            fake.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Salesforce org")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8555)
    parser.add_argument(
        "--users",
        nargs="*",
        default=[email for _, email, _ in DEMO_REPS],
        help="emails of the users to create (default: the demo reps of leadflow dev)",
    )
    args = parser.parse_args(argv)
    gate = Gate(SalesforceOrg())
    for email in args.users:
        gate.org.add_user(email, email.split("@")[0].replace(".", " ").title())
    # The nurture list of config/demo.yaml, so that leadflow dev's demo runs against it.
    gate.org.insert("Campaign", {"Name": "Leadflow nurture", "IsActive": True}, None)
    url = f"http://{args.host}:{args.port}"
    sys.stdout.write(
        f"Fake Salesforce org at {url}\n"
        "Point Leadflow at it with:\n"
        "  LEADFLOW_CRM_BACKEND=salesforce\n"
        f"  LEADFLOW_SALESFORCE_INSTANCE_URL={url}\n"
        f"  LEADFLOW_SALESFORCE_ACCESS_TOKEN={gate.access_token}\n"
        "or, logging in (re-login on expiry):\n"
        f"  LEADFLOW_SALESFORCE_LOGIN_URL={url}\n"
        f"  LEADFLOW_SALESFORCE_USERNAME={INTEGRATION_USERNAME}\n"
        f"  LEADFLOW_SALESFORCE_PASSWORD={PASSWORD}\n"
        f"  LEADFLOW_SALESFORCE_SECURITY_TOKEN={SECURITY_TOKEN}\n"
    )
    sys.stdout.flush()
    uvicorn.run(create_app(gate), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
