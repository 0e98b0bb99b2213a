"""Text for Slack: values from forms and people shortened to Slack's limits and escaped
for mrkdwn (``&`` first, then ``<`` and ``>``), so a lead named ``<!channel>`` pings nobody
and ``<https://evil.example|Invoice>`` links nowhere; times, durations and money as people
read them. Shared by every message builder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

Blocks = list[dict[str, Any]]

NAME_LIMIT = 200
PROSE_LIMIT = 1000
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def cut(value: str, limit: int = NAME_LIMIT) -> str:
    """``value`` on one line, at most ``limit`` characters: every value from a form or a
    person passes here first, so no text outgrows Slack's limits."""
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def esc(text: str) -> str:
    """``text`` escaped for Slack mrkdwn (``&``, ``<``, ``>``), so it cannot mention or
    link anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def lead_name(name: str, company: str | None) -> str:
    return f"{cut(name)} ({cut(company)})" if company else cut(name)


def mention(name: str, slack_user_id: str | None) -> str:
    return f"<@{slack_user_id}>" if slack_user_id else esc(name)


def duration(delta: timedelta) -> str:
    """``delta`` as a person says it: "under a minute", "14 min", "2 h 5 min", "3 days"."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    whole, hours = divmod(hours, 24)
    return f"{days(whole)} {hours} h" if hours and whole < 2 else days(whole)


def days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"


def times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def plain_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def slack_time(at: datetime) -> str:
    """``at`` in the reader's own time zone (Slack's date formatting), UTC as fallback."""
    stamp = int(at.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} at {{time}}|{plain_time(at)}>"


def money(amount: Decimal, currency: str) -> str:
    """``amount`` with thousands separators, cents only when there are any: "$48,000",
    "€1,250.50", "48,000 CHF"."""
    code = cut(currency, 3).upper()
    number = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    symbol = SYMBOLS.get(code)
    return f"{symbol}{number}" if symbol else f"{number} {code}"


def section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def fields(*pairs: tuple[str, str]) -> dict[str, Any]:
    """A section of label/value fields; the values are escaped here."""
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{esc(v) or '—'}"} for k, v in pairs],
    }


def context(mrkdwn: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}
