"""Messages of a lead's life after its assignment: follow-up SLA reminders and escalations,
stale-lead nudges, reassignments, the wins channel's announcement and the hand-off to
account management.

Every builder returns ``(text, blocks)``. ``text`` is plain prose: the inbox shows it as is,
and Slack uses it for notifications (a Slack sender escapes it). ``blocks`` is Block Kit
whose mrkdwn has every value that came from a form or a person escaped, so a lead named
``<!channel>`` cannot ping anyone; long values are shortened to stay within Slack's limits.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from bots.blocks.text import (
    PROSE_LIMIT,
    Blocks,
)
from bots.blocks.text import context as _context
from bots.blocks.text import cut as _cut
from bots.blocks.text import days as _days
from bots.blocks.text import duration as _duration
from bots.blocks.text import esc as _esc
from bots.blocks.text import fields as _fields
from bots.blocks.text import lead_name as _lead
from bots.blocks.text import mention as _mention
from bots.blocks.text import money as _money
from bots.blocks.text import plain_time as _plain_time
from bots.blocks.text import section as _section
from bots.blocks.text import slack_time as _slack_time
from bots.blocks.text import times as _times

# The escalation's button: the lead goes to someone else through the published rules.
REASSIGN_ACTION = "lead_reassign"


def sla_reminder(
    lead_name: str,
    company: str | None,
    owner_name: str,
    elapsed: timedelta,
    deadline: datetime,
    lead_url: str | None = None,
    owner_slack_id: str | None = None,
) -> tuple[str, Blocks]:
    """To the owner: the lead has waited ``elapsed`` for a first contact, which is due by
    ``deadline``."""
    lead, owner, waited = _lead(lead_name, company), _cut(owner_name), _duration(elapsed)
    text = (
        f"Reminder for {owner}: {lead} has waited {waited} for a first contact. Please "
        f"reach out by {_plain_time(deadline)}; after that the lead may go to another rep."
    )
    blocks = [
        _section(
            f"{_mention(owner, owner_slack_id)}, *{_esc(lead)}* has waited *{waited}* for a "
            f"first contact.\nPlease reach out by *{_slack_time(deadline)}*; after that the "
            "lead may go to another rep."
        ),
        *_open_lead(lead_url),
    ]
    return text, blocks


def sla_escalation(
    lead_name: str,
    company: str | None,
    owner_name: str,
    manager_name: str,
    elapsed: timedelta,
    reassignments: int,
    lead_url: str | None = None,
    manager_slack_id: str | None = None,
    lead_id: str | None = None,
) -> tuple[str, Blocks]:
    """To the pool's manager: the lead has had no first contact for ``elapsed``, after
    ``reassignments`` reassignments; ``owner_name`` holds it now. With ``lead_id``, a
    **Reassign** button (``lead_reassign``) hands it on through the published rules."""
    lead, owner, manager = _lead(lead_name, company), _cut(owner_name), _cut(manager_name)
    waited = _duration(elapsed)
    passed = (
        f"It was reassigned {_times(reassignments)} and is now with {owner}."
        if reassignments
        else f"Its owner is {owner}."
    )
    text = (
        f"Escalation for {manager}: {lead} has had no first contact in {waited}. {passed} "
        "Please step in."
    )
    blocks = [
        _section(
            f"{_mention(manager, manager_slack_id)}, *{_esc(lead)}* has had no first contact "
            f"in *{waited}*. {_esc(passed)} Please step in."
        ),
        _fields(("Owner now", owner), ("Waiting", waited), ("Reassignments", str(reassignments))),
        *_open_lead(lead_url),
    ]
    if lead_id is not None:
        reassign = {
            "type": "button",
            "text": {"type": "plain_text", "text": "Reassign"},
            "action_id": REASSIGN_ACTION,
            "value": lead_id,
            "style": "primary",
        }
        if blocks[-1].get("type") == "actions":
            blocks[-1]["elements"].insert(0, reassign)
        else:
            blocks.append({"type": "actions", "elements": [reassign]})
    return text, blocks


def stale_reminder(
    lead_name: str,
    company: str | None,
    owner_name: str,
    stage: str,
    idle: timedelta,
    lead_url: str | None = None,
    owner_slack_id: str | None = None,
) -> tuple[str, Blocks]:
    """To the owner: the lead has sat at ``stage`` (a stage's value, ``meeting_booked``)
    for ``idle`` with nothing logged."""
    lead, owner, quiet = _lead(lead_name, company), _cut(owner_name), _duration(idle)
    at = _cut(stage.replace("_", " "))
    text = (
        f"{owner}, {lead} has been at {at} for {quiet} with no activity. Log what happened "
        "or move the lead on."
    )
    blocks = [
        _section(
            f"{_mention(owner, owner_slack_id)}, *{_esc(lead)}* has been at *{_esc(at)}* for "
            f"*{quiet}* with no activity.\nLog what happened or move the lead on."
        ),
        *_open_lead(lead_url),
    ]
    return text, blocks


def reassigned(
    lead_name: str,
    company: str | None,
    new_owner_name: str,
    previous_owner_name: str | None,
    reason: str,
    sla_lapsed: bool,
    deadline: datetime | None = None,
    lead_url: str | None = None,
    new_owner_slack_id: str | None = None,
) -> tuple[str, Blocks]:
    """To the new owner: the lead is theirs now, because ``previous_owner_name`` let the
    follow-up SLA lapse (``sla_lapsed``) or because someone reassigned it; ``reason`` says
    why in words (``"no first contact within 15 min"``, ``"Sam is on leave"``).
    ``deadline``: when the new owner's first contact is due, if an SLA applies."""
    lead, owner = _lead(lead_name, company), _cut(new_owner_name)
    before = _cut(previous_owner_name) if previous_owner_name else "its previous owner"
    why = _cut(reason, PROSE_LIMIT)
    how = (
        f"{before} did not follow up in time ({why})"
        if sla_lapsed
        else f"it was reassigned from {before}: {why}"
    )
    due = f" Please reach out by {_plain_time(deadline)}." if deadline else ""
    text = f"{owner}, {lead} is yours now: {how}.{due}"
    slack_due = f"\nPlease reach out by *{_slack_time(deadline)}*." if deadline else ""
    blocks = [
        _section(
            f"{_mention(owner, new_owner_slack_id)}, *{_esc(lead)}* is yours now: "
            f"{_esc(how)}.{slack_due}"
        ),
        *_open_lead(lead_url),
    ]
    return text, blocks


def win_announcement(
    rep_name: str,
    company: str,
    amount: Decimal,
    currency: str,
    cycle_days: int,
    account_manager_name: str | None = None,
    rep_slack_id: str | None = None,
) -> tuple[str, Blocks]:
    """For the team's wins channel: ``rep_name`` won ``company`` for ``amount`` after a
    sales cycle of ``cycle_days`` days; ``account_manager_name`` takes the customer over."""
    rep, customer, money = _cut(rep_name), _cut(company), _money(amount, currency)
    cycle = _days(cycle_days)
    onward = (
        f"{customer} now goes to {_cut(account_manager_name)} in account management."
        if account_manager_name
        else ""
    )
    text = f"{rep} won {customer}: {money}, closed in {cycle}. {onward}".rstrip()
    blocks = [
        _section(
            f":tada: {_mention(rep, rep_slack_id)} won *{_esc(customer)}*: *{_esc(money)}*, "
            f"closed in {cycle}."
        ),
        *([_context(_esc(onward))] if onward else []),
    ]
    return text, blocks


def account_manager_took_over(
    account_manager_name: str, company: str, account_manager_slack_id: str | None = None
) -> tuple[str, Blocks]:
    """The reply in the win's thread: account management has the customer now."""
    manager, customer = _cut(account_manager_name), _cut(company)
    text = f"{manager} in account management has taken {customer} over."
    who = _mention(manager, account_manager_slack_id)
    return text, [
        _section(f":handshake: {who} in account management has taken *{_esc(customer)}* over.")
    ]


def handoff_to_account_manager(
    account_manager_name: str,
    company: str,
    rep_name: str,
    contact_name: str,
    contact_email: str,
    amount: Decimal,
    currency: str,
    close_date: date,
    notes: str | None = None,
    lead_url: str | None = None,
    account_manager_slack_id: str | None = None,
) -> tuple[str, Blocks]:
    """To the account manager: ``company`` is their new customer, won by ``rep_name``:
    who to contact, what was sold, and the rep's ``notes`` for the onboarding."""
    manager, customer, rep = _cut(account_manager_name), _cut(company), _cut(rep_name)
    contact, email = _cut(contact_name), _cut(contact_email)
    money, closed = _money(amount, currency), close_date.isoformat()
    text = (
        f"{manager}, {customer} is your new customer: {rep} closed a {money} deal on "
        f"{closed}. Main contact: {contact} <{email}>. Please start the onboarding."
    )
    blocks = [
        _section(
            f"{_mention(manager, account_manager_slack_id)}, *{_esc(customer)}* is your new "
            "customer. Please start the onboarding."
        ),
        _fields(
            ("Customer", customer),
            ("Deal", money),
            ("Closed", closed),
            ("Won by", rep),
            ("Contact", contact),
            ("Email", email),
        ),
    ]
    if notes:
        blocks.append(_section(f"*Notes from {_esc(rep)}*\n{_esc(_cut(notes, PROSE_LIMIT))}"))
    blocks.extend(_open_lead(lead_url))
    return text, blocks


# ----------------------------------------------------------------------------- helpers


def _open_lead(lead_url: str | None) -> Blocks:
    if not lead_url:
        return []
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Open lead"},
        "url": lead_url,
        "action_id": "open_lead",
    }
    return [{"type": "actions", "elements": [button]}]
