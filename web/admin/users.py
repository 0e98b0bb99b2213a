"""Users (admin only): list, create with a role, change the role, deactivate or
reactivate, and set a new password (no reset links: the admin sets it and tells the
user). Every change is in the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from domain.users import Role, password_problem
from store import users as user_store
from web.admin import nav
from web.admin.deps import Admin, CsrfForm
from web.admin.render import flash, render
from web.deps import AppContext, Context

router = APIRouter()
nav.register("Admin", "Users", "/admin/users", Role.admin, order=10)

ROLE_OPTIONS = [(r.value, r.label) for r in Role]


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _list(context: AppContext) -> list[Any]:
    with context.db.read() as session:
        return user_store.list_users(session)


async def _page(
    request: Request,
    context: AppContext,
    user: Any,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    users = await run_in_threadpool(_list, context)
    return render(
        request,
        user,
        "admin/users.html",
        {
            "users": users,
            "roles": ROLE_OPTIONS,
            "errors": errors or {},
            "values": values or {"role": Role.viewer.value},
        },
        status=status,
    )


@router.get("/users", response_class=HTMLResponse)
async def users_page(request: Request, context: Context, user: Admin) -> HTMLResponse:
    return await _page(request, context, user)


@router.post("/users")
async def create_user(request: Request, context: Context, user: Admin, form: CsrfForm) -> Response:
    values = {k: _text(form, k) for k in ("email", "name", "role")}
    password = form.get("password")
    password = password if isinstance(password, str) else ""
    errors: dict[str, str] = {}
    email = values["email"].lower()
    if "@" not in email or email.startswith("@") or email.endswith("@") or len(email) > 320:
        errors["email"] = "Enter an email address, like name@example.com."
    if values["role"] not in {r.value for r in Role}:
        errors["role"] = "Choose a role."
    problem = password_problem(password)
    if problem:
        errors["password"] = problem[0].upper() + problem[1:] + "."
    if password != form.get("password_again"):
        errors.setdefault("password_again", "The two passwords differ.")
    if not errors:

        def create() -> str | None:
            with context.db.session() as session:
                try:
                    user_store.create_user(
                        session, email, values["name"], Role(values["role"]), password, user.email
                    )
                except user_store.UserExists:
                    return "An account with this email exists already."
            return None

        exists = await run_in_threadpool(create)
        if exists:
            errors["email"] = exists
    if errors:
        return await _page(request, context, user, errors=errors, values=values, status=422)
    flash(request, f"Created {email} ({Role(values['role']).label}).")
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/users/{user_id}")
async def change_user(
    request: Request, context: Context, user: Admin, form: CsrfForm, user_id: int
) -> Response:
    """One change of an account, named by the form's ``action``: ``role`` (with
    ``role``), ``deactivate``, ``reactivate`` or ``password`` (with ``password`` and
    ``password_again``)."""
    action = _text(form, "action")
    password = form.get("password")
    password = password if isinstance(password, str) else ""
    if action == "password":
        problem = password_problem(password) or (
            "the two passwords differ" if password != form.get("password_again") else None
        )
        if problem:
            flash(request, f"Password not changed: {problem}.", "error")
            return RedirectResponse("/admin/users", status_code=303)
    role = _text(form, "role")
    if action == "role" and role not in {r.value for r in Role}:
        flash(request, "Choose a role.", "error")
        return RedirectResponse("/admin/users", status_code=303)

    def change() -> str:
        with context.db.session() as session:
            target = user_store.get_user(session, user_id)
            if target is None:
                return "error:There is no such user."
            if target.id == user.id and action in ("deactivate", "role"):
                return "error:You cannot deactivate yourself or change your own role."
            if action == "role":
                user_store.set_role(session, target, Role(role), user.email)
                return f"ok:{target.email} is now {Role(role).label}."
            if action == "deactivate":
                user_store.set_active(session, target, False, user.email)
                return f"ok:{target.email} is deactivated and signed out."
            if action == "reactivate":
                user_store.set_active(session, target, True, user.email)
                return f"ok:{target.email} is active again."
            if action == "password":
                user_store.set_password(session, target, password, user.email)
                return f"ok:Set a new password for {target.email}; their sessions ended."
            return "error:Unknown action."

    kind, _, text = (await run_in_threadpool(change)).partition(":")
    flash(request, text, "error" if kind == "error" else "ok")
    return RedirectResponse("/admin/users", status_code=303)
