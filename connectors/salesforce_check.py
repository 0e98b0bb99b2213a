"""``leadflow crm check`` for Salesforce: one line per thing Leadflow needs from the org,
each saying what was found or what an admin should do. A failed check is a line, never
an exception."""

from __future__ import annotations

from collections.abc import Callable

from connectors.base import ConnectorError
from connectors.salesforce_access import SalesforceAccess
from connectors.salesforce_convert import LeadConverter
from connectors.salesforce_soql import quote
from domain.crm import CheckItem

Outcome = tuple[bool, str]
# Above this share of the daily API requests, the line warns.
API_USAGE_WARNING = 0.9


def _line(name: str, check: Callable[[], Outcome]) -> CheckItem:
    try:
        ok, detail = check()
    except ConnectorError as err:
        ok, detail = False, str(err)
    return CheckItem(name=name, ok=ok, detail=detail)


def run_checks(
    access: SalesforceAccess,
    method: str,
    nurture_list: str | None,
    *,
    converter: LeadConverter,
    custom_fields: tuple[str, ...],
    statuses: list[str],
) -> list[CheckItem]:
    try:
        session = access.session()
    except ConnectorError as err:
        return [CheckItem(name="authentication", ok=False, detail=f"{method}: {err}")]
    items = [
        CheckItem(
            name="authentication",
            ok=True,
            detail=f"{method} as {session.username or 'the token user'} (user {session.user_id}) "
            f"on {session.instance_url}",
        )
    ]

    def lead_access() -> Outcome:
        lead = access.describe("Lead")
        lacking = [
            verb
            for verb, flag in (
                ("read", "queryable"),
                ("create", "createable"),
                ("edit", "updateable"),
            )
            if not lead.get(flag)
        ]
        if lacking:
            return False, f"the integration user cannot {' or '.join(lacking)} Leads: grant it"
        return True, "the integration user can read, create and edit Leads"

    def fields() -> Outcome:
        missing = [f for f in custom_fields if f not in access.field_names("Lead")]
        if missing:
            return False, (
                f"create the Lead custom fields {', '.join(missing)} (or give the integration "
                "user access to them): Leadflow writes score, id and status reason there"
            )
        return True, f"Lead has {', '.join(custom_fields)}"

    def users() -> Outcome:
        active = access.query("count active users", "SELECT Id FROM User WHERE IsActive = true")
        if not active:
            return False, "no active user is visible: the integration user cannot read Users"
        return True, f"{len(active)} active users visible (reps are linked to them by email)"

    def lead_statuses() -> Outcome:
        found = access.query(
            "read the lead statuses", "SELECT Id, ApiName, MasterLabel FROM LeadStatus"
        )
        known = {str(r.get("ApiName") or r.get("MasterLabel")) for r in found}
        missing = [s for s in statuses if s not in known]
        if missing:
            return False, f"add {', '.join(repr(s) for s in missing)} to the Lead Status picklist"
        return True, "the Lead Status picklist has every status Leadflow sets"

    def converted() -> Outcome:
        return True, f"conversions set the status {converter.converted_status()!r}"

    def won() -> Outcome:
        return True, f"won opportunities get the stage {converter.won_stage()!r}"

    def nurture() -> Outcome:
        if not nurture_list:
            return True, "no nurture list is configured"
        found = access.query(
            "find the nurture campaign",
            f"SELECT Id, IsActive FROM Campaign WHERE Name = {quote(nurture_list)} LIMIT 1",
        )
        if not found:
            return False, f"create a Campaign named {nurture_list!r} (the nurture list)"
        return True, f"campaign {nurture_list!r} ({found[0]['Id']}) exists"

    def usage() -> Outcome:
        used = access.api_usage()
        if used is None:
            return True, "Salesforce did not report its API usage (Sforce-Limit-Info)"
        detail = f"{used.used} of {used.total} API requests used in the last 24 hours"
        if used.total and used.used >= API_USAGE_WARNING * used.total:
            return False, detail + ": close to the limit, calls will be refused"
        return True, detail

    for name, check in (
        ("lead permissions", lead_access),
        ("custom fields", fields),
        ("users", users),
        ("lead statuses", lead_statuses),
        ("converted status", converted),
        ("won stage", won),
        ("nurture campaign", nurture),
        ("API usage", usage),
    ):
        items.append(_line(name, check))
    return items
