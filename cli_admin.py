"""``leadflow admin``: accounts of the admin app on the command line.

``create-user EMAIL --role admin|team_lead|viewer [--name NAME]`` creates an account;
``reset-password EMAIL`` sets a new password (and ends the account's sessions). The
password is asked twice on the terminal, or read from the first line of standard input
with ``--password-stdin`` (for scripts). Both work on the database only
(``LEADFLOW_DATABASE_URL``; run ``leadflow db upgrade`` first) and are audited under
the OS user.

``ensure_dev_admin`` is what ``leadflow dev`` does on an empty users table: it creates
``admin@leadflow.local`` with a generated password written (0600) into
``<data dir>/admin_password``.
"""

from __future__ import annotations

import getpass
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domain.users import Role, password_problem

if TYPE_CHECKING:
    import argparse

    from settings import Settings

DEV_ADMIN_EMAIL = "admin@leadflow.local"
DEV_ADMIN_NAME = "Development admin"


def add_admin_parser(sub: Any) -> None:
    """Register ``admin`` and its subcommands on the ``leadflow`` parser's subparsers."""
    admin = sub.add_parser("admin", help="accounts of the admin app")
    commands = admin.add_subparsers(dest="admin_command", required=True)
    stdin = "read the password from the first line of standard input instead of asking"

    create = commands.add_parser("create-user", help="create an account of the admin app")
    create.add_argument("email", metavar="EMAIL")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", default="", help="the name shown in the app")
    create.add_argument("--password-stdin", action="store_true", help=stdin)

    reset = commands.add_parser("reset-password", help="set a new password for an account")
    reset.add_argument("email", metavar="EMAIL")
    reset.add_argument("--password-stdin", action="store_true", help=stdin)


def run_admin(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``leadflow admin <command>``; the exit status."""
    from sqlalchemy.exc import DBAPIError

    from store import users as user_store
    from store.db import Database

    email: str = args.email.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        _fail(f"{args.email!r} is not an email address")
        return 1
    password = _read_password(from_stdin=args.password_stdin)
    if password is None:
        return 1
    actor = f"cli:{_os_user()}"
    db = Database(settings.effective_database_url, pool_size=1)
    try:
        with db.session() as session:
            if args.admin_command == "create-user":
                try:
                    user_store.create_user(
                        session, email, args.name, Role(args.role), password, actor
                    )
                except user_store.UserExists as err:
                    _fail(f"{err}; use: leadflow admin reset-password {email}")
                    return 1
                sys.stdout.write(f"created {email} ({args.role})\n")
                return 0
            user = user_store.user_by_email(session, email)
            if user is None:
                _fail(
                    f"there is no account for {email}; create it with: leadflow admin create-user"
                )
                return 1
            user_store.set_password(session, user, password, actor)
            sys.stdout.write(f"set a new password for {email}; their sessions ended\n")
            return 0
    except DBAPIError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig else type(err).__name__
        _fail(
            f"cannot use the database at LEADFLOW_DATABASE_URL ({reason}); "
            "is it migrated (leadflow db upgrade)?"
        )
        return 1
    finally:
        db.dispose()


def _read_password(*, from_stdin: bool) -> str | None:
    if from_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    else:
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Repeat it: ")
        except (EOFError, KeyboardInterrupt):
            sys.stderr.write("\n")
            _fail("no password given")
            return None
        if password != again:
            _fail("the two passwords differ; nothing was changed")
            return None
    problem = password_problem(password)
    if problem:
        _fail(f"{problem}; nothing was changed")
        return None
    return password


def ensure_dev_admin(settings: Settings) -> Path | None:
    """On a database without any account, create ``admin@leadflow.local`` (admin) with a
    generated password written owner-only into ``settings.admin_password_file``; that
    file when it exists (created now or before), else None."""
    from store import users as user_store
    from store.db import Database

    path = settings.admin_password_file
    db = Database(settings.effective_database_url, pool_size=1)
    try:
        with db.session() as session:
            if user_store.count_users(session) > 0:
                return path if path.exists() else None
            password = secrets.token_urlsafe(18)  # 24 characters
            user_store.create_user(
                session, DEV_ADMIN_EMAIL, DEV_ADMIN_NAME, Role.admin, password, "leadflow dev"
            )
            # Written before the transaction commits: no account without its password file.
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(password + "\n")
            os.replace(partial, path)
        return path
    finally:
        db.dispose()


def _fail(message: str) -> None:
    sys.stderr.write(f"leadflow admin: {message}\n")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
