"""Accounts of the admin app and their queries: users (argon2 password hashes), web
sessions (stored by the SHA-256 of the cookie's token), per-user API tokens (stored by
their SHA-256), failed-login counters per account and per client address, and the audit
of account changes.

Every function works in the caller's session and transaction; none commits.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from domain.lead import normalize_email
from domain.users import Role, throttle_wait
from store.models import utcnow
from store.models_auth import ApiToken, LoginAttempt, User, UserAudit, WebSession

UserAction = Literal[
    "user_created",
    "role_changed",
    "password_reset",
    "user_deactivated",
    "user_reactivated",
    "token_created",
    "token_revoked",
]
TOKEN_PREFIX = "lf_"

_hasher = PasswordHasher()
# Verified against when the email is unknown, so that answer takes as long as a wrong
# password (no account enumeration by timing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UserExists(ValueError):
    """An account with that email exists already."""


class UnknownUser(LookupError):
    """No account has that email (or id)."""


def digest(token: str) -> str:
    """How a session or API token is stored: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


# ---------------------------------------------------------------------------- users


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == normalize_email(email))).first()


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def create_user(
    session: Session, email: str, name: str, role: Role, password: str, actor: str
) -> User:
    """A new active account; ``UserExists`` when the email has one."""
    address = normalize_email(email)
    if user_by_email(session, address) is not None:
        raise UserExists(f"an account for {address} exists already")
    user = User(
        email=address,
        name=name.strip() or address.split("@")[0],
        role=Role(role).value,
        password_hash=hash_password(password),
        active=True,
        created_at=utcnow(),
    )
    session.add(user)
    session.flush()
    audit(session, actor, "user_created", address, f"role {Role(role).label}")
    return user


def set_password(session: Session, user: User, password: str, actor: str) -> None:
    """Replace the password and end the user's sessions (a reset locks out whoever
    knew the old one)."""
    user.password_hash = hash_password(password)
    end_sessions(session, user.id)
    audit(session, actor, "password_reset", user.email)


def set_role(session: Session, user: User, role: Role, actor: str) -> None:
    if user.role == role.value:
        return
    before = user.role
    user.role = role.value
    audit(session, actor, "role_changed", user.email, f"{Role(before).label} → {role.label}")


def set_active(session: Session, user: User, active: bool, actor: str) -> None:
    """(De)activate an account; deactivating ends its sessions, and its API tokens are
    refused while it is inactive."""
    if user.active == active:
        return
    user.active = active
    if not active:
        end_sessions(session, user.id)
    audit(session, actor, "user_reactivated" if active else "user_deactivated", user.email)


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with that email and password, or None. The same work is done
    for an unknown email (a dummy hash is verified). A hash made with older parameters
    is replaced by one with today's."""
    user = user_by_email(session, email)
    stored = user.password_hash if user is not None else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


# ---------------------------------------------------------------------------- login throttle


@dataclass(frozen=True)
class Limit:
    key: str
    max_failures: int


def login_wait(
    session: Session, limits: list[Limit], window: timedelta, now: datetime | None = None
) -> timedelta | None:
    """The longest wait any of ``limits`` imposes before the next attempt, or None."""
    now = now or utcnow()
    rows = {
        r.key: r
        for r in session.scalars(
            select(LoginAttempt).where(LoginAttempt.key.in_([lim.key for lim in limits]))
        )
    }
    waits = [
        throttle_wait(
            rows[lim.key].window_started_at,
            rows[lim.key].count,
            now,
            max_failures=lim.max_failures,
            window=window,
        )
        for lim in limits
        if lim.key in rows
    ]
    found = [w for w in waits if w is not None]
    return max(found) if found else None


def record_failure(
    session: Session, keys: list[str], window: timedelta, now: datetime | None = None
) -> None:
    """Count a failed login against each key, in its fixed window (a new window starts
    when the last one is over)."""
    now = now or utcnow()
    for key in keys:
        row = session.get(LoginAttempt, key, with_for_update=True)
        if row is None:
            session.add(LoginAttempt(key=key, window_started_at=now, count=1))
        elif row.window_started_at + window <= now:
            row.window_started_at = now
            row.count = 1
        else:
            row.count += 1
    session.flush()


def clear_failures(session: Session, key: str) -> None:
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == key))


# ---------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    csrf_secret: str
    user: User


def start_session(session: Session, user: User, max_age: timedelta) -> str:
    """A new login of ``user``; the token for the cookie (only its digest is stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            id=digest(token),
            user_id=user.id,
            csrf_secret=secrets.token_hex(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + max_age,
        )
    )
    # Each login is also the moment to forget logins that ended long ago.
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    return token


def find_session(
    session: Session, token: str, idle: timedelta, now: datetime | None = None
) -> SessionInfo | None:
    """The live session of ``token`` with its active user: not past its absolute expiry
    nor idle for longer than ``idle``. Does not record the visit (``touch_session``)."""
    now = now or utcnow()
    row = session.get(WebSession, digest(token))
    if row is None or row.expires_at <= now or row.last_seen_at + idle <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return SessionInfo(row.id, row.csrf_secret, user)


def session_needs_touch(last_seen_at: datetime, idle: timedelta, now: datetime) -> bool:
    """Whether a visit should be written: at most once a minute (or a tenth of the idle
    time, when shorter), so reading pages does not write on every request."""
    return now - last_seen_at >= min(timedelta(minutes=1), idle / 10)


def last_seen(session: Session, session_id: str) -> datetime | None:
    row = session.get(WebSession, session_id)
    return row.last_seen_at if row is not None else None


def touch_session(session: Session, session_id: str, now: datetime | None = None) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.id == session_id)
        .values(last_seen_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )


def end_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id == digest(token)))


def end_sessions(session: Session, user_id: int) -> None:
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))


# ---------------------------------------------------------------------------- API tokens


def create_token(session: Session, user: User, name: str, actor: str) -> tuple[ApiToken, str]:
    """A new API token of ``user``: its row and the token itself (shown once, then only
    its digest and first 8 characters are kept)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        name=name.strip(),
        token_hash=digest(token),
        prefix=token[:8],
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit(session, actor, "token_created", user.email, f"{row.name} ({row.prefix}…)")
    return row, token


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
        )
    )


def revoke_token(session: Session, user: User, token_id: int, actor: str) -> bool:
    """Revoke ``user``'s token ``token_id``; False when it has no such live token."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    audit(session, actor, "token_revoked", user.email, f"{row.name} ({row.prefix}…)")
    return True


def token_user(session: Session, token: str) -> tuple[ApiToken, User] | None:
    """The live token ``token`` and its active user, or None (unknown, revoked, or its
    user deactivated)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return row, user


def mark_token_used(session: Session, token_id: int, now: datetime | None = None) -> None:
    session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id)
        .values(last_used_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )


# ---------------------------------------------------------------------------- audit


@dataclass(frozen=True)
class UserAuditEntry:
    at: datetime
    actor: str
    action: str
    subject: str
    detail: str


def audit(session: Session, actor: str, action: UserAction, subject: str, detail: str = "") -> None:
    session.add(UserAudit(at=utcnow(), actor=actor, action=action, subject=subject, detail=detail))


def user_audit_log(session: Session, limit: int = 100) -> list[UserAuditEntry]:
    """The latest account changes, newest first."""
    rows = session.scalars(select(UserAudit).order_by(UserAudit.id.desc()).limit(limit))
    return [UserAuditEntry(r.at, r.actor, r.action, r.subject, r.detail) for r in rows]
