"""Bulk import of leads in the admin app (admin only): upload a CSV file, check the column
each header was matched to (and change it), see every row validated with the rejected ones
listed (and downloadable as CSV), then start the import and watch it advance.

The import itself runs as the ``LeadImport`` workflow (``workflows.lead_import``), one
import at a time (a second one started meanwhile is ``queued`` behind it); its page polls
``/admin/imports/{id}/progress`` (``/static/imports.js``) to move the bar."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from temporalio.service import RPCError

from domain.lead import EXTRA_PREFIX
from domain.lead_import import (
    DEFAULT_SOURCE,
    FIELD_LABELS,
    TARGETS,
    Column,
    CsvFile,
    ImportFileError,
    MappingError,
    choose_columns,
    detect_columns,
    extra_key,
    read_csv,
    rejected_csv,
    source_problem,
    validate_rows,
)
from domain.users import Role
from store import imports as import_store
from store.models import LeadImport
from web.admin import nav
from web.admin.deps import Admin, csrf_form
from web.admin.explain import duration
from web.admin.render import flash, render
from web.deps import AppContext, Context
from workflows.lead_import import start_import

router = APIRouter()
nav.register("Leads", "Import", "/admin/imports", Role.admin, order=20)

IMPORT_ID = re.compile(r"^[0-9a-f]{12}$")
ImportId = Annotated[str, Path(pattern=IMPORT_ID.pattern)]
SHOWN_REJECTED = 100
SAMPLES = 3
# What a multipart form adds around the file (boundaries, the token, the source).
FORM_OVERHEAD = 64 * 1024


# ---------------------------------------------------------------------------- list, upload


@router.get("/imports", response_class=HTMLResponse)
async def imports_page(request: Request, context: Context, user: Admin) -> HTMLResponse:
    return await _list_page(request, context, user)


async def _list_page(
    request: Request,
    context: AppContext,
    user: Any,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    def load() -> tuple[list[LeadImport], dict[str, str | None]]:
        with context.db.read() as session:
            imports = import_store.recent_imports(session)
            behind = {
                row.id: import_store.queued_behind(session, row)
                for row in imports
                if row.status == import_store.QUEUED
            }
            return imports, behind

    settings = context.settings
    imports, behind = await run_in_threadpool(load)
    return render(
        request,
        user,
        "admin/imports.html",
        {
            "imports": imports,
            "behind": behind,
            "error": error,
            "values": values or {"source": DEFAULT_SOURCE},
            "max_mb": settings.import_max_bytes / 1024 / 1024,
            "max_rows": settings.import_max_rows,
            "rate": settings.import_rate,
        },
        status=status,
    )


@router.post("/imports")
async def upload(request: Request, context: Context, user: Admin) -> Response:
    """Read the file, match its headers to fields, and keep it until the mapping is
    confirmed; a file that cannot be imported is refused here, saying why."""
    limit = context.settings.import_max_bytes
    declared = request.headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > limit + FORM_OVERHEAD:
        return await _list_page(request, context, user, error=_too_large(limit), status=413)
    form = await csrf_form(request)
    try:
        return await _uploaded(request, context, user, form)
    finally:
        await form.close()  # the upload's temporary file


async def _uploaded(request: Request, context: AppContext, user: Any, form: FormData) -> Response:
    limit = context.settings.import_max_bytes
    source = str(form.get("source") or "").strip() or DEFAULT_SOURCE
    values = {"source": source}
    problem = source_problem(source)
    file = form.get("file")
    if problem:
        error = f"Source: {problem}."
        return await _list_page(request, context, user, error=error, values=values, status=422)
    if not isinstance(file, UploadFile) or not file.filename:
        error = "Choose a CSV file to upload."
        return await _list_page(request, context, user, error=error, values=values, status=422)
    content = await file.read(limit + 1)
    if len(content) > limit:
        error = _too_large(limit)
        return await _list_page(request, context, user, error=error, values=values, status=413)
    try:
        csv_file = read_csv(content, context.settings.import_max_rows)
    except ImportFileError as err:
        return await _list_page(
            request, context, user, error=f"{file.filename}: {err}.", values=values, status=422
        )

    def create() -> str:
        with context.db.session() as session:
            row = import_store.create_import(
                session,
                filename=file.filename or "upload.csv",
                source=source,
                created_by=user.email,
                headers=csv_file.headers,
                columns=detect_columns(csv_file.headers),
                content=content.decode("utf-8-sig"),
            )
            return row.id

    import_id = await run_in_threadpool(create)
    return RedirectResponse(f"/admin/imports/{import_id}", status_code=303)


def _too_large(limit: int) -> str:
    return f"The file is larger than {limit / 1024 / 1024:g} MB (LEADFLOW_IMPORT_MAX_BYTES)."


# ---------------------------------------------------------------------------- one import


@router.get("/imports/{import_id}", response_class=HTMLResponse)
async def import_page(
    request: Request, context: Context, user: Admin, import_id: ImportId, step: str = ""
) -> HTMLResponse:
    """The mapping (until the rows are validated, or again with ``?step=mapping``), the
    validation's result with the Start button, then the import's progress."""
    row = await run_in_threadpool(_get, context, import_id)
    if row is None:
        return _missing(request, user)
    # An import started from the command line keeps no file: its columns are final.
    mapping = row.content is not None and (
        row.status == import_store.MAPPING
        or (row.status == import_store.VALIDATED and step == "mapping")
    )
    if mapping:
        return await _mapping_page(request, context, user, row, import_store.columns_of(row))
    return await _import_view(request, context, user, row)


def _get(context: AppContext, import_id: str) -> LeadImport | None:
    with context.db.read() as session:
        return import_store.get_import(session, import_id)


def _missing(request: Request, user: Any) -> HTMLResponse:
    page = {
        "code": 404,
        "heading": "No such import",
        "needed": None,
        "message": "There is no import at this address.",
    }
    return render(request, user, "admin/error.html", page, status=404)


def _parsed(context: AppContext, row: LeadImport) -> CsvFile:
    return read_csv((row.content or "").encode(), context.settings.import_max_rows)


async def _mapping_page(
    request: Request,
    context: AppContext,
    user: Any,
    row: LeadImport,
    columns: list[Column],
    *,
    problems: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    csv_file = await run_in_threadpool(_parsed, context, row)
    fields = [(name, FIELD_LABELS[name]) for name in TARGETS]
    view = []
    for column in columns:
        key = extra_key(column.header)
        own = column.target if column.target.startswith(EXTRA_PREFIX) else None
        extra = own or (f"{EXTRA_PREFIX}{key}" if key else None)
        options = [("", "Not imported"), *fields]
        if extra:
            options.append((extra, f"Free-form field “{extra.removeprefix(EXTRA_PREFIX)}”"))
        samples = [
            cells[column.index].strip()
            for _, cells in csv_file.rows[:200]
            if column.index < len(cells) and cells[column.index].strip()
        ][:SAMPLES]
        view.append({"column": column, "options": options, "samples": samples})
    return render(
        request,
        user,
        "admin/import_mapping.html",
        {"imp": row, "columns": view, "problems": problems or [], "data_rows": len(csv_file.rows)},
        status=status,
    )


@router.post("/imports/{import_id}/mapping")
async def save_mapping(
    request: Request, context: Context, user: Admin, import_id: ImportId
) -> Response:
    """Validate every row with the chosen mapping, then show the result."""
    form = await csrf_form(request)
    row = await run_in_threadpool(_get, context, import_id)
    if row is None:
        return _missing(request, user)
    if row.status not in (import_store.MAPPING, import_store.VALIDATED) or row.content is None:
        flash(request, "The columns of this import can no longer change.", "error")
        return RedirectResponse(f"/admin/imports/{import_id}", status_code=303)
    choices = {index: str(form.get(f"col-{index}") or "") for index in range(len(row.headers))}
    try:
        columns = choose_columns(row.headers, choices)
    except MappingError as err:
        chosen = [
            Column(index=i, header=h, target=choices.get(i, "")) for i, h in enumerate(row.headers)
        ]
        return await _mapping_page(
            request, context, user, row, chosen, problems=err.problems, status=422
        )

    def validate() -> None:
        csv_file = _parsed(context, row)
        validation = validate_rows(csv_file, columns, row.source)
        with context.db.session() as session:
            stored = import_store.get_import(session, import_id)
            assert stored is not None
            import_store.save_validation(
                session, stored, columns, validation, context.lead_id_secret
            )

    await run_in_threadpool(validate)
    return RedirectResponse(f"/admin/imports/{import_id}", status_code=303)


async def _import_view(
    request: Request, context: AppContext, user: Any, row: LeadImport
) -> HTMLResponse:
    def rejected() -> list[Any]:
        with context.db.read() as session:
            return import_store.rejected_rows(session, row.id, SHOWN_REJECTED)

    def behind() -> str | None:
        with context.db.read() as session:
            return import_store.queued_behind(session, row)

    rate = context.settings.import_rate
    progress = import_store.progress_of(row, behind=await run_in_threadpool(behind))
    left, elapsed = progress["seconds_left"], progress["elapsed_s"]
    return render(
        request,
        user,
        "admin/import.html",
        {
            "imp": row,
            "progress": progress,
            "left": duration(round(left * 1000)) if left is not None else None,
            "took": duration(round(elapsed * 1000)),
            "rejected": await run_in_threadpool(rejected),
            "shown_rejected": SHOWN_REJECTED,
            "rate": rate,
            "minutes": row.accepted / rate / 60,
            "can_remap": row.content is not None,
            "mapped": [c for c in import_store.columns_of(row) if c.target],
            "ignored": [c for c in import_store.columns_of(row) if not c.target],
        },
    )


@router.post("/imports/{import_id}/start")
async def start(request: Request, context: Context, user: Admin, import_id: ImportId) -> Response:
    """Start the import's workflow (once: a second click changes nothing)."""
    await csrf_form(request)
    row = await run_in_threadpool(_get, context, import_id)
    if row is None:
        return _missing(request, user)
    back = RedirectResponse(f"/admin/imports/{import_id}", status_code=303)
    if row.status != import_store.VALIDATED:
        return back
    if row.accepted == 0:
        flash(request, "No row can be imported: fix the file and upload it again.", "error")
        return back
    try:
        await start_import(context.temporal, context.settings, import_id)
    except (RPCError, RuntimeError):
        flash(
            request,
            "The import was not started: the workflow service is unavailable. Try again "
            "in a moment.",
            "error",
        )
        return back

    def claim() -> import_store.Turn:
        with context.db.session() as session:
            return import_store.claim_turn(session, import_id)

    turn = await run_in_threadpool(claim)
    if turn.go:
        flash(
            request,
            f"Import started: {row.accepted} leads, at most "
            f"{context.settings.import_rate:g} a second.",
        )
    else:
        flash(
            request,
            f"Import queued behind import {turn.behind}: it starts when the imports ahead "
            "of it have finished, one at a time so the pace is kept.",
        )
    return back


@router.get("/imports/{import_id}/progress")
async def progress(context: Context, _user: Admin, import_id: ImportId) -> JSONResponse:
    """Where the import stands (``store.imports.progress_of``), for the page's bar."""

    def load() -> dict[str, Any] | None:
        with context.db.read() as session:
            row = import_store.get_import(session, import_id)
            if row is None:
                return None
            return import_store.progress_of(row, behind=import_store.queued_behind(session, row))

    found = await run_in_threadpool(load)
    if found is None:
        return JSONResponse({"detail": "no such import"}, status_code=404)
    return JSONResponse(found, headers={"Cache-Control": "no-store"})


@router.get("/imports/{import_id}/rejected.csv")
async def rejected_report(
    request: Request, context: Context, user: Admin, import_id: ImportId
) -> Response:
    """Every rejected row: its line (the header is line 1), column, field and reason."""

    def load() -> str | None:
        with context.db.read() as session:
            if import_store.get_import(session, import_id) is None:
                return None
            return rejected_csv(import_store.rejected_rows(session, import_id))

    report = await run_in_threadpool(load)
    if report is None:
        return _missing(request, user)
    return Response(
        report,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-rejected.csv"'},
    )
