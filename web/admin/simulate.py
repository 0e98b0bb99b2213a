"""The simulate page: a lead typed into a form (or pasted as JSON) scored and routed under
the published configuration or the draft, with the full explanation: each part of the
score and why, then the routing decision. It goes through the same code as ``POST
/api/v1/simulate`` (``web.api_routing.simulate_lead``) and stores nothing."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from domain.config import ConfigError
from domain.scoring import Category, ScoreResult
from domain.users import Role
from web.admin import nav
from web.admin.deps import CsrfForm, Viewer
from web.admin.explain import routing_view
from web.admin.render import render
from web.api_models import Simulated, SimulateIn
from web.api_routing import simulate_lead
from web.deps import Context

router = APIRouter()
nav.register("Routing", "Simulate", "/admin/simulate", Role.viewer, order=50)

# The form's fields, in its order: (name, label, input type).
FIELDS = (
    ("email", "Email", "email"),
    ("first_name", "First name", "text"),
    ("last_name", "Last name", "text"),
    ("company", "Company", "text"),
    ("title", "Title", "text"),
    ("country", "Country", "text"),
    ("state", "State or region", "text"),
    ("postal_code", "Postal code", "text"),
    ("company_size", "Company size", "number"),
    ("industry", "Industry", "text"),
    ("source", "Source", "text"),
    ("utm_source", "UTM source", "text"),
    ("utm_medium", "UTM medium", "text"),
    ("utm_campaign", "UTM campaign", "text"),
    ("utm_term", "UTM term", "text"),
    ("utm_content", "UTM content", "text"),
)
CONFIGS = [("published", "Published configuration"), ("draft", "Draft")]
MAX_JSON = 64 * 1024


def _page(values: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"fields": FIELDS, "configs": CONFIGS, "values": values, **extra}


@router.get("/simulate", response_class=HTMLResponse)
async def simulate_form(request: Request, user: Viewer) -> HTMLResponse:
    """The empty form."""
    values = {"config": "published"}
    return render(request, user, "admin/simulate.html", _page(values))


@router.post("/simulate", response_class=HTMLResponse)
async def simulate(
    request: Request, context: Context, user: Viewer, form: CsrfForm
) -> HTMLResponse:
    """Route the lead of the form (or of its JSON) and explain the decision."""
    values = {name: str(form.get(name) or "") for name, _, _ in FIELDS}
    values["json"] = str(form.get("json") or "")
    values["config"] = "draft" if form.get("config") == "draft" else "published"
    errors: dict[str, str] = {}
    lead = _lead_of(values, errors)
    body = None
    if lead is not None:
        try:
            body = SimulateIn.model_validate({"lead": lead, "config": values["config"]})
        except ValidationError as err:
            _place(err, errors, "json" if values["json"].strip() else None)
    if body is None:
        page = _page(values, errors=errors)
        return render(request, user, "admin/simulate.html", page, status=422)
    try:
        result: Simulated = await run_in_threadpool(simulate_lead, context, body)
    except ConfigError as err:
        page = _page(values, draft_problems=err.problems)
        return render(request, user, "admin/simulate.html", page, status=422)
    names = {result.rep.email: result.rep.name} if result.rep is not None else {}
    decision = result.model_dump(mode="json")
    page = _page(
        values,
        result=result,
        routing=routing_view(decision, names),
        score_parts=_score_parts(result.scoring),
    )
    return render(request, user, "admin/simulate.html", page)


def _score_parts(scoring: ScoreResult | None) -> list[dict[str, str]]:
    """Each part of the score as a row: its points with their sign, why, and the rule."""
    rows = []
    for part in scoring.parts if scoring is not None else []:
        points = round(part.points)
        signed = f"+{points}" if points > 0 else f"\u2212{-points}" if points < 0 else "0"
        why = part.reason.removeprefix(f"{signed} ") or part.rule
        rows.append(
            {
                "points": signed,
                "sign": "up" if points > 0 else "down" if points < 0 else "",
                "why": why,
                "rule": part.rule if part.category is Category.fit else "engagement",
            }
        )
    return rows


def _lead_of(values: dict[str, str], errors: dict[str, str]) -> dict[str, Any] | None:
    """The lead's fields: the pasted JSON object when there is one, else the form's
    filled-in fields; None (with ``errors``) when the JSON cannot be read."""
    raw = values["json"].strip()
    if not raw:
        return {name: value.strip() for name, value in values.items() if _is_field(name, value)}
    if len(raw) > MAX_JSON:
        errors["json"] = f"at most {MAX_JSON // 1024} KB of JSON"
        return None
    try:
        data = json.loads(raw)
    except ValueError as err:
        errors["json"] = f"not valid JSON: {err}"
        return None
    if not isinstance(data, dict):
        errors["json"] = 'give a JSON object of the lead\'s fields, like {"email": "…"}'
        return None
    return data.get("lead") if isinstance(data.get("lead"), dict) else data


def _is_field(name: str, value: str) -> bool:
    return name not in ("json", "config") and bool(value.strip())


def _place(err: ValidationError, errors: dict[str, str], json_field: str | None) -> None:
    """Each validation error next to the form field it concerns (with pasted JSON, all
    of them next to the JSON, naming the field)."""
    for item in err.errors(include_url=False):
        location = [str(p) for p in item["loc"] if p != "lead"]
        name = ".".join(location) or "lead"
        message = str(item["msg"]).removeprefix("Value error, ")
        if json_field is None and name in {f for f, _, _ in FIELDS}:
            errors.setdefault(name, message)
        else:
            key = json_field or "email"
            line = f"{name}: {message}"
            errors[key] = f"{errors[key]}; {line}" if key in errors else line
