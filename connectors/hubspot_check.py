"""``leadflow crm check`` for HubSpot: the token, each scope the connector needs (a
missing one shows as the 403 of a cheap call that changes nothing: a read of one record,
an update of record 0 that HubSpot answers 404 when the scope is granted), the owners,
Leadflow's custom properties, the nurture list and the won/lost stages of the pipeline.
Every step is a line; nothing raises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.base import ConnectorError
from connectors.hubspot_client import CUSTOM_PROPERTIES, HubSpotApi
from connectors.hubspot_errors import missing_scope, read
from connectors.hubspot_records import LEAD_STATUS
from domain.crm import CheckItem, CrmOwner

PROBE_ID = "0"  # no record has it: a granted write scope gets 404
PROBE_PROPERTY = "leadflow_check_probe"
ANSWERED = frozenset({400, 404})


def _status(err: BaseException) -> int:
    cause = err.__cause__
    return read(cause).status if cause is not None else 0


def _probes(
    api: HubSpotApi,
) -> list[tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]]:
    nothing: dict[str, dict[str, str]] = {"properties": {}}
    label = {"label": "Leadflow check"}
    return [
        ("crm.objects.contacts.read", api.contacts.get_page, (), {"limit": 1}),
        ("crm.objects.contacts.write", api.contacts.update, (PROBE_ID, nothing), {}),
        ("crm.objects.companies.read", api.companies.get_page, (), {"limit": 1}),
        ("crm.objects.companies.write", api.companies.update, (PROBE_ID, nothing), {}),
        ("crm.objects.deals.read", api.deals.get_page, (), {"limit": 1}),
        ("crm.objects.deals.write", api.deals.update, (PROBE_ID, nothing), {}),
        ("crm.objects.owners.read", api.owners.get_page, (), {"limit": 1}),
        ("crm.lists.read", api.lists.get_by_name, (PROBE_PROPERTY, "0-1"), {}),
        ("crm.lists.write", api.memberships.add, (PROBE_ID, [PROBE_ID]), {}),
        ("tasks (write)", api.tasks.update, (PROBE_ID, nothing), {}),
        (
            "crm.schemas.contacts.write",
            api.properties.update,
            ("contacts", PROBE_PROPERTY, label),
            {},
        ),
        ("crm.schemas.deals.write", api.properties.update, ("deals", PROBE_PROPERTY, label), {}),
    ]


def run_checks(
    list_owners: Callable[[], list[CrmOwner]],
    api: HubSpotApi,
    nurture_list: str | None,
    *,
    pipeline: str,
    stages: tuple[str, str],
) -> list[CheckItem]:
    items: list[CheckItem] = []
    granted: dict[str, bool] = {}
    for scope, method, args, kwargs in _probes(api):
        try:
            api.call(method, *args, tolerate=ANSWERED, **kwargs)
        except ConnectorError as err:
            status = _status(err)
            if status == 401:
                detail = f"the private app token is invalid or revoked ({err.vendor_message})"
                return [CheckItem(name="token", ok=False, detail=detail)]
            if status == 403:
                named = missing_scope(read(err.__cause__)) if err.__cause__ else None
                granted[scope] = False
                items.append(
                    CheckItem(
                        name=f"scope {scope}",
                        ok=False,
                        detail=f"missing: add {named or scope} to the private app's scopes",
                    )
                )
            else:
                items.append(
                    CheckItem(name=f"scope {scope}", ok=False, detail=f"could not check: {err}")
                )
            continue
        granted[scope] = True
        items.append(CheckItem(name=f"scope {scope}", ok=True, detail="granted"))
    items.insert(0, CheckItem(name="token", ok=True, detail="the private app token is valid"))
    items.append(_owners(list_owners))
    items.extend(_custom_properties(api, granted))
    if nurture_list:
        items.append(_nurture(api, nurture_list))
    items.append(_pipeline(api, pipeline, stages))
    return items


def _owners(list_owners: Callable[[], list[CrmOwner]]) -> CheckItem:
    try:
        owners = list_owners()
    except ConnectorError as err:
        return CheckItem(name="owners", ok=False, detail=f"cannot be listed: {err}")
    active = sum(o.active for o in owners)
    archived = len(owners) - active
    return CheckItem(
        name="owners",
        ok=active > 0,
        detail=f"{active} active owners (reps are linked to these by email), {archived} "
        "archived (never linked)"
        if active
        else "no active owner: reps cannot be linked to HubSpot users",
    )


def _custom_properties(api: HubSpotApi, granted: dict[str, bool]) -> list[CheckItem]:
    items = []
    for kind in CUSTOM_PROPERTIES:
        name = f"{kind[:-1]} properties"
        try:
            missing = api.missing_properties(kind)
        except ConnectorError as err:
            items.append(CheckItem(name=name, ok=False, detail=f"cannot be read: {err}"))
            continue
        if kind == "contacts":
            items.append(_lead_statuses(api))
        wanted = ", ".join(n for n, *_ in CUSTOM_PROPERTIES[kind])
        if not missing:
            items.append(CheckItem(name=name, ok=True, detail=f"{wanted} exist"))
        elif granted.get(f"crm.schemas.{kind}.write"):
            detail = f"{', '.join(missing)} missing: Leadflow creates them on its first write"
            items.append(CheckItem(name=name, ok=True, detail=detail))
        else:
            detail = (
                f"{', '.join(missing)} missing and cannot be created: grant "
                f"crm.schemas.{kind}.write or create them (group 'leadflow')"
            )
            items.append(CheckItem(name=name, ok=False, detail=detail))
    return items


def _lead_statuses(api: HubSpotApi) -> CheckItem:
    options = api.options.get(("contacts", "hs_lead_status"))
    if options is None:
        return CheckItem(name="lead statuses", ok=False, detail="hs_lead_status cannot be read")
    lacking = [v for v in LEAD_STATUS.values() if v not in options]
    if lacking:
        detail = f"hs_lead_status lacks {', '.join(lacking)}, which Leadflow sets: add them"
        return CheckItem(name="lead statuses", ok=False, detail=detail)
    return CheckItem(name="lead statuses", ok=True, detail="hs_lead_status has every value")


def _nurture(api: HubSpotApi, list_name: str) -> CheckItem:
    name = "nurture list"
    try:
        found = api.call(api.lists.get_by_name, list_name, "0-1", tolerate=frozenset({404}))
    except ConnectorError as err:
        return CheckItem(name=name, ok=False, detail=f"{list_name!r} cannot be read: {err}")
    if found is None:
        detail = f"no contact list named {list_name!r}: create a static list with that name"
        return CheckItem(name=name, ok=False, detail=detail)
    if found.list.processing_type == "DYNAMIC":
        detail = f"{list_name!r} is an active list: Leadflow needs a static one"
        return CheckItem(name=name, ok=False, detail=detail)
    return CheckItem(name=name, ok=True, detail=f"{list_name!r} is a static contact list")


def _pipeline(api: HubSpotApi, pipeline: str, stages: tuple[str, str]) -> CheckItem:
    name = "deal pipeline"
    try:
        found = api.call(api.pipelines.get_by_id, "deals", pipeline, tolerate=frozenset({404}))
    except ConnectorError as err:
        return CheckItem(name=name, ok=False, detail=f"{pipeline!r} cannot be read: {err}")
    if found is None:
        return CheckItem(name=name, ok=False, detail=f"no deal pipeline {pipeline!r}")
    have = {s.id for s in found.stages or []}
    missing = [s for s in stages if s not in have]
    if missing:
        detail = f"pipeline {pipeline!r} has no stage {', '.join(missing)}"
        return CheckItem(name=name, ok=False, detail=detail)
    won, lost = stages
    return CheckItem(name=name, ok=True, detail=f"{pipeline!r}: won stage {won}, lost {lost}")
