"""Durations as admins write them in the configuration: ``90s``, ``15m``, ``2h``, ``7d``,
``1w`` or compound, ``1h30m``. ``Duration`` is a ``timedelta`` field that reads that text
and writes it back in one canonical form (days, hours, minutes and seconds, largest
first: ``90s`` is written ``1m30s``, ``1w`` is ``7d``), so that an exported document
reads back the same."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

MAX_DURATION = timedelta(days=3650)
FORM = "use a duration like 90s, 15m, 2h or 7d"
_UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_PATTERN = re.compile(
    r"^(?:(\d{1,7})w)?(?:(\d{1,7})d)?(?:(\d{1,7})h)?(?:(\d{1,7})m)?(?:(\d{1,7})s)?$"
)
_JSON_PATTERN = r"^\s*(\d+\s*[wdhms]\s*)+$"


def parse_duration(text: str) -> timedelta:
    """The duration ``text`` names: whole numbers with a unit each (``w``, ``d``, ``h``,
    ``m``, ``s``), largest unit first, case and spaces ignored. ``ValueError`` saying the
    expected form otherwise, and for zero, or more than 3650 days."""
    compact = "".join(text.split()).lower()
    found = _PATTERN.fullmatch(compact) if compact else None
    if found is None:
        raise ValueError(f"{text!r} is not a duration: {FORM}")
    seconds = sum(
        int(amount) * size
        for amount, (_, size) in zip(found.groups(), _UNITS, strict=True)
        if amount
    )
    return _bounded(timedelta(seconds=seconds), text)


def format_duration(value: timedelta) -> str:
    """``value`` in the canonical form ``parse_duration`` reads: ``1d12h``, ``15m`` (whole
    seconds; ``0s`` for zero or less)."""
    seconds = value // timedelta(seconds=1)
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in _UNITS[1:]:  # weeks are written as days: 14d, not 2w
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def _bounded(value: timedelta, shown: str) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"{shown!r} is too short: it must be longer than zero ({FORM})")
    if value > MAX_DURATION:
        raise ValueError(f"{shown!r} is too long: at most 3650d (ten years)")
    if value % timedelta(seconds=1):
        raise ValueError(f"{shown!r} is not a whole number of seconds ({FORM})")
    return value


def _duration(value: Any) -> timedelta:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, timedelta):
        readable = value > timedelta(0) and value % timedelta(seconds=1) == timedelta(0)
        return _bounded(value, format_duration(value) if readable else str(value))
    # A bare number is refused: 15 could be seconds, minutes or days.
    raise ValueError(f"{value!r} is not a duration: {FORM}")


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": _JSON_PATTERN, "examples": ["90s", "15m", "2h", "7d"]}
    ),
]
