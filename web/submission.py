"""Reading a lead submission out of a request: the bounded body read (size and time),
JSON and URL-encoded form parsing with bounds on nesting and numbers, the redirect of HTML
forms, and validation into ``LeadSubmission``. Every refusal is an ``IntakeError`` naming
the field and the problem."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from domain.lead import (
    AT_INTAKE,
    LeadSubmission,
    control_character_error,
    field_errors,
)
from web.deps import get_context

log = logging.getLogger("leadflow.intake")

HONEYPOT_FIELD = "_hp"
REDIRECT_FIELD = "_redirect"
EXTRA_PREFIX = "extra."
KNOWN_FIELDS = set(LeadSubmission.model_fields) - {"extra"}
# JSON bodies: deeper nesting would exhaust the parser's recursion, and longer integers
# the interpreter's int conversion limit; neither is a lead.
MAX_JSON_DEPTH = 32
MAX_INT_DIGITS = 18


class IntakeError(Exception):
    def __init__(self, status: int, reason: str, errors: list[dict[str, str]]) -> None:
        self.status = status
        self.reason = reason
        self.errors = errors


async def read_body(request: Request, limit: int, timeout_s: float | None = None) -> bytes:
    """The request body: at most ``limit`` bytes, read within ``timeout_s`` (default
    LEADFLOW_BODY_READ_TIMEOUT_S), so a client trickling its body cannot hold the server."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise IntakeError(
            413,
            "too_large",
            [{"field": "body", "message": f"request body is larger than {limit} bytes"}],
        )
    if timeout_s is None:
        timeout_s = get_context(request).settings.body_read_timeout_s
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise IntakeError(
                        413,
                        "too_large",
                        [
                            {
                                "field": "body",
                                "message": f"request body is larger than {limit} bytes",
                            }
                        ],
                    )
    except TimeoutError as err:
        log.info("request body not received within %s s", timeout_s)
        raise IntakeError(
            408,
            "body_timeout",
            [{"field": "body", "message": f"request body not received within {timeout_s:g} s"}],
        ) from err
    except ClientDisconnect as err:
        # The client went away mid-body: nobody is left to answer, and nothing to fix here.
        log.debug("client disconnected before sending the whole body")
        raise IntakeError(
            400,
            "client_disconnected",
            [{"field": "body", "message": "the client disconnected before sending the body"}],
        ) from err
    return bytes(body)


class _RefusedNumber:
    """Stands in for a JSON number the intake refuses, so the error can name its field."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _json_int(literal: str) -> int | _RefusedNumber:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        return _RefusedNumber(f"number has more than {MAX_INT_DIGITS} digits")
    return int(literal)


def _json_float(literal: str) -> float | _RefusedNumber:
    value = float(literal)
    return value if math.isfinite(value) else _RefusedNumber("number is out of range")


def _json_constant(literal: str) -> _RefusedNumber:
    return _RefusedNumber(f"{literal} is not a number JSON allows")


def _refused_numbers(value: object, path: str = "") -> Iterator[dict[str, str]]:
    if isinstance(value, _RefusedNumber):
        yield {"field": path or "body", "message": value.reason}
    elif isinstance(value, dict):
        for key, item in value.items():
            # The client's own key, made printable UTF-8 (JSON allows lone surrogates).
            name = key[:80].encode("utf-8", "replace").decode("utf-8")
            yield from _refused_numbers(item, f"{path}.{name}" if path else name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _refused_numbers(item, f"{path}.{index}" if path else str(index))


_JSON_STRUCTURE = re.compile(r'[\[\]{}"\\]')


def _json_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets inside strings
    ignored); one pass over the structural characters, without recursion."""
    depth = deepest = 0
    in_string = False
    escaped_at = -1
    for found in _JSON_STRUCTURE.finditer(text):
        at, char = found.start(), found.group()
        if at == escaped_at:
            continue
        if in_string:
            if char == "\\":
                escaped_at = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(body: bytes) -> object:
    """A JSON body, bounded in nesting and numbers; ``IntakeError`` naming the problem."""
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass") if body else "null"
    except UnicodeDecodeError as err:
        raise IntakeError(
            400, "bad_json", [{"field": "body", "message": f"body is not valid JSON: {err}"}]
        ) from err
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _json_depth(text) > MAX_JSON_DEPTH:
        raise IntakeError(
            400,
            "too_deep",
            [
                {
                    "field": "body",
                    "message": f"JSON is nested deeper than {MAX_JSON_DEPTH} levels",
                }
            ],
        )
    try:
        parsed = json.loads(
            text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
        )
    except json.JSONDecodeError as err:
        raise IntakeError(
            400, "bad_json", [{"field": "body", "message": f"body is not valid JSON: {err}"}]
        ) from err
    refused = list(_refused_numbers(parsed))
    if refused:
        raise IntakeError(422, "invalid", refused)
    return parsed


def parse_body(content_type: str, body: bytes) -> tuple[dict[str, Any], bool]:
    """The submitted fields, and whether they came from an HTML form."""
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json":
        parsed = parse_json(body)
        if not isinstance(parsed, dict):
            raise IntakeError(
                422, "invalid", [{"field": "body", "message": "body must be a JSON object"}]
            )
        return parsed, False
    if media == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
        except (UnicodeDecodeError, ValueError) as err:
            raise IntakeError(
                400,
                "bad_form",
                [{"field": "body", "message": f"body is not a valid URL-encoded form: {err}"}],
            ) from err
        data: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for key, value in pairs:
            value = value.strip()
            if key in KNOWN_FIELDS or key in (HONEYPOT_FIELD, REDIRECT_FIELD):
                if value != "":
                    data[key] = value
            elif value != "":
                # Free-form fields of a form: "extra.<name>" or any other field name.
                extra[key.removeprefix(EXTRA_PREFIX)] = value
        if extra:
            data["extra"] = extra
        return data, True
    raise IntakeError(
        415,
        "unsupported_media_type",
        [
            {
                "field": "content-type",
                "message": "send application/json or application/x-www-form-urlencoded",
            }
        ],
    )


def _printable_url(target: str) -> bool:
    """No control characters (browsers drop tabs and newlines, so "/\\t/evil.example"
    would become "//evil.example"), no backslash (read as "/"), no lone surrogate, and
    parseable."""
    if "\\" in target or control_character_error(target) is not None:
        return False
    try:
        target.encode("utf-8")
        urlsplit(target)
    except (UnicodeEncodeError, ValueError):
        return False
    return True


def _safe_redirect(target: object, host: str | None) -> str | None:
    """Only same-site paths or the host the form was posted to: no open redirects."""
    if target is None or target == "":
        return None
    if isinstance(target, str) and _printable_url(target):
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and target.startswith("/")
            and not target.startswith("//")
        ):
            return target
        if parts.scheme in ("http", "https") and parts.netloc == host:
            return target
    raise IntakeError(
        422,
        "invalid",
        [{"field": REDIRECT_FIELD, "message": "must be a path on this site (e.g. /form/thanks)"}],
    )


def validate_fields(
    data: dict[str, Any], host: str | None, redirect_param: str | None = None
) -> tuple[LeadSubmission, str | None, bool]:
    """The submission, the redirect target and whether the honeypot is filled (a bot: to
    be answered like anyone else, then dropped); ``IntakeError`` naming each bad field
    otherwise. A bot's post is validated too, so that its answer gives nothing away."""
    redirect = _safe_redirect(data.pop(REDIRECT_FIELD, None) or redirect_param, host)
    bot = bool(data.pop(HONEYPOT_FIELD, None))
    try:
        return LeadSubmission.model_validate(data, context=AT_INTAKE), redirect, bot
    except ValidationError as err:
        raise IntakeError(422, "invalid", field_errors(err)) from err
