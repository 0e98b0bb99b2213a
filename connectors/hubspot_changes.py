"""Changes made in HubSpot that Leadflow follows, from polling (CRM search) or from a
webhook notice, as the same ``CrmChange``s:

- a contact's ``hs_lead_status`` ATTEMPTED_TO_CONTACT or CONNECTED -> contacted,
  UNQUALIFIED -> disqualified; its ``hubspot_owner_id`` -> owner_changed;
- a deal of the configured pipeline in the won stage -> won (``amount``,
  ``deal_currency_code`` or USD), in the lost stage -> lost; for each contact the deal
  is associated with (associations are read through the associations API).

Polling searches records modified at or after the mark (``lastmodifieddate`` for
contacts, ``hs_lastmodifieddate`` for deals), oldest first, 200 a page and a few pages a
poll: HubSpot allows a handful of search requests a second. The mark is epoch ms.

Neither search nor ``changeSource`` tells Leadflow's own writes from others' (a private
app's writes show as ``INTEGRATION``/``API``, like every other integration's, such as a
dialer setting CONNECTED): nothing is dropped for its source, and Leadflow ignores a
change that matches what it already holds. ``occurred_at`` is left unset by both paths:
search knows when a record last changed, not when a property did, and the two paths
must give identical changes."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

from connectors.hubspot_client import HubSpotApi
from connectors.hubspot_records import epoch_ms
from domain.crm import ChangePage, CrmChange, CrmChangeKind, CrmNotice

CONTACTED = frozenset({"ATTEMPTED_TO_CONTACT", "CONNECTED"})
DISQUALIFIED = frozenset({"UNQUALIFIED"})
PAGE = 200
MAX_PAGES = 2  # per object type and poll (the rest comes next poll): 4 searches at most
CONTACT_FIELDS = ("hs_lead_status", "hubspot_owner_id")


def contact_changes(contact_id: str, fields: Mapping[str, str | None]) -> list[CrmChange]:
    """The changes a contact's values of ``hs_lead_status`` / ``hubspot_owner_id``
    stand for (only the fields present are looked at)."""
    changes: list[CrmChange] = []
    status = fields.get("hs_lead_status") or ""
    prefix = f"hubspot:contact:{contact_id}"
    if status in CONTACTED or status in DISQUALIFIED:
        kind = CrmChangeKind.contacted if status in CONTACTED else CrmChangeKind.disqualified
        changes.append(
            CrmChange(
                change_id=f"{prefix}:hs_lead_status={status}",
                crm_id=contact_id,
                kind=kind,
                reason=f"HubSpot lead status {status}"
                if kind is CrmChangeKind.disqualified
                else None,
            )
        )
    owner = fields.get("hubspot_owner_id")
    if owner:
        changes.append(
            CrmChange(
                change_id=f"{prefix}:hubspot_owner_id={owner}",
                crm_id=contact_id,
                kind=CrmChangeKind.owner_changed,
                owner_id=owner,
            )
        )
    return changes


class ChangeReader:
    def __init__(self, api: HubSpotApi, *, pipeline: str, won_stage: str, lost_stage: str) -> None:
        self._api = api
        self._pipeline = pipeline
        self._won = won_stage
        self._lost = lost_stage

    def deal_changes(
        self, deal_id: str, stage: str, values: Mapping[str, str | None], contact_ids: Iterable[str]
    ) -> list[CrmChange]:
        if stage not in (self._won, self._lost):
            return []
        won = stage == self._won
        raw = values.get("amount")
        try:
            amount = Decimal(raw) if raw else None
        except InvalidOperation:
            amount = None
        return [
            CrmChange(
                change_id=f"hubspot:deal:{deal_id}:dealstage={stage}",
                crm_id=contact_id,
                kind=CrmChangeKind.won if won else CrmChangeKind.lost,
                amount=amount if won else None,
                currency=(values.get("deal_currency_code") or "USD") if won else None,
                reason=None if won else f"HubSpot deal stage {stage}",
            )
            for contact_id in sorted(set(contact_ids), key=_numeric)
        ]

    # -- webhooks ----------------------------------------------------------------------

    def interpret(self, notice: CrmNotice) -> list[CrmChange]:
        if notice.object == "lead":
            fields = {k: v for k, v in notice.fields.items() if k in CONTACT_FIELDS}
            return contact_changes(notice.object_id, fields)
        stage = notice.fields.get("dealstage")
        if stage not in (self._won, self._lost):
            return []
        deal = self._api.call(
            self._api.deals.get_by_id,
            notice.object_id,
            properties=["amount", "deal_currency_code", "dealstage", "pipeline"],
            associations=["contacts"],
            tolerate=frozenset({404}),
        )
        if deal is None or (deal.properties or {}).get("pipeline") != self._pipeline:
            return []
        linked = (deal.associations or {}).get("contacts")
        contact_ids = [a.id for a in linked.results] if linked else []
        return self.deal_changes(str(deal.id), str(stage), deal.properties or {}, contact_ids)

    # -- polling -----------------------------------------------------------------------

    def changes_since(self, mark: str | None) -> ChangePage:
        # The contacts search filters on leadflow_id: HubSpot refuses an unknown property.
        self._api.ensure_properties("contacts")
        since = _mark(mark)
        if since is None:
            return ChangePage(changes=[], mark=str(self._present()))
        contacts, contacts_more = self._search("contacts", since)
        deals, deals_more = self._search("deals", since)
        by_time: list[tuple[int, int, CrmChange]] = []
        for record in contacts:
            stamp = epoch_ms((record.properties or {}).get("lastmodifieddate")) or since
            for change in contact_changes(str(record.id), record.properties or {}):
                by_time.append((stamp, len(by_time), change))
        linked = self._deal_contacts([str(d.id) for d in deals])
        for record in deals:
            values = record.properties or {}
            stamp = epoch_ms(values.get("hs_lastmodifieddate")) or since
            stage = str(values.get("dealstage") or "")
            for change in self.deal_changes(
                str(record.id), stage, values, linked.get(str(record.id), [])
            ):
                by_time.append((stamp, len(by_time), change))
        by_time.sort(key=lambda item: (item[0], item[1]))
        return ChangePage(
            changes=[c for _, _, c in by_time],
            mark=str(self._next_mark(since, contacts, contacts_more, deals, deals_more)),
        )

    def _filters(self, kind: str, since: int | None) -> tuple[str, list[dict[str, Any]]]:
        if kind == "contacts":
            stamp = "lastmodifieddate"
            filters: list[dict[str, Any]] = [
                {"propertyName": "leadflow_id", "operator": "HAS_PROPERTY"}
            ]
        else:
            stamp = "hs_lastmodifieddate"
            filters = [
                {"propertyName": "pipeline", "operator": "EQ", "value": self._pipeline},
                {"propertyName": "dealstage", "operator": "IN", "values": [self._won, self._lost]},
            ]
        if since is not None:
            filters.append({"propertyName": stamp, "operator": "GTE", "value": str(since)})
        return stamp, filters

    def _search_api(self, kind: str) -> Any:
        return self._api.contact_search if kind == "contacts" else self._api.deal_search

    def _search(self, kind: str, since: int) -> tuple[list[Any], bool]:
        """Records of ``kind`` modified at or after ``since``, oldest first; whether
        more remain than this poll reads."""
        stamp, filters = self._filters(kind, since)
        wanted = [
            stamp,
            *(
                CONTACT_FIELDS
                if kind == "contacts"
                else ("dealstage", "amount", "deal_currency_code", "pipeline")
            ),
        ]
        records: list[Any] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            request: dict[str, Any] = {
                "filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": stamp, "direction": "ASCENDING"}],
                "properties": wanted,
                "limit": PAGE,
            }
            if after:
                request["after"] = after
            page = self._api.call(self._search_api(kind).do_search, request)
            records.extend(page.results or [])
            after = page.paging.next.after if page.paging and page.paging.next else None
            if not after:
                return records, False
        return records, True

    def _deal_contacts(self, deal_ids: list[str]) -> dict[str, list[str]]:
        """Each deal's associated contacts: one batch request per page of deals."""
        found: dict[str, list[str]] = {}
        for start in range(0, len(deal_ids), PAGE):
            chunk = deal_ids[start : start + PAGE]
            answer = self._api.call(
                self._api.association_batch.get_page,
                "deals",
                "contacts",
                {"inputs": [{"id": i} for i in chunk]},
            )
            for item in answer.results or []:
                found[str(item._from.id)] = [str(t.to_object_id) for t in item.to or []]
        return found

    def _next_mark(
        self,
        since: int,
        contacts: list[Any],
        contacts_more: bool,
        deals: list[Any],
        deals_more: bool,
    ) -> int:
        """The newest modification seen (records modified at it are read again next
        time rather than skipped); with more left unread, the oldest stream's last."""
        lasts = {
            "contacts": [epoch_ms((r.properties or {}).get("lastmodifieddate")) for r in contacts],
            "deals": [epoch_ms((r.properties or {}).get("hs_lastmodifieddate")) for r in deals],
        }
        seen = {k: [s for s in v if s is not None] for k, v in lasts.items()}
        truncated = [
            max(seen[k])
            for k, more in (("contacts", contacts_more), ("deals", deals_more))
            if more and seen[k]
        ]
        if truncated:
            bound = min(truncated)
            # A full poll of records all modified in one millisecond: step past it.
            return bound if bound > since else since + 1
        return max([since, *seen["contacts"], *seen["deals"]])

    def _present(self) -> int:
        """The mark of now: HubSpot's clock (its ``Date`` header), or just past the
        newest followed record if that is later (the header has whole seconds)."""
        present = 0
        for kind in ("contacts", "deals"):
            stamp, filters = self._filters(kind, None)
            request = {
                "filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": stamp, "direction": "DESCENDING"}],
                "properties": [stamp],
                "limit": 1,
            }
            page, _, headers = self._api.call(
                self._search_api(kind).do_search_with_http_info, request
            )
            present = max(present, _date_header(headers))
            for record in page.results or []:
                newest = epoch_ms((record.properties or {}).get(stamp))
                if newest is not None:
                    present = max(present, newest + 1)
        return present or time.time_ns() // 1_000_000


def _mark(mark: str | None) -> int | None:
    if mark is None or not mark.strip().isdigit():
        return None
    return int(mark.strip())


def _date_header(headers: Mapping[str, str] | None) -> int:
    for key, value in (headers or {}).items():
        if key.lower() == "date":
            try:
                return int(parsedate_to_datetime(value).timestamp() * 1000)
            except (TypeError, ValueError):
                return 0
    return 0


def _numeric(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (0, value)
