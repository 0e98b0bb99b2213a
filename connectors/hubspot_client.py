"""hubspot-api-client set up once for Leadflow: the API objects built once and shared by
threads (each ``.basic_api`` access of the SDK builds a new HTTP client), no retries in
urllib3 (it would quietly retry a 429 that carries ``Retry-After``: Temporal is the one
retry layer), a timeout on every call, errors classified into the error tree, and the
custom properties Leadflow writes created once, on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from hubspot import HubSpot
from urllib3.util.retry import Retry

from connectors.base import InvalidRecord, RetryableError
from connectors.hubspot_errors import classify, invalid_properties, is_vendor_error, read

# No retry of any kind: connection, read, status (429/503 with Retry-After), redirect.
NO_RETRIES = Retry(
    total=0,
    connect=0,
    read=0,
    redirect=0,
    status=0,
    other=0,
    respect_retry_after_header=False,
    raise_on_status=False,
)
GROUP = "leadflow"
NOT_FOUND = frozenset({404})
# Leadflow's own properties, per object type: (name, label, type, fieldType).
CUSTOM_PROPERTIES: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "contacts": (
        ("leadflow_id", "Leadflow lead id", "string", "text"),
        ("leadflow_score", "Leadflow score", "number", "number"),
        ("leadflow_status_reason", "Leadflow status reason", "string", "textarea"),
    ),
    # Marks the deals Leadflow's conversion created (a converted contact has one).
    "deals": (("leadflow_id", "Leadflow lead id", "string", "text"),),
}
# HubSpot-defined dropdowns Leadflow writes whose options an admin may have edited.
WATCHED_OPTIONS: dict[str, tuple[str, ...]] = {"contacts": ("numemployees", "hs_lead_status")}


class HubSpotApi:
    """The SDK objects Leadflow uses, for one private app token and base URL."""

    def __init__(self, token: str, base_url: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        client = HubSpot(
            access_token=token,
            host=base_url.rstrip("/"),
            retry=NO_RETRIES,
            connection_pool_maxsize=8,
        )
        crm = client.crm
        self.contacts = crm.contacts.basic_api
        self.contact_search = crm.contacts.search_api
        self.companies = crm.companies.basic_api
        self.company_search = crm.companies.search_api
        self.deals = crm.deals.basic_api
        self.deal_search = crm.deals.search_api
        self.deal_batch = crm.deals.batch_api
        self.tasks = crm.objects.tasks.basic_api
        self.task_batch = crm.objects.tasks.batch_api
        self.owners = crm.owners.owners_api
        self.properties = crm.properties.core_api
        self.property_batch = crm.properties.batch_api
        self.property_groups = crm.properties.groups_api
        self.lists = crm.lists.lists_api
        self.memberships = crm.lists.memberships_api
        self.pipelines = crm.pipelines.pipelines_api
        self.associations = crm.associations.v4.basic_api
        self.association_batch = crm.associations.v4.batch_api
        self.options: dict[tuple[str, str], frozenset[str]] = {}
        self._ready: set[str] = set()
        self._ready_lock = threading.Lock()

    def call(
        self,
        method: Callable[..., Any],
        *args: Any,
        tolerate: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> Any:
        """``method(*args, **kwargs)`` with the timeout; None when HubSpot answers one of
        the ``tolerate`` statuses; any other failure as an error-tree exception."""
        try:
            return method(*args, _request_timeout=self.timeout_s, **kwargs)
        except Exception as err:
            if not is_vendor_error(err):
                raise
            if tolerate and read(err).status in tolerate:
                return None
            mapped = classify(err)
            if isinstance(mapped, InvalidRecord) and _lost_custom_property(mapped.vendor_message):
                # Someone deleted one of Leadflow's properties after we made sure of it:
                # make sure again on the next attempt.
                with self._ready_lock:
                    self._ready.clear()
                raise RetryableError(
                    "a Leadflow custom property is missing in HubSpot; it is created again "
                    "on the next attempt",
                    vendor_message=mapped.vendor_message,
                ) from err
            raise mapped from err

    def contact(
        self, crm_id: str, properties: list[str], associations: list[str] | None = None
    ) -> Any:
        """The contact with these properties (and associated ids); ``InvalidRecord``
        when HubSpot has none."""
        found = self.call(
            self.contacts.get_by_id,
            crm_id,
            properties=properties,
            associations=associations,
            tolerate=NOT_FOUND,
        )
        if found is None:
            raise InvalidRecord(f"HubSpot has no contact {crm_id}")
        return found

    def linked(self, kind: str, record_id: str, to_kind: str) -> list[str]:
        """Ids associated with a record, through the associations API (consistent, unlike
        search), all pages; ``InvalidRecord`` when the record does not exist."""
        ids: list[str] = []
        after: str | None = None
        while True:
            page = self.call(
                self.associations.get_page,
                kind,
                record_id,
                to_kind,
                limit=500,
                after=after,
                tolerate=NOT_FOUND,
            )
            if page is None:
                raise InvalidRecord(f"HubSpot has no {kind.removesuffix('s')} {record_id}")
            ids.extend(str(r.to_object_id) for r in page.results or [])
            after = page.paging.next.after if page.paging and page.paging.next else None
            if not after:
                return list(dict.fromkeys(ids))

    # -- custom properties -------------------------------------------------------------

    def ensure_properties(self, kind: str) -> None:
        """Create Leadflow's custom properties of ``kind`` (and their group) unless they
        exist: checked once per process, by one thread at a time."""
        if kind in self._ready:
            return
        with self._ready_lock:
            if kind in self._ready:
                return
            missing = self.missing_properties(kind)
            if missing:
                group = {"name": GROUP, "label": "Leadflow", "displayOrder": -1}
                # 409: another process created it first; that is what we wanted.
                self.call(self.property_groups.create, kind, group, tolerate=frozenset({409}))
                for name, label, kind_type, field_type in CUSTOM_PROPERTIES[kind]:
                    if name in missing:
                        spec = {
                            "name": name,
                            "label": label,
                            "type": kind_type,
                            "fieldType": field_type,
                            "groupName": GROUP,
                            "description": "Written by Leadflow",
                            "formField": False,
                        }
                        self.call(self.properties.create, kind, spec, tolerate=frozenset({409}))
            self._ready.add(kind)

    def missing_properties(self, kind: str) -> list[str]:
        """Leadflow's custom properties of ``kind`` that HubSpot does not have; reads the
        options of the dropdowns Leadflow writes on the way (``options``)."""
        wanted = [name for name, *_ in CUSTOM_PROPERTIES[kind]]
        watched = WATCHED_OPTIONS.get(kind, ())
        request = {"archived": False, "inputs": [{"name": n} for n in [*wanted, *watched]]}
        found = self.call(self.property_batch.read, kind, request)
        for prop in found.results or []:
            if prop.name in watched:
                values = frozenset(str(o.value) for o in prop.options or [])
                self.options[(kind, prop.name)] = values
        have = {p.name for p in found.results or []}
        return [n for n in wanted if n not in have]

    def allowed(self, kind: str, name: str, value: str) -> bool:
        """Whether a dropdown of this account has the option ``value`` (True when its
        options are not known)."""
        options = self.options.get((kind, name))
        return options is None or value in options


def _lost_custom_property(message: str) -> bool:
    ours = {name for names in CUSTOM_PROPERTIES.values() for name, *_ in names}
    problems = invalid_properties(message)
    return any(problems.get(name) == "PROPERTY_DOESNT_EXIST" for name in ours)
