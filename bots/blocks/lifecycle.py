"""Messages of a lead's life after its assignment: follow-up SLA reminders and escalations,
stale-lead nudges, reassignments, the wins channel's announcement and the hand-off to
account management.

Every builder returns ``(text, blocks)``. ``text`` is plain prose: the inbox shows it as is,
and Slack uses it for notifications (a Slack sender escapes it). ``blocks`` is Block Kit
whose mrkdwn has every value that came from a form or a person escaped, so a lead named
``<!channel>`` cannot ping anyone; long values are shortened to stay within Slack's limits.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

Blocks = list[dict[str, Any]]

NAME_LIMIT = 200
PROSE_LIMIT = 1000
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


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
) -> tuple[str, Blocks]:
    """To the pool's manager: the lead has had no first contact for ``elapsed``, after
    ``reassignments`` reassignments; ``owner_name`` holds it now."""
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


def _cut(value: str, limit: int = NAME_LIMIT) -> str:
    """``value`` on one line, at most ``limit`` characters: every value from a form or a
    person passes here first, so no text outgrows Slack's limits."""
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _esc(text: str) -> str:
    """``text`` escaped for Slack mrkdwn (``&``, ``<``, ``>``), so it cannot mention or
    link anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _lead(name: str, company: str | None) -> str:
    return f"{_cut(name)} ({_cut(company)})" if company else _cut(name)


def _mention(name: str, slack_user_id: str | None) -> str:
    return f"<@{slack_user_id}>" if slack_user_id else _esc(name)


def _duration(delta: timedelta) -> str:
    """``delta`` as a person says it: "under a minute", "14 min", "2 h 5 min", "3 days"."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{_days(days)} {hours} h" if hours and days < 2 else _days(days)


def _days(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


def _times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def _plain_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _slack_time(at: datetime) -> str:
    """``at`` in the reader's own time zone (Slack's date formatting), UTC as fallback."""
    stamp = int(at.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} at {{time}}|{_plain_time(at)}>"


def _money(amount: Decimal, currency: str) -> str:
    """``amount`` with thousands separators, cents only when there are any: "$48,000",
    "€1,250.50", "48,000 CHF"."""
    code = _cut(currency, 3).upper()
    number = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    symbol = _SYMBOLS.get(code)
    return f"{symbol}{number}" if symbol else f"{number} {code}"


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def _fields(*pairs: tuple[str, str]) -> dict[str, Any]:
    """A section of label/value fields; the values are escaped here."""
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_esc(v) or '—'}"} for k, v in pairs],
    }


def _context(mrkdwn: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


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
