"""Accounts of the admin app: signing in and out (in a real browser and over HTTP), the
failed-login limits, session expiry, cookie flags, CSRF, security headers, roles, per-user
API tokens on ``/api/v1``, and ``leadflow admin`` as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect
from temporalio.client import Client

from cli_config import seed_demo_configuration
from domain.users import Role
from store import config as config_store
from store import users as user_store
from store.db import Database
from store.models import Notification
from tests.conftest import (
    API_TOKEN,
    AdminUsers,
    Screenshots,
    csrf_of,
    http_login,
    login,
    make_settings,
    serve,
)
from tests.processes import CLI, leadflow_env
from web.app import create_app
from web.security import CSP

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

WRONG = "Wrong email or password."
PRODUCTION = {"environment": "production", "database_url": "postgresql+psycopg://u@db/x"}


@contextlib.asynccontextmanager
async def admin_app(
    db: Database, client: Client, tmp_path: Path, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The web app (no worker) over real HTTP, with the demo configuration published."""
    with db.session() as session:
        if config_store.latest_version(session) is None:
            seed_demo_configuration(session)
    values: dict[str, Any] = {"data_dir": tmp_path, "api_token": API_TOKEN, **overrides}
    values.setdefault("database_url", db.url)
    app = create_app(make_settings(**values), db, client, API_TOKEN)
    async with serve(app) as http:
        yield http


async def post_form(
    http: httpx.AsyncClient, path: str, data: dict[str, str], *, page: str | None = None
) -> httpx.Response:
    """POST ``data`` with the CSRF token of ``page`` (default: ``path``)."""
    token = csrf_of((await http.get(page or path)).text)
    return await http.post(path, data={**data, "csrf_token": token})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------------- the browser


async def test_sign_in_look_around_and_sign_out_in_the_browser(
    db: Database,
    client: Client,
    tmp_path: Path,
    browser: Browser,
    admin_users: AdminUsers,
    screenshots: Screenshots,
) -> None:
    async with admin_app(db, client, tmp_path) as http:
        base = str(http.base_url)
        context = await browser.new_context(viewport={"width": 1366, "height": 768})
        page = await context.new_page()
        refused: list[str] = []
        page.on(
            "console",
            lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
        )

        # Not signed in: the admin sends you to the login page, and back after it.
        await page.goto(f"{base}/admin/users")
        assert "/admin/login?next=/admin/users" in page.url
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await screenshots.take(page, "01-login")
        await page.fill("#email", admin_users.admin)
        await page.fill("#password", "not the password")
        await page.click("button[type=submit]")
        await expect(page.get_by_role("alert")).to_have_text(WRONG)
        await screenshots.take(page, "02-login-refused")
        await page.fill("#password", admin_users.password)
        async with page.expect_navigation():
            await page.press("#password", "Enter")  # the keyboard is enough
        assert page.url.endswith("/admin/users")

        # The dashboard: sections, the version in force, today's leads.
        await page.click("a.nav-home")
        await expect(page.get_by_role("heading", name="Welcome back, Ada Admin")).to_be_visible()
        await expect(page.locator("#published-version")).to_have_text("v1")
        await expect(page.locator(".sidebar")).to_contain_text("Audit log")
        await screenshots.take(page, "03-dashboard")

        # Users: create a team lead.
        await page.click("text=Users")
        await page.fill("#new-email", "robin@example.com")
        await page.fill("#new-name", "Robin Reyes")
        await page.select_option("#new-role", "team_lead")
        await page.fill("#new-password", "a long enough passphrase")
        await page.fill("#new-password-again", "a long enough passphrase")
        await page.click("#new-user button[type=submit]")
        await expect(page.locator(".flash-ok")).to_contain_text("Created robin@example.com")
        await expect(page.locator("#users")).to_contain_text("Robin Reyes")
        await screenshots.take(page, "04-users")

        # API tokens: created, shown once, listed by prefix.
        await page.click("text=API tokens")
        await page.fill("#name", "CI pipeline")
        await page.click("form.toolbar button[type=submit]")
        token = await page.locator("#token-value").inner_text()
        assert token.startswith("lf_")
        await expect(page.locator("#tokens")).to_contain_text(token[:8])
        await screenshots.take(page, "05-api-tokens")
        await page.goto(f"{base}/admin/tokens")
        assert token not in await page.content()

        # Audit log: account changes and the configuration's diff, coloured.
        await page.click("text=Audit log")
        audit = page.locator("#audit")
        await expect(audit).to_contain_text("created user robin@example.com")
        await expect(audit).to_contain_text("created an API token for admin@example.com")
        await expect(audit).to_contain_text("published")
        assert await page.locator("pre.diff span.add").count() > 0
        await screenshots.take(page, "06-audit-log")

        # A 404 inside the admin keeps the navigation.
        await page.goto(f"{base}/admin/nowhere")
        await expect(page.get_by_role("heading", name="Page not found")).to_be_visible()

        # Sign out: back to the login page, and the admin is closed again.
        await page.click("text=Log out")
        await expect(page.locator(".flash-ok")).to_have_text("You are signed out.")
        await page.goto(f"{base}/admin")
        assert "/admin/login" in page.url
        assert refused == []

        # A viewer sees fewer sections and a 403 page naming the role needed.
        await login(page, base, admin_users.viewer, admin_users.password)
        await expect(page.locator(".sidebar")).not_to_contain_text("Users")
        await page.goto(f"{base}/admin/users")
        await expect(page.locator(".error-page")).to_contain_text("needs the admin role")
        await screenshots.take(page, "07-forbidden")
        await context.close()


# ------------------------------------------------------------------------- signing in


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    async with admin_app(db, client, tmp_path) as http:
        wrong = await http_login(http, admin_users.admin, "not the password")
        unknown = await http_login(http, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert WRONG in wrong.text and WRONG in unknown.text
    # Apart from the email typed (and the form's token) the pages are identical.
    assert wrong.text.replace(admin_users.admin, "E").replace(csrf_of(wrong.text), "T") == (
        unknown.text.replace("nobody@example.com", "E").replace(csrf_of(unknown.text), "T")
    )


async def test_a_deactivated_account_cannot_sign_in(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    with db.session() as session:
        user = user_store.user_by_email(session, admin_users.viewer)
        assert user is not None
        user_store.set_active(session, user, False, "test")
    async with admin_app(db, client, tmp_path) as http:
        refused = await http_login(http, admin_users.viewer, admin_users.password)
    assert refused.status_code == 401 and WRONG in refused.text


async def test_failed_logins_are_limited_per_account(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    async with admin_app(db, client, tmp_path) as http:
        for _ in range(5):
            assert (await http_login(http, admin_users.admin, "guess")).status_code == 401
        # The sixth try is refused unchecked, even with the right password ...
        blocked = await http_login(http, admin_users.admin, admin_users.password)
        assert blocked.status_code == 429
        assert "Too many attempts, try again in 15 minutes." in blocked.text
        # ... an unknown address is limited the same way (nothing tells them apart) ...
        for _ in range(5):
            await http_login(http, "nobody@example.com", "guess")
        assert (await http_login(http, "nobody@example.com", "guess")).status_code == 429
        # ... and other accounts from the same address are not.
        fine = await http_login(http, admin_users.viewer, admin_users.password)
        assert fine.status_code == 303


async def test_failed_logins_are_limited_per_address(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    async with admin_app(db, client, tmp_path, login_max_failures_per_address=4) as http:
        for n in range(4):
            await http_login(http, f"someone{n}@example.com", "guess")
        blocked = await http_login(http, admin_users.admin, admin_users.password)
    assert blocked.status_code == 429
    assert "Too many attempts, try again in 15 minutes." in blocked.text


async def test_the_limit_window_ends(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    window = {"login_max_failures_per_account": 2, "login_window_minutes": 1.5 / 60}
    async with admin_app(db, client, tmp_path, **window) as http:
        for _ in range(2):
            await http_login(http, admin_users.admin, "guess")
        blocked = await http_login(http, admin_users.admin, admin_users.password)
        assert blocked.status_code == 429
        assert "try again in 1 minute." in blocked.text
        await asyncio.sleep(1.6)
        assert (await http_login(http, admin_users.admin, admin_users.password)).status_code == 303


async def test_next_only_leads_to_a_page_of_the_admin(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    targets = {
        "/admin/users?x=1": "/admin/users?x=1",
        "https://evil.example/admin": "/admin",
        "//evil.example/admin": "/admin",
        "/\\evil.example": "/admin",
        "/leads": "/admin",
        "/admin/../leads": "/admin/../leads",
    }
    async with admin_app(db, client, tmp_path) as http:
        for sent, expected in targets.items():
            http.cookies.clear()
            token = csrf_of((await http.get("/admin/login")).text)
            response = await http.post(
                "/admin/login",
                data={
                    "email": admin_users.admin,
                    "password": admin_users.password,
                    "next": sent,
                    "csrf_token": token,
                },
            )
            assert response.status_code == 303, sent
            assert response.headers["location"] == expected, sent


async def test_the_login_form_needs_its_token(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    async with admin_app(db, client, tmp_path) as http:
        await http.get("/admin/login")
        refused = await http.post(
            "/admin/login",
            data={"email": admin_users.admin, "password": admin_users.password},
        )
    assert refused.status_code == 403
    assert "leadflow_session" not in refused.headers.get("set-cookie", "")


# ------------------------------------------------------------------------- sessions


async def test_session_cookie_flags(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    for overrides, secure in (({}, False), (PRODUCTION, True)):
        async with admin_app(db, client, tmp_path, **overrides) as http:
            form = await http.get("/admin/login")
            token = csrf_of(form.text)
            # Sent by hand: a client keeps Secure cookies off plain HTTP.
            response = await http.post(
                "/admin/login",
                data={
                    "email": admin_users.admin,
                    "password": admin_users.password,
                    "csrf_token": token,
                },
                headers={"Cookie": f"leadflow_login_csrf={token}"},
            )
        assert response.status_code == 303, response.text
        for cookie in (
            next(c for c in form.headers.get_list("set-cookie") if "login_csrf=" in c),
            next(
                c
                for c in response.headers.get_list("set-cookie")
                if c.startswith("leadflow_session=")
            ),
        ):
            flags = [part.strip().lower() for part in cookie.split(";")]
            assert "httponly" in flags and "samesite=lax" in flags and "path=/admin" in flags
            assert ("secure" in flags) is secure, cookie
        # The session cookie holds a random token; the database only its SHA-256.
        value = cookie.split(";")[0].split("=", 1)[1]
        with db.read() as session:
            assert user_store.find_session(session, value, make_settings().session_idle)
            assert user_store.last_seen(session, user_store.digest(value)) is not None
            assert user_store.last_seen(session, value) is None


async def test_an_idle_session_ends(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    async with admin_app(db, client, tmp_path, session_idle_minutes=1.5 / 60) as http:
        await http_login(http, admin_users.viewer, admin_users.password)
        # Used within the idle time, it stays (each visit counts) ...
        for _ in range(4):
            assert (await http.get("/admin")).status_code == 200
            await asyncio.sleep(0.6)
        # ... left alone longer, it ends.
        await asyncio.sleep(1.7)
        response = await http.get("/admin/audit")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?next=/admin/audit"


async def test_a_session_ends_at_its_maximum_age_however_busy(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    async with admin_app(db, client, tmp_path, session_max_hours=2.0 / 3600) as http:
        await http_login(http, admin_users.viewer, admin_users.password)
        statuses = []
        for _ in range(10):
            statuses.append((await http.get("/admin")).status_code)
            await asyncio.sleep(0.3)
    assert statuses[0] == 200 and statuses[-1] == 303, statuses


async def test_signing_out_ends_the_session_on_the_server(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    async with admin_app(db, client, tmp_path) as http:
        await http_login(http, admin_users.viewer, admin_users.password)
        stolen = http.cookies.get("leadflow_session", path="/admin")
        assert stolen
        out = await post_form(http, "/admin/logout", {}, page="/admin")
        assert (out.status_code, out.headers["location"]) == (303, "/admin/login")
        # The cookie's old value no longer opens anything.
        http.cookies.set("leadflow_session", stolen, path="/admin")
        assert (await http.get("/admin")).status_code == 303


# ------------------------------------------------------------------------- CSRF and headers


async def test_admin_forms_need_the_session_csrf_token(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    new_user = {
        "email": "csrf@example.com",
        "role": "admin",
        "password": "a long enough passphrase",
        "password_again": "a long enough passphrase",
    }
    async with admin_app(db, client, tmp_path) as http:
        await http_login(http, admin_users.admin, admin_users.password)
        for token in (None, "0" * 64, ""):
            data = new_user if token is None else {**new_user, "csrf_token": token}
            refused = await http.post("/admin/users", data=data)
            assert refused.status_code == 403
            assert "security token is missing or wrong" in refused.text
        out = await http.post("/admin/logout", data={})
        assert out.status_code == 403
        # A token of another session does not work either.
        async with httpx.AsyncClient(base_url=http.base_url) as other:
            await http_login(other, admin_users.viewer, admin_users.password)
            foreign = csrf_of((await other.get("/admin")).text)
        refused = await http.post("/admin/users", data={**new_user, "csrf_token": foreign})
        assert refused.status_code == 403
        with db.read() as session:
            assert user_store.user_by_email(session, "csrf@example.com") is None
        # With its own token the same form works, and the session is still there.
        created = await post_form(http, "/admin/users", new_user)
        assert created.status_code == 303
        assert (await http.get("/admin")).status_code == 200


async def test_every_response_carries_the_security_headers(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    async with admin_app(db, client, tmp_path) as http:
        responses = [
            await http.get(path)
            for path in ("/", "/form", "/form/thanks", "/livez", "/static/admin.css")
        ]
        responses += [
            await http.get("/admin/login"),
            await http.get("/admin"),  # a redirect
            await http.get("/api/v1/config"),  # a 401
            await http.post("/leads", json={"email": "x"}),  # a 422
        ]
        await http_login(http, admin_users.admin, admin_users.password)
        responses += [await http.get(p) for p in ("/admin", "/admin/users", "/admin/nope")]
        docs = await http.get("/docs")
    for response in responses:
        headers = response.headers
        where = f"{response.request.method} {response.request.url.path}"
        assert headers["content-security-policy"] == CSP, where
        assert headers["x-content-type-options"] == "nosniff", where
        assert headers["referrer-policy"] == "same-origin", where
        assert headers["x-frame-options"] == "DENY", where
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
    # No page of the app carries inline script, event handlers or style.
    for response in responses:
        if response.headers.get("content-type", "").startswith("text/html"):
            html = response.text.lower()
            assert "<script>" not in html and "<style" not in html and "onchange=" not in html
            assert "style=" not in html, response.request.url.path


async def test_lead_data_is_escaped_in_the_inbox(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    with db.session() as session:
        session.add(
            Notification(
                idempotency_key="x1",
                rep_id=1,
                lead_id="abc",
                kind="new_lead",
                text="New lead <img src=x onerror=alert(1)>",
            )
        )
    async with admin_app(db, client, tmp_path) as http:
        await http_login(http, admin_users.admin, admin_users.password)
        page = await http.get("/admin/inbox")
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "<img src=x" not in page.text


# ------------------------------------------------------------------------- roles


async def test_roles_decide_what_a_user_may_open(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    async with admin_app(db, client, tmp_path) as http:
        anonymous = await http.get("/admin/users")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/admin/login?next=/admin/users"

        await http_login(http, admin_users.viewer, admin_users.password)
        forbidden = await http.get("/admin/users")
        assert forbidden.status_code == 403
        assert "needs the admin role" in forbidden.text
        for path in ("/admin", "/admin/tokens", "/admin/audit", "/admin/inbox"):
            assert (await http.get(path)).status_code == 200, path
        # A post to an admin-only form is refused the same way.
        refused = await post_form(
            http, "/admin/users/1", {"action": "deactivate"}, page="/admin/tokens"
        )
        assert refused.status_code == 403 and "needs the admin role" in refused.text


async def test_a_rep_who_is_a_user_sees_their_own_messages(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    with db.session() as session:
        user_store.create_user(
            session, "avery.park@example.com", "Avery", Role.viewer, "x" * 12, "t"
        )
        for n, rep_id in enumerate((1, 2)):
            session.add(
                Notification(
                    idempotency_key=f"k{n}",
                    rep_id=rep_id,
                    lead_id=f"lead{n}",
                    kind="new_lead",
                    text=f"message to rep {rep_id}",
                )
            )
    async with admin_app(db, client, tmp_path) as http:
        await http_login(http, "avery.park@example.com", "x" * 12)
        own = (await http.get("/admin/inbox", params={"rep": "2"})).text
        await post_form(http, "/admin/logout", {}, page="/admin")
        await http_login(http, admin_users.viewer, admin_users.password)
        everyone = (await http.get("/admin/inbox")).text
    assert "message to rep 1" in own and "message to rep 2" not in own
    assert "message to rep 1" in everyone and "message to rep 2" in everyone


async def test_admins_manage_users_and_every_change_is_audited(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    async with admin_app(db, client, tmp_path) as http:
        await http_login(http, admin_users.admin, admin_users.password)
        with db.read() as session:
            viewer = user_store.user_by_email(session, admin_users.viewer)
            assert viewer is not None
        path = f"/admin/users/{viewer.id}"
        await post_form(http, path, {"action": "role", "role": "team_lead"}, page="/admin/users")
        short = await post_form(
            http,
            path,
            {"action": "password", "password": "short", "password_again": "short"},
            page="/admin/users",
        )
        assert "at least 12 characters" in (await http.get("/admin/users")).text
        assert short.status_code == 303
        new = {"action": "password", "password": "new passphrase ok", "password_again": ""}
        new["password_again"] = new["password"]
        await post_form(http, path, new, page="/admin/users")
        await post_form(http, path, {"action": "deactivate"}, page="/admin/users")
        await post_form(http, path, {"action": "reactivate"}, page="/admin/users")
        audit = (await http.get("/admin/audit", params={"kind": "account"})).text
    with db.read() as session:
        changed = user_store.user_by_email(session, admin_users.viewer)
        assert changed is not None and changed.role == "team_lead" and changed.active
        assert user_store.authenticate(session, admin_users.viewer, "new passphrase ok")
        log = [(e.actor, e.action, e.subject) for e in user_store.user_audit_log(session)]
    for action in ("role_changed", "password_reset", "user_deactivated", "user_reactivated"):
        assert ("admin@example.com", action, admin_users.viewer) in log, log
    assert "changed the role of" in audit and "viewer → team lead" in audit


# ------------------------------------------------------------------------- API tokens


async def create_token(http: httpx.AsyncClient, name: str) -> str:
    page = await post_form(http, "/admin/tokens", {"name": name})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    token = page.text.split('id="token-value">', 1)[1].split("<", 1)[0]
    assert token.startswith("lf_"), token
    return token


async def test_api_tokens_act_with_their_users_role(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    lead = {"lead": {"email": "jane@acme.example", "country": "DE", "company_size": 500}}
    async with admin_app(db, client, tmp_path) as http:
        await http_login(http, admin_users.viewer, admin_users.password)
        viewer_token = await create_token(http, "dashboards")
        await post_form(http, "/admin/logout", {}, page="/admin")
        await http_login(http, admin_users.admin, admin_users.password)
        admin_token = await create_token(http, "deploys")
        http.cookies.clear()

        viewer = bearer(viewer_token)
        draft = (await http.get("/api/v1/config/draft", headers=viewer)).json()
        assert (await http.get("/api/v1/config", headers=viewer)).status_code == 200
        assert (await http.post("/api/v1/simulate", json=lead, headers=viewer)).status_code == 200
        assert (await http.post("/api/v1/config/validate", headers=viewer)).status_code == 200
        assert (await http.get("/api/v1/config/versions", headers=viewer)).status_code == 200
        for method, path, body in (
            ("PUT", "/api/v1/config/draft", {k: draft[k] for k in ("revision", "config")}),
            ("POST", "/api/v1/config/publish", {}),
            ("POST", "/api/v1/config/rollback", {"version": 1}),
        ):
            refused = await http.request(method, path, json=body, headers=viewer)
            assert refused.status_code == 403, (path, refused.text)
            assert "admin" in refused.json()["detail"]

        # An admin's token changes the draft, recorded under its user's email.
        change = {"revision": draft["revision"], "config": draft["config"]}
        change["config"]["rules"] = draft["config"]["rules"][:1]
        saved = await http.put("/api/v1/config/draft", json=change, headers=bearer(admin_token))
        assert saved.status_code == 200, saved.text
        published = await http.post("/api/v1/config/publish", json={}, headers=bearer(admin_token))
        assert published.json() == {"version": 2}
        # The installation token still works, as an admin recorded as "api".
        again = await http.post(
            "/api/v1/config/rollback", json={"version": 1}, headers=bearer(API_TOKEN)
        )
        assert again.json() == {"version": 3}

        # Revoked: refused at once.
        await http_login(http, admin_users.viewer, admin_users.password)
        tokens = (await http.get("/admin/tokens")).text
        token_id = tokens.split('id="token-', 1)[1].split('"', 1)[0]
        revoked = await post_form(
            http, f"/admin/tokens/{token_id}/revoke", {}, page="/admin/tokens"
        )
        assert revoked.status_code == 303
        gone = await http.get("/api/v1/config", headers=viewer)
        assert gone.status_code == 401
        listed = (await http.get("/admin/tokens")).text
        assert "revoked" in listed and viewer_token[:8] in listed
        # A made-up token in the same format is refused too.
        assert (await http.get("/api/v1/config", headers=bearer("lf_x" * 10))).status_code == 401

    with db.read() as session:
        actors = [(e.actor, e.action) for e in config_store.audit_log(session)]
        rows = user_store.list_tokens(session, 3)
    assert ("admin@example.com", "draft_saved") in actors
    assert ("admin@example.com", "published") in actors
    assert ("api", "rolled_back") in actors
    # Stored as digests, with the first 8 characters for display, and the last use noted.
    assert rows and all(len(r.token_hash) == 64 and len(r.prefix) == 8 for r in rows)
    assert all(r.token_hash != admin_token for r in rows)
    assert rows[0].last_used_at is not None


async def test_tokens_of_a_deactivated_user_stop_working(
    db: Database, client: Client, tmp_path: Path, admin_users: AdminUsers
) -> None:
    async with admin_app(db, client, tmp_path) as http:
        await http_login(http, admin_users.viewer, admin_users.password)
        token = await create_token(http, "script")
        assert (await http.get("/api/v1/config", headers=bearer(token))).status_code == 200
        with db.session() as session:
            user = user_store.user_by_email(session, admin_users.viewer)
            assert user is not None
            user_store.set_active(session, user, False, "test")
        assert (await http.get("/api/v1/config", headers=bearer(token))).status_code == 401
        # ... and so does their session.
        assert (await http.get("/admin")).status_code == 303


# ------------------------------------------------------------------------- leadflow admin


def run_cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


async def test_leadflow_admin_creates_a_user_who_can_sign_in(
    db: Database, client: Client, tmp_path: Path
) -> None:
    env = leadflow_env(database_url=db.url, data_dir=tmp_path / "data")
    created = run_cli(
        env,
        *("admin", "create-user", "Ops@Example.com", "--role", "team_lead"),
        *("--name", "Olivia Ops", "--password-stdin"),
        stdin="a long enough passphrase\n",
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout == "created ops@example.com (team_lead)\n"

    twice = run_cli(
        env,
        *("admin", "create-user", "ops@example.com", "--role", "admin", "--password-stdin"),
        stdin="another long passphrase\n",
    )
    assert twice.returncode == 1 and "exists already" in twice.stderr
    short = run_cli(
        env, "admin", "reset-password", "ops@example.com", "--password-stdin", stdin="short\n"
    )
    assert short.returncode == 1 and "at least 12 characters" in short.stderr

    async with admin_app(db, client, tmp_path) as http:
        signed_in = await http_login(http, "ops@example.com", "a long enough passphrase")
        assert signed_in.status_code == 303
        dashboard = await http.get("/admin")
        assert "Olivia Ops" in dashboard.text and "team lead" in dashboard.text

        reset = run_cli(
            env,
            *("admin", "reset-password", "ops@example.com", "--password-stdin"),
            stdin="a brand new passphrase\n",
        )
        assert reset.returncode == 0, reset.stderr
        # A reset ends the account's sessions; the new password works.
        assert (await http.get("/admin")).status_code == 303
        assert (await http_login(http, "ops@example.com", "a brand new passphrase")).is_redirect
    with db.read() as session:
        log = [(e.action, e.subject) for e in user_store.user_audit_log(session)]
        assert log[0] == ("password_reset", "ops@example.com")
        assert log[1] == ("user_created", "ops@example.com")
