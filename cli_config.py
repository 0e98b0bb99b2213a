"""``leadflow config``: the routing configuration as YAML on the command line.

``export`` prints the published configuration (or the draft, or an older version);
``import FILE`` makes FILE the draft (``--publish`` publishes it too); ``validate FILE``
checks a file without touching the database; ``publish``, ``rollback N`` and ``versions``
work on the versions. Each talks to the app database only (no Temporal). Changes are
audited under ``--actor`` (default: the OS user).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from domain.config import ConfigError, Problem
from domain.config_yaml import dump_yaml, load_yaml, with_lines

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from settings import Settings
    from store.db import Database

log = logging.getLogger("leadflow")

DEMO_CONFIG = Path(__file__).resolve().parent / "config" / "demo.yaml"
DEMO_ACTOR = "leadflow dev"


def add_config_parser(sub: Any) -> None:
    """Register ``config`` and its subcommands on the ``leadflow`` parser's subparsers."""
    config = sub.add_parser("config", help="export, import, validate and publish routing")
    commands = config.add_subparsers(dest="config_command", required=True)
    actor = argparse.ArgumentParser(add_help=False)
    actor.add_argument("--actor", help="who makes the change, for the audit (default: OS user)")

    export = commands.add_parser("export", help="print the published configuration as YAML")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--draft", action="store_true", help="print the draft instead")
    which.add_argument("--version", type=int, metavar="N", help="print version N instead")

    load = commands.add_parser(
        "import", parents=[actor], help="make FILE the draft (with --publish, publish it)"
    )
    load.add_argument("file", metavar="FILE", help="a YAML file, or - for standard input")
    load.add_argument("--publish", action="store_true", help="publish it as the next version")
    load.add_argument("--note", default="", help="the version's note (with --publish)")

    check = commands.add_parser("validate", help="check FILE; one line per problem")
    check.add_argument("file", metavar="FILE", help="a YAML file, or - for standard input")

    publish = commands.add_parser("publish", parents=[actor], help="publish the draft")
    publish.add_argument("--note", default="", help="what changed, for the version list")

    rollback = commands.add_parser(
        "rollback", parents=[actor], help="publish version N again as a new version"
    )
    rollback.add_argument("version", type=int, metavar="N")

    versions = commands.add_parser("versions", help="list published versions, newest first")
    versions.add_argument("--diff", action="store_true", help="show each version's changes")
    versions.add_argument("--limit", type=int, default=None, metavar="N")


def run_config(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``leadflow config <command>``; the exit status."""
    from sqlalchemy.exc import DBAPIError

    command: str = args.config_command
    if command == "validate":
        return _validate(args.file)
    from store.db import Database

    db = Database(settings.effective_database_url, pool_size=1)
    try:
        if command == "export":
            return _export(db, draft=args.draft, number=args.version)
        if command == "versions":
            return _versions(db, diff=args.diff, limit=args.limit)
        actor = args.actor or _os_user()
        if command == "import":
            return _import(db, args.file, actor, publish=args.publish, note=args.note)
        if command == "publish":
            return _publish(db, actor, args.note)
        return _rollback(db, args.version, actor)
    except DBAPIError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig else type(err).__name__
        _fail(
            f"cannot use the database at LEADFLOW_DATABASE_URL ({reason}); "
            "is it migrated (leadflow db upgrade)?"
        )
        return 1
    finally:
        db.dispose()


def seed_demo_configuration(session: Session) -> int | None:
    """On a database with no configuration version: import ``config/demo.yaml`` as the
    draft and publish it as version 1, by "leadflow dev". Skipped (None) when versions
    exist, or when the database has reps the demo does not list (publishing would make
    them inactive). The version published, or None."""
    from sqlalchemy import select

    from store import config as config_store
    from store.models import Rep

    if config_store.latest_version(session) is not None:
        return None
    config = load_yaml(DEMO_CONFIG.read_text(encoding="utf-8"))
    demo = {r.email for r in config.reps}
    others = [e for e in session.scalars(select(Rep.email)) if e.strip().lower() not in demo]
    if others:
        log.warning(
            "no routing configuration is published and the database has reps that %s does "
            "not list; publish one with: leadflow config import FILE --publish",
            DEMO_CONFIG.name,
        )
        return None
    config_store.save_draft(session, config, DEMO_ACTOR, None, action="imported")
    return config_store.publish(session, DEMO_ACTOR, note=f"demo ({DEMO_CONFIG.name})")


# ---------------------------------------------------------------------------- commands


def _validate(file: str) -> int:
    text = _read(file)
    if text is None:
        return 1
    try:
        load_yaml(text)
    except ConfigError as err:
        _report(file, err.problems, sys.stdout)
        return 1
    sys.stdout.write("valid\n")
    return 0


def _export(db: Database, *, draft: bool, number: int | None) -> int:
    from store import config as config_store

    with db.read() as session:
        if draft:
            found = config_store.get_draft(session)
            if found is None:
                _fail("there is no draft (leadflow config import FILE makes one)")
                return 1
            config = found.config
        elif number is not None:
            try:
                config = config_store.version(session, number)
            except config_store.UnknownVersion as err:
                _fail(str(err))
                return 1
        else:
            latest = config_store.published(session)
            if latest is None:
                _fail("no configuration is published yet (leadflow config import FILE --publish)")
                return 1
            config = latest[1]
    sys.stdout.write(dump_yaml(config))
    return 0


def _import(db: Database, file: str, actor: str, *, publish: bool, note: str) -> int:
    from store import config as config_store

    text = _read(file)
    if text is None:
        return 1
    try:
        config = load_yaml(text)
    except ConfigError as err:
        _report(file, err.problems)
        return 1
    with db.session() as session:
        revision = config_store.save_draft(session, config, actor, None, action="imported")
        number = config_store.publish(session, actor, note) if publish else None
    if number is None:
        sys.stdout.write(f"imported {file} as the draft (revision {revision})\n")
    else:
        sys.stdout.write(f"imported {file} and published it as version {number}\n")
    return 0


def _publish(db: Database, actor: str, note: str) -> int:
    from store import config as config_store

    try:
        with db.session() as session:
            number = config_store.publish(session, actor, note)
    except ConfigError as err:
        with db.read() as session:
            draft = config_store.get_draft(session)
        found = with_lines(dump_yaml(draft.config), err.problems) if draft else err.problems
        _fail("the draft was not published:")
        _report("draft", found)
        return 1
    sys.stdout.write(f"published version {number}\n")
    return 0


def _rollback(db: Database, number: int, actor: str) -> int:
    from store import config as config_store

    try:
        with db.session() as session:
            new = config_store.rollback(session, number, actor)
    except config_store.UnknownVersion as err:
        _fail(str(err))
        return 1
    except ConfigError as err:
        _fail(f"version {number} does not pass today's checks; nothing was published:")
        _report(f"version {number}", err.problems)
        return 1
    sys.stdout.write(f"published version {number}'s configuration again as version {new}\n")
    return 0


def _versions(db: Database, *, diff: bool, limit: int | None) -> int:
    from store import config as config_store

    with db.read() as session:
        found = config_store.versions(session, limit)
    if not found:
        sys.stdout.write("no configuration is published yet\n")
    for info in found:
        when = info.published_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        note = f"  {info.note}" if info.note else ""
        sys.stdout.write(f"{info.version:>4}  {when}  {info.published_by}{note}\n")
        if diff and info.diff:
            sys.stdout.write("".join(f"      {line}" for line in info.diff.splitlines(True)))
    return 0


# ---------------------------------------------------------------------------- helpers


def _read(file: str) -> str | None:
    try:
        if file == "-":
            return sys.stdin.read()
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        _fail(f"cannot read {file}: {err}")
        return None


def _report(name: str, found: list[Problem], out: TextIO | None = None) -> None:
    """One line per problem: ``FILE:LINE: location: message``."""
    for p in found:
        where = f"{name}:{p.line}" if p.line is not None else name
        (out or sys.stderr).write(f"{where}: {p.location}: {p.message}\n")


def _fail(message: str) -> None:
    sys.stderr.write(f"leadflow config: {message}\n")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor in passwd
        return "unknown"
