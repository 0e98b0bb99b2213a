"""Accounts of the admin app: roles and the rules about them (pure, no I/O).

A role grants everything the roles below it grant: ``viewer`` reads, ``team_lead`` also
edits the availability and pool memberships of the pools it manages, ``admin`` does
everything (configuration, publishing, users)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class Role(StrEnum):
    """In order of power: each role may do what the ones before it may."""

    viewer = "viewer"
    team_lead = "team_lead"
    admin = "admin"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


_RANK = {role: rank for rank, role in enumerate(Role)}


def at_least(role: Role, needed: Role) -> bool:
    """Whether ``role`` may do what ``needed`` may."""
    return _RANK[Role(role)] >= _RANK[Role(needed)]


# ---------------------------------------------------------------------------- passwords

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024


def password_problem(password: str) -> str | None:
    """Why ``password`` is refused as a new password, or None. Length is what counts (a
    passphrase beats a short password full of symbols); the upper bound keeps hashing
    cheap for the server."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"the password must be at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"the password must be at most {MAX_PASSWORD_CHARS} characters"
    if password != password.strip():
        return "the password must not start or end with a space"
    return None


# ---------------------------------------------------------------------------- login throttle


def throttle_wait(
    window_started_at: datetime | None,
    failures: int,
    now: datetime,
    *,
    max_failures: int,
    window: timedelta,
) -> timedelta | None:
    """How long a key (an account or a client address) must wait before its next login
    attempt, or None when it may try now: ``max_failures`` failures within a fixed
    ``window`` close it until the window ends."""
    if window_started_at is None or failures < max_failures:
        return None
    ends = window_started_at + window
    return ends - now if ends > now else None


def minutes_text(wait: timedelta) -> str:
    """``wait`` rounded up to whole minutes, as words: "1 minute", "14 minutes"."""
    minutes = max(1, -(-int(wait.total_seconds()) // 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
