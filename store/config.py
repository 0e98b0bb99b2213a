"""The routing configuration as versioned data: one draft that admins edit, immutable
numbered versions made by publishing it, an audit entry for every change, and each pool's
rotation state.

- ``save_draft`` is optimistic: it names the draft revision it was based on and is
  refused (``StaleDraft``) when somebody saved in between.
- ``publish`` checks the draft (``domain.config_checks.problems``), stores it as the next
  version, and brings the ``reps`` table in line with the document's reps.
- ``rollback`` publishes an earlier version's document again, as a new version, and makes
  it the draft.
- ``latest_version`` is one indexed query: a worker asks it per decision and reloads the
  configuration (``published``) only when the number moved.
- ``save_pool_state`` is a compare-and-set on the pool's revision: of two decisions taken
  from the same state, one is stored and the other re-reads and decides again.

Every function works in the caller's session and transaction; none commits.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from domain.config import ConfigError, Problem, RoutingConfig
from domain.config_checks import validated
from domain.config_yaml import dump_yaml
from domain.lead import normalize_email
from domain.rotation import PoolState
from store.models import ConfigAudit, ConfigDraft, ConfigVersion, PoolStateRow, Rep, utcnow

AuditAction = Literal["draft_saved", "published", "rolled_back", "imported"]
DRAFT_ID = 1


class StaleDraft(Exception):
    """The draft was saved by somebody else since the revision this save was based on;
    re-read it (``get_draft``) and apply the change again."""

    def __init__(self, expected: int, current: int, updated_by: str | None) -> None:
        by = f" by {updated_by}" if updated_by else ""
        super().__init__(
            f"the draft is at revision {current}{by}, not {expected}: it changed since it "
            "was read; re-read it and apply the change again"
        )
        self.expected = expected
        self.current = current
        self.updated_by = updated_by


class UnknownVersion(LookupError):
    """No published version has that number."""


@dataclass(frozen=True)
class Draft:
    config: RoutingConfig
    revision: int
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class VersionInfo:
    """A published version: number, when, who, note, and a unified diff of its YAML
    against the version before it (against nothing for version 1)."""

    version: int
    published_at: datetime
    published_by: str
    note: str
    diff: str


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    version: int | None
    diff: str


# ---------------------------------------------------------------------------- the draft


def get_draft(session: Session) -> Draft | None:
    """The draft, or None when none was ever saved."""
    row = session.get(ConfigDraft, DRAFT_ID)
    if row is None:
        return None
    return Draft(
        config=RoutingConfig.model_validate(row.document),
        revision=row.revision,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def save_draft(
    session: Session,
    config: RoutingConfig,
    actor: str,
    expected_revision: int | None,
    *,
    action: AuditAction = "draft_saved",
) -> int:
    """Store ``config`` as the draft; its new revision.

    ``expected_revision`` is the revision the change was based on (0: there was no draft
    yet); ``StaleDraft`` when the stored one differs. ``None`` replaces whatever is there
    (an import). Saving the document the draft already holds changes nothing."""
    row = _locked_draft(session)
    current = row.revision if row is not None else 0
    if expected_revision is not None and expected_revision != current:
        raise StaleDraft(expected_revision, current, row.updated_by if row else None)
    document = config.dump()
    if row is not None and row.document == document:
        return current
    before = _yaml(row.document) if row is not None else ""
    revision = _write_draft(session, row, document, actor)
    _audit(
        session,
        actor,
        action,
        None,
        _diff(before, dump_yaml(config), _draft_label(current), _draft_label(revision)),
    )
    return revision


def _locked_draft(session: Session) -> ConfigDraft | None:
    """The draft row, locked until the transaction ends (PostgreSQL; on SQLite the write
    transaction holds the database's lock already)."""
    return session.scalars(
        select(ConfigDraft)
        .where(ConfigDraft.id == DRAFT_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def _write_draft(
    session: Session, row: ConfigDraft | None, document: dict[str, Any], actor: str
) -> int:
    now = utcnow()
    if row is not None:
        row.document = document
        row.revision += 1
        row.updated_by = actor
        row.updated_at = now
        session.flush()
        return row.revision
    inserted = _changed(
        session,
        _insert(session, ConfigDraft)
        .values(id=DRAFT_ID, document=document, revision=1, updated_by=actor, updated_at=now)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(ConfigDraft.id),
    )
    if not inserted:  # somebody created the draft since we looked
        existing = session.get(ConfigDraft, DRAFT_ID, populate_existing=True)
        if existing is None:
            raise StaleDraft(0, 1, None)
        raise StaleDraft(0, existing.revision, existing.updated_by)
    return 1


def _draft_label(revision: int) -> str:
    return f"draft revision {revision}" if revision else "no draft"


# ---------------------------------------------------------------------------- versions


def publish(
    session: Session, actor: str, note: str = "", expected_revision: int | None = None
) -> int:
    """Publish the draft as the next version; its number. ``ConfigError`` (nothing
    published) when there is no draft or it has problems; ``StaleDraft`` when
    ``expected_revision`` (the revision the publisher reviewed) is given and the draft
    was saved since."""
    row = _locked_draft(session)
    if row is None:
        raise ConfigError(
            [Problem(location="(draft)", message="there is no draft to publish; save one first")]
        )
    if expected_revision is not None and expected_revision != row.revision:
        raise StaleDraft(expected_revision, row.revision, row.updated_by)
    config = validated(row.document)
    return _publish(session, config, actor, note, "published")


def rollback(session: Session, version: int, actor: str) -> int:
    """Publish version ``version``'s document again as a new version, and make it the
    draft; the new version's number. ``UnknownVersion`` when there is no such version,
    ``ConfigError`` when its document does not pass today's checks."""
    draft = _locked_draft(session)
    old = session.get(ConfigVersion, version)
    if old is None:
        raise UnknownVersion(f"there is no configuration version {version}")
    config = validated(old.document)
    number = _publish(session, config, actor, f"rollback to version {version}", "rolled_back")
    if draft is None or draft.document != old.document:
        _write_draft(session, draft, config.dump(), actor)
    return number


def _publish(
    session: Session, config: RoutingConfig, actor: str, note: str, action: AuditAction
) -> int:
    latest = _latest(session)
    number = (latest.version if latest is not None else 0) + 1
    session.add(
        ConfigVersion(
            version=number,
            document=config.dump(),
            published_at=utcnow(),
            published_by=actor,
            note=note,
        )
    )
    before = _yaml(latest.document) if latest is not None else ""
    previous = f"version {latest.version}" if latest is not None else "no version"
    _audit(
        session,
        actor,
        action,
        number,
        _diff(before, dump_yaml(config), previous, f"version {number}"),
    )
    sync_reps(session, config)
    session.flush()
    return number


def _latest(session: Session) -> ConfigVersion | None:
    return session.scalars(
        select(ConfigVersion).order_by(ConfigVersion.version.desc()).limit(1)
    ).first()


def latest_version(session: Session) -> int | None:
    """The number of the latest published version (None: nothing published yet)."""
    value = session.scalar(select(func.max(ConfigVersion.version)))
    return int(value) if value is not None else None


def published(session: Session) -> tuple[int, RoutingConfig] | None:
    """The latest published version and its configuration."""
    row = _latest(session)
    if row is None:
        return None
    return row.version, RoutingConfig.model_validate(row.document)


def version(session: Session, number: int) -> RoutingConfig:
    """Published version ``number``'s configuration; ``UnknownVersion``."""
    row = session.get(ConfigVersion, number)
    if row is None:
        raise UnknownVersion(f"there is no configuration version {number}")
    return RoutingConfig.model_validate(row.document)


def versions(session: Session, limit: int | None = None) -> list[VersionInfo]:
    """Published versions, newest first (the latest ``limit`` when given), each with its
    diff against the version before it."""
    query = select(ConfigVersion).order_by(ConfigVersion.version.desc())
    if limit is not None:
        query = query.limit(limit + 1)  # one more: the base of the oldest one's diff
    rows = list(session.scalars(query))
    out: list[VersionInfo] = []
    texts = [_yaml(row.document) for row in rows]
    for index, row in enumerate(rows if limit is None else rows[:limit]):
        older = index + 1 < len(rows)
        before = texts[index + 1] if older else ""
        previous = f"version {rows[index + 1].version}" if older else "no version"
        out.append(
            VersionInfo(
                version=row.version,
                published_at=row.published_at,
                published_by=row.published_by,
                note=row.note,
                diff=_diff(before, texts[index], previous, f"version {row.version}"),
            )
        )
    return out


def draft_diff(session: Session) -> str:
    """A unified diff of the draft's YAML against the latest published version's: what
    publishing it would change ("" when there is no draft or it changes nothing)."""
    draft = session.get(ConfigDraft, DRAFT_ID)
    if draft is None:
        return ""
    latest = _latest(session)
    before = _yaml(latest.document) if latest is not None else ""
    previous = f"version {latest.version}" if latest is not None else "no version"
    return _diff(before, _yaml(draft.document), previous, _draft_label(draft.revision))


def audit_log(session: Session, limit: int = 100) -> list[AuditEntry]:
    """The latest changes, newest first."""
    rows = session.scalars(select(ConfigAudit).order_by(ConfigAudit.id.desc()).limit(limit))
    return [AuditEntry(r.at, r.actor, r.action, r.version, r.diff) for r in rows]


def _audit(
    session: Session, actor: str, action: AuditAction, version: int | None, diff: str
) -> None:
    session.add(ConfigAudit(at=utcnow(), actor=actor, action=action, version=version, diff=diff))


def _yaml(document: dict[str, Any]) -> str:
    """A stored document as canonical YAML (as JSON when it no longer fits the model)."""
    try:
        return dump_yaml(RoutingConfig.model_validate(document))
    except ValidationError:
        return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _diff(before: str, after: str, from_label: str, to_label: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=from_label,
            tofile=to_label,
        )
    )


# ---------------------------------------------------------------------------- reps


def sync_reps(session: Session, config: RoutingConfig) -> None:
    """Make the ``reps`` table follow the document: each of its reps (by email) created
    or updated (name, CRM owner id, Slack user id, active), keeping its id; a rep the
    document no longer lists becomes inactive (leads and notifications still name it)."""
    rows = list(session.scalars(select(Rep).order_by(Rep.id)))
    by_email: dict[str, Rep] = {}
    for row in rows:
        by_email.setdefault(normalize_email(row.email), row)
    listed: set[int] = set()
    for wanted in config.reps:
        rep = by_email.get(wanted.email)
        if rep is None:
            rep = Rep(email=wanted.email)
            session.add(rep)
        else:
            listed.add(rep.id)
        rep.name = wanted.name
        rep.crm_owner_id = wanted.crm_owner_id
        rep.slack_user_id = wanted.slack_user_id
        rep.active = wanted.active
    for row in rows:
        if row.id not in listed:
            row.active = False


# ---------------------------------------------------------------------------- pool states


def pool_states(session: Session, names: list[str]) -> dict[str, tuple[PoolState, int]]:
    """The stored rotation state and revision of each named pool that has one (a pool
    never stored is missing: save it with ``expected_revision=None``)."""
    if not names:
        return {}
    rows = session.scalars(select(PoolStateRow).where(PoolStateRow.name.in_(names)))
    return {row.name: (PoolState.model_validate(row.state), row.revision) for row in rows}


def save_pool_state(
    session: Session, name: str, state: PoolState, expected_revision: int | None
) -> bool:
    """Store ``state`` as pool ``name``'s if its revision is still ``expected_revision``
    (``None``: the pool has no stored state yet). False when another decision stored its
    state first: re-read (``pool_states``) and decide again."""
    document = state.model_dump(mode="json")
    if expected_revision is None:
        statement: Any = (
            _insert(session, PoolStateRow)
            .values(name=name, state=document, revision=1)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(PoolStateRow.revision)
        )
    else:
        statement = (
            update(PoolStateRow)
            .where(PoolStateRow.name == name, PoolStateRow.revision == expected_revision)
            .values(state=document, revision=expected_revision + 1)
            .returning(PoolStateRow.revision)
            .execution_options(synchronize_session=False)
        )
    return _changed(session, statement)


def _insert(session: Session, table: Any) -> Any:
    """The backend's INSERT (both have ON CONFLICT DO NOTHING)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _changed(session: Session, statement: Any) -> bool:
    """Whether ``statement`` (with RETURNING) wrote a row. (psycopg reports no row count
    for INSERT ... ON CONFLICT DO NOTHING, so the returned row is the signal.)"""
    return session.execute(statement).first() is not None
