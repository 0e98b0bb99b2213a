"""``leadflow leads import FILE.csv [--dry-run] [--source NAME] [--report FILE]
[--map "Header=field,..."]`` and ``leadflow leads watch IMPORT_ID``: bulk import of
existing leads from the command line.

``import`` reads the file (UTF-8, the header on line 1), says which column becomes which
field of a lead (``--map`` corrects the detection, ``domain.lead_import_map``), validates
every row before anything starts and reports the rejected ones (line and reason; all of
them with ``--report FILE``, or on stdout with ``--dry-run``, which imports nothing). Then
it stores the rows, starts the ``LeadImport`` workflow and shows a progress bar until the
last row has entered its lead's lifecycle; an import started while another runs waits in
line (``queued behind import <id>``). Ctrl-C stops watching, not the import: the worker
goes on, and ``watch`` (or the admin app) shows it.

Exit status: 0 done (or a dry run), 1 the file or the import failed, 2 bad arguments
(a ``--source`` or ``--map`` that cannot be used), 130 stopped watching with Ctrl-C.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli_import_view import ProgressView, count, say, say_columns, say_error, say_validation

if TYPE_CHECKING:
    import argparse

    from temporalio.client import WorkflowHandle

    from domain.lead_import import Column, MappingError, Validation
    from settings import Settings
    from store.db import Database

POLL_S = 0.5
CHECK_WORKFLOW_S = 5.0


def add_leads_parser(sub: Any) -> None:
    from domain.lead_import import DEFAULT_SOURCE

    leads = sub.add_parser("leads", help="bulk import of existing leads")
    commands = leads.add_subparsers(dest="leads_command", required=True)
    imp = commands.add_parser(
        "import", help="import leads from a CSV file (UTF-8, with a header line)"
    )
    imp.add_argument("file", type=Path, help="the CSV file")
    imp.add_argument(
        "--dry-run",
        action="store_true",
        help="validate every row and print the rejected ones; import nothing",
    )
    imp.add_argument(
        "--source", default=DEFAULT_SOURCE, help=f"the leads' source (default {DEFAULT_SOURCE!r})"
    )
    imp.add_argument("--report", type=Path, help="write the rejected rows to this CSV file")
    imp.add_argument(
        "--map",
        action="append",
        default=[],
        metavar='"HEADER=FIELD,..."',
        help="override the detected field of these columns (a field of a lead, extra.NAME, "
        "or - to leave the column out); may be given several times",
    )
    watch = commands.add_parser("watch", help="show the progress of an import")
    watch.add_argument("import_id", help="the import's id (leadflow leads import prints it)")


def run_leads(args: argparse.Namespace, settings: Settings) -> int:
    if args.leads_command == "watch":
        return _run_watch(args.import_id, settings)
    return _run_import(args, settings)


# ---------------------------------------------------------------------------- import


def _run_import(args: argparse.Namespace, settings: Settings) -> int:
    from domain.lead_import import (
        ImportFileError,
        MappingError,
        detect_columns,
        read_csv,
        rejected_csv,
        source_problem,
        validate_rows,
    )
    from domain.lead_import_map import apply_map, parse_map

    path: Path = args.file
    problem = source_problem(args.source)
    if problem:
        say_error(f"leadflow leads import: --source {problem}")
        return 2
    try:
        overrides = parse_map(getattr(args, "map", None) or [])
    except MappingError as err:
        _map_errors(err)
        return 2
    try:
        content = path.read_bytes()
        csv_file = read_csv(content, settings.import_max_rows)
    except OSError as err:
        say_error(f"leadflow leads import: cannot read {path}: {err.strerror or err}")
        return 1
    except ImportFileError as err:
        say_error(f"leadflow leads import: {path}: {err}")
        return 1
    columns = detect_columns(csv_file.headers)
    if overrides:
        try:
            columns = apply_map(csv_file.headers, columns, overrides)
        except MappingError as err:
            _map_errors(err)
            return 2
    say_columns(columns)
    try:
        validation = validate_rows(csv_file, columns, args.source)
    except MappingError as err:
        say_error(f"leadflow leads import: {path}: {err} (headers: {', '.join(csv_file.headers)})")
        return 1
    say_validation(validation)
    report = rejected_csv(validation.rejected)
    if args.report is not None:
        try:
            args.report.write_text(report, encoding="utf-8")
        except OSError as err:
            say_error(f"leadflow leads import: cannot write {args.report}: {err.strerror or err}")
            return 1
        say(f"the rejected rows are in {args.report}")
    if args.dry_run:
        if args.report is None and validation.rejected:
            say("")
            sys.stdout.write(report)
        say("dry run: nothing was imported")
        return 0
    if not validation.accepted:
        say_error("leadflow leads import: no row can be imported")
        return 1
    return _store_and_start(path, args.source, columns, validation, settings)


def _map_errors(err: MappingError) -> None:
    for problem in err.problems:
        say_error(f"leadflow leads import: --map: {problem}")
    say_error("leadflow leads import: nothing was imported")


def _store_and_start(
    path: Path, source: str, columns: list[Column], validation: Validation, settings: Settings
) -> int:
    from settings import stored_secret
    from store import imports as import_store
    from store.db import Database

    db = Database(settings.effective_database_url, pool_size=2)
    try:
        secret = stored_secret(settings.lead_id_secret, settings.lead_id_secret_file).encode()
        try:
            with db.session() as session:
                row = import_store.create_import(
                    session,
                    filename=path.name,
                    source=source,
                    created_by=f"{getpass.getuser()} (command line)",
                    headers=[c.header for c in columns],
                    columns=columns,
                    content=None,
                )
                import_store.save_validation(session, row, columns, validation, secret)
                import_id = row.id
        except Exception as err:
            say_error(
                f"leadflow leads import: cannot store the import in the database "
                f"({type(err).__name__}); is it migrated (leadflow db upgrade)?"
            )
            return 1
        say(f"import {import_id}: {count(len(validation.accepted), 'lead')} to import")
        return _guarded(settings, db, import_id, start=True)
    finally:
        db.dispose()


# ---------------------------------------------------------------------------- watch


def _run_watch(import_id: str, settings: Settings) -> int:
    from store import imports as import_store
    from store.db import Database

    db = Database(settings.effective_database_url, pool_size=1)
    try:
        with db.read() as session:
            row = import_store.get_import(session, import_id)
            status = row.status if row is not None else None
        if status is None:
            say_error(f"leadflow leads watch: there is no import {import_id}")
            return 1
        if status in (import_store.MAPPING, import_store.VALIDATED):
            say_error(
                f"leadflow leads watch: import {import_id} has not started; start it at "
                f"{settings.base_url}/admin/imports/{import_id}"
            )
            return 1
        return _guarded(settings, db, import_id, start=False)
    finally:
        db.dispose()


def _guarded(settings: Settings, db: Database, import_id: str, *, start: bool) -> int:
    try:
        return asyncio.run(_start_and_watch(settings, db, import_id, start=start))
    except KeyboardInterrupt:
        say_error(
            f"\nStopped watching. The import goes on in the worker; watch it with "
            f"`leadflow leads watch {import_id}` or at {settings.base_url}/admin/imports/"
            f"{import_id}"
        )
        return 130


async def _start_and_watch(settings: Settings, db: Database, import_id: str, *, start: bool) -> int:
    from store import imports as import_store
    from workflows.client import make_client
    from workflows.lead_import import import_workflow_id, start_import

    page = f"{settings.base_url}/admin/imports/{import_id}"
    try:
        client = await make_client(settings)
        if start:
            await start_import(client, settings, import_id)
    except Exception as err:
        saved = f"; the import is saved: start it at {page}" if start else ""
        say_error(
            f"leadflow leads: cannot reach Temporal at {settings.temporal_target} ({err}){saved}"
        )
        return 1
    if start:
        with db.session() as session:
            import_store.claim_turn(session, import_id)
    handle = client.get_workflow_handle(import_workflow_id(import_id))

    def read() -> dict[str, Any]:
        with db.read() as session:
            row = import_store.get_import(session, import_id)
            assert row is not None
            return import_store.progress_of(row, behind=import_store.queued_behind(session, row))

    state = await asyncio.to_thread(read)
    checked = time.monotonic()
    with ProgressView(state["accepted"]) as view:
        while not state["done"]:
            view.queued(import_id, state)
            view.show(state)
            await asyncio.sleep(POLL_S)
            state = await asyncio.to_thread(read)
            if not state["done"] and time.monotonic() - checked > CHECK_WORKFLOW_S:
                checked = time.monotonic()
                ended = await _workflow_ended(handle)
                state = await asyncio.to_thread(read)
                if ended and not state["done"]:
                    say_error(
                        f"leadflow leads: the import's workflow ended ({ended}) before the "
                        "import finished"
                    )
                    return 1
        view.show(state)
    if state["status"] == import_store.FAILED:
        say_error(f"leadflow leads import: the import failed: {state['error']}")
        return 1
    say(
        f"imported {count(state['imported'], 'lead')} from {count(state['rows'], 'row')} "
        f"({count(state['merged'], 'duplicate')} merged, {state['rejected']} rejected) "
        f"in {state['elapsed_s']:.0f} s; see {page}"
    )
    return 0


async def _workflow_ended(handle: WorkflowHandle[Any, Any]) -> str | None:
    """How the import's workflow ended (``terminated``, ``not found`` …), or None while
    it runs or when Temporal cannot say now."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    try:
        described = await handle.describe()
    except RPCError as err:
        return "not found" if err.status == RPCStatusCode.NOT_FOUND else None
    if described.status in (None, WorkflowExecutionStatus.RUNNING):
        return None
    return described.status.name.lower()
