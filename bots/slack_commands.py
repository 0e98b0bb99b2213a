"""``/leadflow``: what reps say about themselves, from Slack.

- ``/leadflow away until 2026-12-24``: no new leads until that day starts, in the rep's
  own time zone (``back`` ends it earlier); routing reads it at its next decision.
- ``/leadflow back``: available again now.
- ``/leadflow status``: available or away, and the rep's open leads.

Answers are visible to the rep only."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time

from sqlalchemy import func, select

from bots.blocks.text import esc, slack_time
from bots.slack_people import Actor, rep_timezone
from domain.lead import Stage
from store import availability
from store.db import Database
from store.models import Lead, Rep

USAGE = "Try `/leadflow away until 2026-12-24`, `/leadflow back` or `/leadflow status`."
CLOSED = (Stage.disqualified.value, Stage.handed_off.value, Stage.won.value)


def run_command(db: Database, actor: Actor, text: str, now: datetime) -> str:
    """The answer to ``/leadflow <text>`` from ``actor`` (mrkdwn)."""
    words = text.strip().split()
    if not words:
        return USAGE
    if actor.email is None:
        return "Leadflow could not read your email from Slack, so it cannot tell which rep you are."
    with db.session() as session:
        rep = session.scalars(select(Rep).where(Rep.email == actor.email)).first()
        if rep is None or not rep.active:
            return f"{esc(actor.email)} is not an active rep in Leadflow."
        zone = rep_timezone(session, rep.email)
        verb = words[0].lower()
        if verb == "away":
            rest = words[1:]
            if rest and rest[0].lower() == "until":
                rest = rest[1:]
            if len(rest) != 1:
                return "Say until when: `/leadflow away until 2026-12-24`."
            try:
                day = date.fromisoformat(rest[0])
            except ValueError:
                return f"`{esc(rest[0])}` is not a date like 2026-12-24."
            until = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
            if until <= now:
                return "That day has already begun: say a later date, or `/leadflow back`."
            availability.set_away(session, rep.email, until, f"slack:{actor.slack_id}")
            return (
                f"You are away until {slack_time(until)} ({zone.key}): no new leads go to "
                "you until then. `/leadflow back` ends it earlier."
            )
        if verb == "back":
            was = availability.set_back(session, rep.email)
            return (
                "Welcome back: new leads can reach you again."
                if was
                else ("You were not marked away: new leads can reach you.")
            )
        if verb == "status":
            away = availability.away_of(session, rep.email, now)
            open_leads = session.scalar(
                select(func.count())
                .select_from(Lead)
                .where(Lead.owner_rep_id == rep.id, Lead.stage.not_in(CLOSED))
            )
            state = f"away until {slack_time(away)}" if away else "available for new leads"
            return f"You are {state}. You have {open_leads or 0} open leads."
    return f"I do not know `{esc(words[0])}`. {USAGE}"


async def answer(db: Database, actor: Actor, text: str) -> str:
    return await asyncio.to_thread(run_command, db, actor, text, datetime.now(UTC))
