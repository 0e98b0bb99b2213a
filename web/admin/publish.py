"""The publish page: what publishing the draft would change (its diff against the
published version), the draft's problems (publishing is refused while it has any),
publishing with a comment, and the version history with each version's diff and a
rollback (confirmed with a second click). Everybody may look; acting needs ``admin``.

Publishing and rollback go through the functions the JSON API uses
(``web.api_config.publish_draft`` and ``rollback_to``), recorded under the user's email.
The publish form carries the draft revision it showed: a draft saved by somebody else in
between is not published unseen."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from domain.config import ConfigError
from domain.config_checks import problems
from domain.config_yaml import dump_yaml, with_lines
from domain.users import Role
from store import config as config_store
from web.admin import nav
from web.admin.deps import Admin, AdminUser, CsrfForm, Viewer
from web.admin.render import flash, render
from web.api_config import publish_draft, rollback_to
from web.deps import AppContext, Context

router = APIRouter()
nav.register("Routing", "Publish", "/admin/publish", Role.viewer, order=40)

RECENT_VERSIONS = 20
MAX_NOTE = 2000
_CONCURRENT = "Another publish happened at the same moment; look at the history and try again."


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """A unified diff's lines, each with its CSS class: ``add``, ``del``, ``hunk``,
    ``file`` or ``same``."""
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        out.append((kind, line))
    return out


def _counted(diff: str) -> dict[str, Any]:
    lines = diff_lines(diff)
    added = sum(kind == "add" for kind, _ in lines)
    return {"diff": lines, "added": added, "removed": sum(kind == "del" for kind, _ in lines)}


def _state(context: AppContext, all_versions: bool) -> dict[str, Any]:
    with context.db.read() as session:
        draft = config_store.get_draft(session)
        latest = config_store.latest_version(session)
        history = config_store.versions(session, None if all_versions else RECENT_VERSIONS)
        diff = config_store.draft_diff(session)
    found = problems(draft.config) if draft is not None else []
    if found and draft is not None:
        found = with_lines(dump_yaml(draft.config), found)
    return {
        "draft": draft,
        "latest": latest,
        **_counted(diff),
        "draft_problems": found,
        "versions": [{"info": v, **_counted(v.diff)} for v in history],
        "version_count": latest or 0,  # versions are numbered 1, 2, 3, …
        "all_versions": all_versions,
    }


async def _page(
    request: Request,
    context: Context,
    user: AdminUser,
    *,
    status: int = 200,
    all_versions: bool = False,
    **extra: Any,
) -> HTMLResponse:
    state = await run_in_threadpool(_state, context, all_versions)
    state["may_act"] = user.role is Role.admin
    state.update(extra)
    return render(request, user, "admin/publish.html", state, status=status)


@router.get("/publish", response_class=HTMLResponse)
async def publish_page(
    request: Request, context: Context, user: Viewer, versions: str = ""
) -> HTMLResponse:
    """The draft's changes and problems, the publish form and the version history."""
    return await _page(request, context, user, all_versions=versions == "all")


@router.post("/publish", response_model=None)
async def publish(request: Request, context: Context, user: Admin, form: CsrfForm) -> Response:
    """Publish the draft the form showed, with the comment."""
    note = str(form.get("note") or "").strip()
    revision = str(form.get("revision") or "")
    values = {"note": note}
    if len(note) > MAX_NOTE:
        errors = {"note": f"at most {MAX_NOTE} characters"}
        return await _page(request, context, user, status=422, values=values, errors=errors)
    if not revision.isdigit():
        error = "The form did not say which draft revision it showed; reload the page."
        return await _page(request, context, user, status=400, values=values, error=error)
    try:
        number = await run_in_threadpool(publish_draft, context, user.email, note, int(revision))
    except ConfigError as err:
        return await _page(request, context, user, status=422, values=values, refused=err.problems)
    except config_store.StaleDraft as err:
        by = f" by {err.updated_by}" if err.updated_by else ""
        error = (
            f"Not published: the draft was saved{by} after you opened this page (it is now "
            f"at revision {err.current}, you reviewed revision {err.expected}). Review "
            "the changes below and publish again."
        )
        return await _page(request, context, user, status=409, values=values, error=error)
    except IntegrityError:
        return await _page(request, context, user, status=409, values=values, error=_CONCURRENT)
    flash(request, f"Published version {number}. It routes the next lead.")
    return RedirectResponse("/admin/publish#versions", status_code=303)


@router.post("/publish/rollback", response_model=None)
async def rollback(request: Request, context: Context, user: Admin, form: CsrfForm) -> Response:
    """Roll back to a version: the first click asks for confirmation, the second (with
    ``confirm=yes``) publishes that version's document again as a new version."""
    raw = str(form.get("version") or "")
    if not raw.isdigit() or not 1 <= int(raw) <= 2**31 - 1:
        return await _page(
            request, context, user, status=400, error="Choose a version to roll back to."
        )
    version = int(raw)
    if form.get("confirm") != "yes":
        return await _page(request, context, user, confirm_rollback=version)
    try:
        number = await run_in_threadpool(rollback_to, context, version, user.email)
    except config_store.UnknownVersion as err:
        return await _page(request, context, user, status=404, error=f"{err}.")
    except ConfigError as err:
        title = f"Version {version} does not pass today's checks"
        return await _page(
            request, context, user, status=422, refused=err.problems, refused_title=title
        )
    except IntegrityError:
        return await _page(request, context, user, status=409, error=_CONCURRENT)
    flash(request, f"Rolled back to version {version}: published again as version {number}.")
    return RedirectResponse("/admin/publish#versions", status_code=303)
