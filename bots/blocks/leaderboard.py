"""The weekly leaderboard's post in the wins channel."""

from __future__ import annotations

from datetime import date, timedelta

from bots.blocks.text import Blocks, context, cut, duration, esc, money, section
from domain.leaderboard import POINTS, LeaderRow, fastest_follow_up

MEDALS = {1: ":first_place_medal:", 2: ":second_place_medal:", 3: ":third_place_medal:"}


def leaderboard_message(rows: list[LeaderRow], first: date, last: date) -> tuple[str, Blocks]:
    period = f"{first:%d %b} to {last:%d %b %Y}"
    if not rows:
        text = f"Leaderboard {period}: no activity on leads this week."
        return text, [section(f"*Leaderboard, {period}*\nNo activity on leads this week.")]
    lines = []
    for row in rows[:10]:
        revenue = ", ".join(money(v, c) for c, v in sorted(row.revenue.items())) or "—"
        lines.append(
            f"{MEDALS.get(row.rank, f'{row.rank}.')} *{esc(cut(row.rep_name))}* · "
            f"{row.points} pts · {row.deals_won} won ({esc(revenue)}) · "
            f"{row.meetings_booked} meetings"
        )
    fastest = fastest_follow_up(rows)
    notes = []
    if fastest is not None and fastest.median_follow_up_s is not None:
        notes.append(
            f"Fastest follow-up: {esc(cut(fastest.rep_name))}, median "
            f"{duration(timedelta(seconds=fastest.median_follow_up_s))}"
        )
    scale = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in POINTS.items())
    notes.append(f"Points: {scale}")
    top = rows[0]
    text = f"Leaderboard {period}: {top.rep_name} leads with {top.points} points."
    return text, [
        section(f"*Leaderboard, {period}*\n" + "\n".join(lines)),
        context("\n".join(notes)),
    ]
