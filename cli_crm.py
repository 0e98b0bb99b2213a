"""``leadflow crm check`` and ``leadflow reps sync``: the configured CRM on the command line.

``crm check`` connects with the configured credentials and says, line by line, what works
and what is missing: authentication, permissions or scopes, the users it can see, the
custom fields Leadflow writes, the nurture list or campaign, and on Leadflow's side the
webhook secret and the URL to register. Exit status 0 when everything is in order, 1
otherwise.

``reps sync`` reads the CRM's users, links every active rep to one by email (or by the
``crm_owner_id`` the configuration gives it) and lists the reps it could not link. The
worker does the same at start; run it after adding reps or CRM users.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from domain.crm import CheckItem
    from settings import Settings

OK, MISSING = "ok", "!!"


def add_crm_parsers(sub: Any) -> None:
    crm = sub.add_parser("crm", help="the configured CRM")
    crm_commands = crm.add_subparsers(dest="crm_command", required=True)
    crm_commands.add_parser("check", help="what works with the configured CRM credentials")
    reps = sub.add_parser("reps", help="reps and the CRM's users")
    rep_commands = reps.add_subparsers(dest="reps_command", required=True)
    rep_commands.add_parser("sync", help="link reps to the CRM's users by email")


def run_crm(args: argparse.Namespace, settings: Settings) -> int:
    assert args.crm_command == "check"
    from connectors.base import ConnectorError
    from connectors.factory import make_crm
    from store import routing as routing_store
    from store.db import Database

    db = Database(settings.effective_database_url, pool_size=1)
    try:
        try:
            crm = make_crm(settings, db)
        except (ConnectorError, ValueError) as err:
            __say([_item("configuration", False, str(err))], settings.crm_backend.value)
            return 1
        nurture_list = None
        try:
            with db.read() as session:
                nurture_list = (
                    routing_store.RouterCache(settings.default_team)
                    .current(session)
                    .config.nurture.list_name
                )
        except Exception:  # no database yet: the CRM can still be checked
            nurture_list = None
        items = list(crm.check(nurture_list))
        items.extend(_webhook_items(settings))
        __say(items, crm.name)
        return 0 if all(item.ok for item in items) else 1
    finally:
        db.dispose()


def run_reps(args: argparse.Namespace, settings: Settings) -> int:
    assert args.reps_command == "sync"
    from activities.crm_inbound import sync_rep_links
    from connectors.base import ConnectorError
    from connectors.factory import make_crm
    from store.db import Database

    db = Database(settings.effective_database_url, pool_size=1)
    try:
        crm = make_crm(settings, db)
        report = sync_rep_links(db, crm)
    except (ConnectorError, ValueError) as err:
        _say(f"leadflow reps sync: {err}")
        return 1
    finally:
        db.dispose()
    _say(
        f"{report.crm}: {report.active_owners} active users "
        f"({report.owners_seen - report.active_owners} inactive or archived)"
    )
    for link in report.links:
        if link.owner_id is not None:
            via = "configured crm_owner_id" if link.by == "configuration" else "email"
            name = link.owner_name or link.owner_id
            _say(f"  {OK} {link.email} → {name} ({link.owner_id}, by {via})")
        else:
            _say(f"  {MISSING} {link.email}: not linked, {link.problem}")
    unlinked = report.unlinked
    if unlinked:
        _say(
            f"{len(unlinked)} of {len(report.links)} reps are not linked: their leads reach "
            "the CRM without an owner and are flagged needs attention. Create the users in "
            "the CRM (or set crm_owner_id in the configuration) and run this again."
        )
        return 1
    _say(f"all {len(report.links)} reps are linked")
    return 0


def _item(name: str, ok: bool, detail: str) -> CheckItem:
    from domain.crm import CheckItem

    return CheckItem(name=name, ok=ok, detail=detail)


def _webhook_items(settings: Settings) -> list[CheckItem]:
    """Leadflow's side of the webhooks: the secret that verifies them, and the URL to
    register in the CRM."""
    base = settings.base_url
    if settings.crm_backend.value == "hubspot":
        url = f"{base}/webhooks/hubspot"
        if settings.hubspot_client_secret is None:
            return [
                _item(
                    "webhooks",
                    False,
                    "LEADFLOW_HUBSPOT_CLIENT_SECRET is not set: webhooks are refused "
                    f"(polling still brings changes back every {settings.crm_poll_interval_s:g}s)"
                    if settings.crm_poll_interval_s
                    else "LEADFLOW_HUBSPOT_CLIENT_SECRET is not set and polling is off: "
                    "changes made in HubSpot never reach Leadflow",
                )
            ]
        return [_item("webhooks", True, f"signed webhooks accepted at {url}")]
    if settings.crm_backend.value == "salesforce":
        if settings.salesforce_outbound_secret is None or not settings.salesforce_org_id:
            return [
                _item(
                    "outbound messages",
                    False,
                    "set LEADFLOW_SALESFORCE_OUTBOUND_SECRET and LEADFLOW_SALESFORCE_ORG_ID to "
                    "accept Outbound Messages"
                    + (
                        f" (polling brings changes back every {settings.crm_poll_interval_s:g}s)"
                        if settings.crm_poll_interval_s
                        else "; polling is off too, so changes made in Salesforce never "
                        "reach Leadflow"
                    ),
                )
            ]
        return [
            _item(
                "outbound messages",
                True,
                f"accepted at {base}/webhooks/salesforce/<LEADFLOW_SALESFORCE_OUTBOUND_SECRET> "
                f"from organisation {settings.salesforce_org_id}",
            )
        ]
    return []


def __say(items: list[CheckItem], crm: str) -> None:
    _say(f"CRM: {crm}")
    width = max((len(item.name) for item in items), default=0)
    for item in items:
        _say(f"  {OK if item.ok else MISSING} {item.name.ljust(width)}  {item.detail}")
    missing = [item.name for item in items if not item.ok]
    _say("everything is in order" if not missing else f"to fix: {', '.join(missing)}")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
