"""The OpenAPI description of ``POST /leads``. The route reads its raw body itself (two
content types, bounded reads), so FastAPI cannot derive the body from a parameter; this
module describes it, and the answers, for API clients and the schema-driven fuzz test."""

from __future__ import annotations

from typing import Any

from domain.lead import (
    MAX_EXTRA_FIELDS,
    MAX_EXTRA_VALUE,
    LeadSubmission,
)
from web.submission import HONEYPOT_FIELD, REDIRECT_FIELD

# Patterns that document, for OpenAPI clients, what the validators check (the validators
# decide; these only describe).
_NO_CONTROLS = "^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*$"
_NO_CONTROLS_BUT_LINES = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"
_EXTRA_NAME = "[A-Za-z][A-Za-z0-9_.-]{0,63}"
_SITE_PATH = "^/([A-Za-z0-9._~!$&'()*+,;=:@?%#-][A-Za-z0-9._~!$&'()*+,;=:@?%#/-]*)?$"


def lead_request_body() -> dict[str, Any]:
    """The OpenAPI request body of ``POST /leads``. The route reads the raw body itself
    (two content types, bounded reads), so FastAPI cannot derive it from a parameter."""
    as_json = LeadSubmission.model_json_schema()
    properties: dict[str, Any] = as_json["properties"]
    for name, prop in properties.items():
        for branch in prop.get("anyOf", [prop]):
            if branch.get("type") == "string" and "format" not in branch:
                branch["pattern"] = _NO_CONTROLS_BUT_LINES if name == "message" else _NO_CONTROLS
    properties["phone"]["anyOf"][0]["pattern"] = "^[0-9+()./ xXeEtT-]{4,40}$"
    properties["email"]["maxLength"] = 254
    properties["extra"].update(
        maxProperties=MAX_EXTRA_FIELDS,
        propertyNames={"pattern": f"^{_EXTRA_NAME}$"},
        additionalProperties={
            "type": "string",
            "maxLength": MAX_EXTRA_VALUE,
            "pattern": _NO_CONTROLS,
        },
    )
    properties[REDIRECT_FIELD] = {
        "type": "string",
        "pattern": _SITE_PATH,
        "description": "HTML forms: a path on this site (or a URL of the host posted to) "
        "to answer 303 to, with ?lead_id=…",
    }
    properties[HONEYPOT_FIELD] = {
        "type": "string",
        "description": "Honeypot: filled in, the post is answered as usual and dropped",
    }
    # The form's fields are strings; empty ones count as absent.
    form_fields: dict[str, Any] = {}
    for name, prop in properties.items():
        if name == "extra":
            continue
        branch = next(b for b in prop.get("anyOf", [prop]) if b.get("type") != "null")
        form_fields[name] = (
            {"type": "string", "pattern": "^[1-9][0-9]{0,6}$"}
            if name == "company_size"
            else dict(branch)
        )
    as_form = {
        "type": "object",
        "required": ["email"],
        "properties": form_fields,
        # Any other field (or "extra.<name>") is kept as a free-form extra field.
        "propertyNames": {
            "pattern": f"^({'|'.join(sorted(form_fields))}|(extra\\.)?{_EXTRA_NAME})$"
        },
        "additionalProperties": properties["extra"]["additionalProperties"],
    }
    return {
        "required": True,
        "content": {
            "application/json": {"schema": as_json},
            "application/x-www-form-urlencoded": {"schema": as_form},
        },
    }


_PROBLEMS = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["detail"],
            "properties": {
                "detail": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                }
            },
        }
    }
}
LEAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted: Temporal has recorded the lead",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["lead_id", "status_url"],
                    "properties": {
                        "lead_id": {"type": "string"},
                        "status_url": {"type": "string"},
                    },
                }
            }
        },
    },
    303: {"description": "Accepted (HTML form with _redirect): see Location"},
    **{
        status: {"description": description, "content": _PROBLEMS}
        for status, description in (
            (400, "Body is not valid JSON or form data, or is nested too deep"),
            (408, "Body not received within LEADFLOW_BODY_READ_TIMEOUT_S"),
            (413, "Body larger than LEADFLOW_MAX_BODY_BYTES"),
            (415, "Content type is neither JSON nor a URL-encoded form"),
            (422, "A field is invalid; each problem names its field"),
            (429, "Too many posts for this address; see Retry-After"),
            (503, "Temporal unavailable: nothing was accepted; retry after Retry-After"),
        )
    },
}
