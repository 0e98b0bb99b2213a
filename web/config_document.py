"""Reading a routing configuration out of a request: JSON (``{"revision", "config"}``
and the like) or the YAML document itself, bounded in size and time, in nesting and
numbers (as ``web.submission`` bounds a lead; ``domain.config_yaml.load_yaml`` bounds
what YAML aliases may expand to); and the problems found as the API's
``{"detail": [{"field", "message", "line"}]}``."""

from __future__ import annotations

import re
from typing import Any

from fastapi import HTTPException, Request
from pydantic import ValidationError

from domain.config import Problem, RoutingConfig
from domain.config_checks import validated
from web.submission import IntakeError, parse_json, read_body

CONFIG_MAX_BYTES = 2 * 1024 * 1024  # 1,000 rules take about 300 KB
JSON_TYPE, YAML_TYPE = "application/json", "application/yaml"
YAML_TYPES = frozenset({YAML_TYPE, "application/x-yaml", "text/yaml", "text/x-yaml"})
_REVISION = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


def errors(found: list[Problem], prefix: str = "") -> list[dict[str, Any]]:
    """Problems as the API's ``detail`` entries, each with its line when it has one;
    ``prefix`` (``config``) places a document's locations in the request body."""
    out = []
    for problem in found:
        field = problem.location
        if prefix:
            field = prefix if field == "(document)" else f"{prefix}.{field}"
        entry: dict[str, Any] = {"field": field, "message": problem.message}
        if problem.line is not None:
            entry["line"] = problem.line
        out.append(entry)
    return out


def refused(status: int, field: str, message: str) -> HTTPException:
    return HTTPException(status, [{"field": field, "message": message}])


async def read_document(request: Request) -> tuple[str | None, Any]:
    """The body: ``(text, None)`` for YAML, ``(None, data)`` for JSON; bounded in size,
    time, nesting and numbers."""
    media = (request.headers.get("content-type") or JSON_TYPE).split(";")[0].strip().lower()
    if media != JSON_TYPE and media not in YAML_TYPES:
        raise refused(415, "content-type", "send application/json or application/yaml")
    try:
        body = await read_body(request, CONFIG_MAX_BYTES)
        if media == JSON_TYPE:
            return None, parse_json(body) if body.strip() else None
    except IntakeError as err:
        raise HTTPException(err.status, err.errors) from None
    try:
        return body.decode("utf-8"), None
    except UnicodeDecodeError:
        raise refused(400, "body", "the YAML document must be UTF-8") from None


def shaped(data: Any) -> RoutingConfig:
    """The configuration in ``data``, its shape checked (not references between its
    sections); ``ConfigError`` naming every problem."""
    try:
        return RoutingConfig.model_validate(data)
    except ValidationError:
        validated(data)  # raises ConfigError: the same errors, worded as problems
        raise


def parsed(model: Any, data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        detail = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in err.errors(include_url=False)
        ]
        raise HTTPException(422, detail) from None


def revision_of(header: str | None) -> int:
    if header is None:
        raise refused(
            428,
            "If-Match",
            "send the draft revision this edit is based on as If-Match (the ETag of "
            'GET /api/v1/config/draft, like "3"; "0" when there is no draft yet)',
        )
    found = _REVISION.match(header)
    if found is None:
        raise refused(422, "If-Match", 'must be a draft revision, like "3"')
    return int(found.group(1))
