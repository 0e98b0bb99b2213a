"""Building SOQL from values safely: quoted string literals, ``LIKE`` patterns, record
ids, and the unquoted date and datetime literals SOQL wants. No value reaches a query
except through these functions, so a lead's email or company cannot break or change one."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from connectors.base import InvalidRecord

# A Salesforce record id: 15 case-sensitive characters, or 18 with the checksum suffix.
_ID = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?")
# SOQL's escape sequences inside a quoted literal (the SOQL and SOSL reference,
# "Quoted String Escape Sequences"); other control characters are dropped.
_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
# In a LIKE pattern these two are wildcards unless escaped.
_LIKE_ESCAPES = {**_ESCAPES, "%": "\\%", "_": "\\_"}


def _escape(value: str, table: dict[str, str]) -> str:
    return "".join(table.get(char, char) for char in value if char in table or char.isprintable())


def quote(value: str) -> str:
    """``value`` as a quoted SOQL string literal."""
    return f"'{_escape(value, _ESCAPES)}'"


def like_containing(value: str) -> str:
    """A quoted ``LIKE`` pattern matching any text that contains ``value`` literally."""
    return f"'%{_escape(value, _LIKE_ESCAPES)}%'"


def is_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


def quote_id(value: str, what: str = "record") -> str:
    """``value`` as a quoted id literal; ``InvalidRecord`` when it is not a Salesforce id
    (a malformed id would fail the whole query, or worse, change it)."""
    if not is_id(value):
        raise InvalidRecord(f"{value!r} is not a Salesforce {what} id")
    return f"'{value}'"


def datetime_literal(moment: datetime) -> str:
    """An unquoted SOQL dateTime literal in UTC, to the second (``2026-12-01T10:00:00Z``)."""
    if moment.tzinfo is None:
        raise ValueError("a SOQL datetime needs a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def date_literal(day: date) -> str:
    """An unquoted SOQL date literal (``2026-12-01``)."""
    return day.isoformat()


def parse_datetime(value: str) -> datetime:
    """A datetime as Salesforce writes it (``2026-12-01T10:00:00.000+0000``) or as a poll
    mark holds it (``2026-12-01T10:00:00Z``)."""
    text = value.strip()
    if text.endswith("+0000"):
        text = text[:-5] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def same_id(left: str | None, right: str | None) -> bool:
    """Whether two ids name the same record (a 15- and an 18-character id of one record
    share their first 15 characters)."""
    if not left or not right:
        return False
    return left[:15] == right[:15]
