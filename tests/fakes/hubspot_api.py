"""An HTTP fake of the HubSpot CRM v3 API that Leadflow's HubSpot connector uses, written
from HubSpot's documentation and driven by hubspot-api-client over real HTTP.

``FakeHubSpot`` is the control object of ``tests/fakes/control.py`` (seeding, looking,
acting as a HubSpot user, faults) and holds the ASGI app; ``running_hubspot()`` serves it
on a free port; ``python -m tests.fakes.hubspot_api --port N`` serves one standalone and
prints the private app token it accepts (for ``LEADFLOW_HUBSPOT_BASE_URL``).

Faults: ``429`` (variants ``retry_after``: ``Retry-After`` and the rate-limit headers;
``headers_only``: ``X-HubSpot-RateLimit-*`` only), ``5xx`` (``before``: 503, nothing
done; ``after``: the next write is applied, then answered 504), ``slow`` (answers after
the connector's timeout), ``expired_session`` (401 until ``heal``), ``validation`` (400
VALIDATION_ERROR for the next writes; reads pass)."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route as StarletteRoute

from connectors.hubspot import HubSpotCRM
from store.reps import DEMO_REPS
from tests.fakes.hubspot_routes import match
from tests.fakes.hubspot_schema import HubSpotError, invalid, validation_error
from tests.fakes.hubspot_store import Store
from tests.fakes.server import serve

FaultKind = Literal["429", "5xx", "slow", "expired_session", "validation", "burst"]
ALL_SCOPES = frozenset(
    {
        *(
            f"crm.objects.{k}.{a}"
            for k in ("contacts", "companies", "deals")
            for a in ("read", "write")
        ),
        *(
            f"crm.schemas.{k}.{a}"
            for k in ("contacts", "companies", "deals", "tasks")
            for a in ("read", "write")
        ),
        "crm.objects.owners.read",
        "crm.lists.read",
        "crm.lists.write",
    }
)
# The variants of a kind; the first is the default. In ratio mode a 5xx is either, a 429
# carries Retry-After (the headers-only one waits a whole window: ask for it by name).
VARIANTS = {"429": ("retry_after", "headers_only"), "5xx": ("before", "after")}
RATIO_VARIANTS = {"429": ("retry_after",), "5xx": ("before", "after")}


@dataclass
class Faults:
    kind: FaultKind | None = None
    remaining: int = 0
    ratio: float | None = None
    variant: str | None = None
    where: str | None = None  # only calls to paths containing this
    expired: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(20240501))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, write: bool, path: str) -> tuple[str, str] | None:
        """The fault this call suffers, if any: (kind, variant)."""
        with self.lock:
            writes_only = self.kind == "validation" or self.variant == "after"
            if self.kind is None or (writes_only and not write):
                return None
            if self.where is not None and self.where not in path:
                return None
            if self.ratio is not None:
                if self.rng.random() >= self.ratio:
                    return None
                kind: str = self.kind
                if kind == "burst":  # a 429 or a 5xx, half each
                    kind = self.rng.choice(("429", "5xx"))
                choices = RATIO_VARIANTS.get(kind, ("",))
                return kind, self.variant or self.rng.choice(choices)
            if self.remaining <= 0:
                return None
            self.remaining -= 1
            return self.kind, self.variant or VARIANTS.get(self.kind, ("",))[0]


class FakeHubSpot:
    """One HubSpot account: its API as an ASGI app (``app``) and the controls of
    ``CrmFake``. ``rate_interval_ms`` is the ``X-HubSpot-RateLimit-Interval-Milliseconds``
    of its 429 answers; ``lists`` are the manual contact lists it starts with. Like a real
    account it has one owner from the start: the user who created it (``admin``)."""

    def __init__(
        self,
        *,
        token: str | None = None,
        rate_interval_ms: int = 10_000,
        timeout_s: float = 2.0,
        lists: tuple[str, ...] = ("Nurture",),
        admin: str = "admin@fake-hubspot.example",
    ) -> None:
        self.url = ""
        self.token = token or f"pat-na1-{secrets.token_hex(16)}"
        self.store = Store()
        self.faults = Faults()
        self.scopes: set[str] = set(ALL_SCOPES)
        self.rate_interval_ms = rate_interval_ms
        self.timeout_s = timeout_s
        self.log: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.admin_id = self.store.add_owner(admin, "Account Admin", archived=False).id
        for name in lists:
            self.store.add_list(name, "MANUAL")
        methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
        self.app = Starlette(
            routes=[StarletteRoute("/{path:path}", self._endpoint, methods=methods)]
        )

    # -- the API -----------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        with self._lock:
            self.log.append((request.method, request.url.path))
        raw = await request.body()
        try:
            return await self._answer(request, raw)
        except HubSpotError as err:
            return JSONResponse(err.body(), err.status, headers=err.headers)

    async def _answer(self, request: Request, raw: bytes) -> Response:
        if self.faults.expired:
            raise HubSpotError(
                401,
                "The OAuth token used to make this call expired 3 second(s) ago.",
                "EXPIRED_AUTHENTICATION",
            )
        if request.headers.get("authorization") != f"Bearer {self.token}":
            raise HubSpotError(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            )
        found = match(request.method, request.url.path)
        if found is None:
            raise HubSpotError(404, f"No route for {request.method} {request.url.path}", "")
        route, params = found
        needed = route.scope(params)
        if needed not in self.scopes:
            raise HubSpotError(
                403,
                "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",  # noqa: E501
                "MISSING_SCOPES",
                errors=[
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": [needed]},
                    }
                ],
                links={"scopes": "https://developers.hubspot.com/scopes"},
            )
        body = json.loads(raw) if raw else None
        fault = self.faults.take(route.write, request.url.path)
        if fault is not None:
            kind, variant = fault
            if kind == "slow":
                await asyncio.sleep(self.timeout_s + 1.0)
            elif kind == "429":
                raise self._rate_limited(with_retry_after=variant != "headers_only")
            elif kind == "validation":
                problem = invalid("firstname", "INVALID_ALPHA", "Enter only letters")
                raise validation_error([problem])
            elif kind == "5xx" and (variant == "before" or not route.write):
                raise HubSpotError(503, "Service Unavailable", "")
            elif kind == "5xx":
                with self.store.lock:
                    route.handler(self.store, params, request.query_params, body)
                return PlainTextResponse("<html><body>504 Gateway Time-out</body></html>", 504)
        with self.store.lock:  # the tests' control calls come from other threads
            status, payload = route.handler(self.store, params, request.query_params, body)
        return JSONResponse(payload, status, headers=self._limits(99))

    def _limits(self, remaining: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.rate_interval_ms),
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": str(remaining),
        }

    def _rate_limited(self, *, with_retry_after: bool) -> HubSpotError:
        headers = self._limits(0)
        if with_retry_after:
            headers["Retry-After"] = "1"
        return HubSpotError(
            429,
            "You have reached your ten_secondly_rolling limit.",
            "",
            headers=headers,
            errorType="RATE_LIMIT",
            policyName="TEN_SECONDLY_ROLLING",
        )

    # -- CrmFake -----------------------------------------------------------------------

    def connector(self) -> HubSpotCRM:
        return HubSpotCRM(token=self.token, base_url=self.url, timeout_s=self.timeout_s)

    def add_user(self, email: str, name: str, *, active: bool = True) -> str:
        return self.store.add_owner(email, name, archived=not active).id

    def add_account(self, name: str, domain: str | None, owner_id: str | None) -> str:
        values = {"name": name, "domain": domain, "hubspot_owner_id": owner_id}
        clean = {k: v for k, v in values.items() if v}
        return self.store.create("companies", clean, []).id

    def lead_ids(self, email: str) -> list[str]:
        with self.store.lock:
            contacts = self.store.records["contacts"].values()
            return [r.id for r in contacts if r.props.get("email", "").lower() == email.lower()]

    def lead_owner(self, crm_id: str) -> str | None:
        record = self.store.records["contacts"].get(crm_id)
        return None if record is None else record.props.get("hubspot_owner_id")

    def lead_status(self, crm_id: str) -> str | None:
        record = self.store.records["contacts"].get(crm_id)
        return None if record is None else record.props.get("hs_lead_status")

    def in_nurture(self, crm_id: str, list_name: str) -> bool:
        try:
            return crm_id in self.store.list_by_name(list_name).members
        except HubSpotError:
            return False

    def task_ids(self, crm_id: str) -> list[str]:
        return [i for i, _ in self.store.associated("contacts", crm_id, "tasks")]

    def deal_ids(self, crm_id: str) -> list[str]:
        return [i for i, _ in self.store.associated("contacts", crm_id, "deals")]

    def user_sets_status(self, crm_id: str, kind: Literal["contacted", "disqualified"]) -> None:
        status = "CONNECTED" if kind == "contacted" else "UNQUALIFIED"
        self.store.update("contacts", crm_id, {"hs_lead_status": status})

    def user_sets_owner(self, crm_id: str, owner_id: str) -> None:
        self.store.update("contacts", crm_id, {"hubspot_owner_id": owner_id})

    def user_closes_deal(self, crm_id: str, *, won: bool, amount: Decimal) -> str:
        store = self.store
        with store.lock:
            contact = store.get("contacts", crm_id)
            open_deals = [
                i
                for i in self.deal_ids(crm_id)
                if store.get("deals", i).props.get("dealstage") not in ("closedwon", "closedlost")
            ]
            if open_deals:
                deal_id = open_deals[0]
            else:
                links = [
                    {
                        "to": {"id": crm_id},
                        "types": [
                            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}
                        ],
                    }
                ]
                for company_id, _ in store.associated("contacts", crm_id, "companies")[:1]:
                    links.append(
                        {
                            "to": {"id": company_id},
                            "types": [
                                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}
                            ],
                        }
                    )
                name = f"Deal for {contact.props.get('email', crm_id)}"
                values = {"dealname": name, "pipeline": "default", "dealstage": "qualifiedtobuy"}
                deal_id = store.create("deals", values, links).id
            stage = "closedwon" if won else "closedlost"
            store.update("deals", deal_id, {"dealstage": stage, "amount": str(amount)})
            return deal_id

    def fail(
        self,
        kind: FaultKind,
        *,
        times: int = 1,
        ratio: float | None = None,
        variant: str | None = None,
        where: str | None = None,
    ) -> None:
        """``CrmFake.fail``; ``variant`` picks one of a kind's variants, ``where`` limits
        the fault to calls whose path contains it."""
        with self.faults.lock:
            if kind == "expired_session":
                self.faults.expired = True
                return
            self.faults.kind = kind
            self.faults.remaining = times
            self.faults.ratio = ratio
            self.faults.variant = variant
            self.faults.where = where

    def heal(self) -> None:
        with self.faults.lock:
            self.faults.kind = None
            self.faults.ratio = None
            self.faults.variant = None
            self.faults.where = None
            self.faults.remaining = 0
            self.faults.expired = False

    def calls(self) -> int:
        with self._lock:
            return len(self.log)

    # -- beyond CrmFake ----------------------------------------------------------------

    def add_list(self, name: str, processing_type: str = "MANUAL") -> str:
        return self.store.add_list(name, processing_type).id

    def contact(self, crm_id: str) -> dict[str, str]:
        """The contact's stored property values (date-times as epoch ms)."""
        with self.store.lock:
            return dict(self.store.get("contacts", crm_id).props)

    def record(self, kind: str, rid: str) -> dict[str, str]:
        with self.store.lock:
            return dict(self.store.get(kind, rid).props)

    def revoke_scope(self, scope: str) -> None:
        self.scopes.discard(scope)

    def calls_to(self, method: str, path_part: str) -> int:
        with self._lock:
            return sum(1 for m, p in self.log if m == method and path_part in p)


@contextmanager
def running_hubspot(**options: Any) -> Iterator[FakeHubSpot]:
    """A ``FakeHubSpot`` served on a free localhost port for the block."""
    fake = FakeHubSpot(**options)
    with serve(fake.app) as url:
        fake.url = url
        yield fake


# The nurture list of config/demo.yaml, so that leadflow dev's demo runs against the fake.
DEMO_NURTURE_LIST = "Leadflow nurture"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake HubSpot CRM API")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default=None)
    parser.add_argument(
        "--users",
        nargs="*",
        default=[email for _, email, _ in DEMO_REPS],
        help="emails of the owners to create (default: the demo reps of leadflow dev)",
    )
    args = parser.parse_args(argv)
    fake = FakeHubSpot(token=args.token)
    for email in args.users:
        fake.add_user(email, email.split("@")[0].replace(".", " ").title())
    fake.add_user("gone@example.com", "Gone Away", active=False)
    fake.add_list(DEMO_NURTURE_LIST)
    with serve(fake.app, port=args.port) as url:
        sys.stdout.write(
            f"fake HubSpot at {url}\n"
            f"LEADFLOW_CRM_BACKEND=hubspot\nLEADFLOW_HUBSPOT_BASE_URL={url}\n"
            f"LEADFLOW_HUBSPOT_TOKEN={fake.token}\n"
        )
        sys.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
