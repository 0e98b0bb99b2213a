"""What the contract suite (tests/test_crm_contract.py) and the end-to-end tests need
from a running fake CRM, besides the connector itself: seeding it, acting in it as a
person using the CRM would, looking at what it holds, and injecting faults. Each fake
(``tests/fakes/salesforce_api.py``, ``tests/fakes/hubspot_api.py``) and the local CRM's
adapter implement it."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, Protocol

from connectors.base import CRM


class CrmFake(Protocol):
    url: str  # base URL of the fake ("" for the local CRM)

    def connector(self) -> CRM:
        """A connector configured for this fake (a new one each call)."""
        ...

    # -- seeding ---------------------------------------------------------------------
    def add_user(self, email: str, name: str, *, active: bool = True) -> str:
        """A CRM user who can own records (Salesforce User, HubSpot owner); its owner id
        (for HubSpot the owner ``id``, which differs from its ``userId``)."""
        ...

    def add_account(self, name: str, domain: str | None, owner_id: str | None) -> str:
        """An account/company; its id."""
        ...

    # -- what it holds ---------------------------------------------------------------
    def lead_ids(self, email: str) -> list[str]:
        """The ids of every lead/contact record with this email (any case)."""
        ...

    def lead_owner(self, crm_id: str) -> str | None: ...

    def lead_status(self, crm_id: str) -> str | None:
        """The vendor's status value (Salesforce ``Status``, HubSpot ``hs_lead_status``)."""
        ...

    def in_nurture(self, crm_id: str, list_name: str) -> bool: ...

    def task_ids(self, crm_id: str) -> list[str]:
        """The tasks associated with the lead/contact."""
        ...

    def deal_ids(self, crm_id: str) -> list[str]:
        """The deals (opportunities) of the lead/contact."""
        ...

    # -- a person working in the CRM -------------------------------------------------
    def user_sets_status(self, crm_id: str, kind: Literal["contacted", "disqualified"]) -> None:
        """A CRM user sets the status meaning ``kind`` (Salesforce ``Working -
        Contacted`` / ``Closed - Not Converted``; HubSpot ``CONNECTED`` / ``UNQUALIFIED``),
        as another user than Leadflow's integration user."""
        ...

    def user_sets_owner(self, crm_id: str, owner_id: str) -> None: ...

    def user_closes_deal(self, crm_id: str, *, won: bool, amount: Decimal) -> str:
        """A CRM user closes a deal of this lead (creating it, and for Salesforce
        converting the lead first, when there is none); the deal's id."""
        ...

    # -- faults ----------------------------------------------------------------------
    def fail(
        self,
        kind: Literal["429", "5xx", "slow", "expired_session", "validation", "burst"],
        *,
        times: int = 1,
        ratio: float | None = None,
    ) -> None:
        """Make the next ``times`` API calls fail this way (or, with ``ratio``, that
        share of all calls from now on, chosen at random, until ``heal``). ``burst``
        mixes the vendor's short rate limit and 5xx answers, half each. ``slow``
        answers after a delay longer than the connector's timeout; ``validation`` is the
        vendor's validation error for a write (reads are not affected)."""
        ...

    def heal(self) -> None:
        """No more injected faults."""
        ...

    def calls(self) -> int:
        """API calls received so far (including refused ones)."""
        ...
