"""Reading a routing configuration out of a request: JSON (``{"revision", "config"}``
and the like) or the YAML document itself, bounded in size and time, in nesting and
numbers (as ``web.submission`` bounds a lead), and in what YAML aliases may expand to;
and the problems found as the API's ``{"detail": [{"field", "message", "line"}]}``."""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from fastapi import HTTPException, Request
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, SequenceNode

from domain.config import ConfigError, Problem, RoutingConfig
from domain.config_checks import validated
from domain.config_yaml import load_yaml, with_lines
from web.submission import IntakeError, parse_json, read_body

CONFIG_MAX_BYTES = 2 * 1024 * 1024  # 1,000 rules take about 300 KB
MAX_ALIAS_GROWTH = 10_000  # nodes that aliases may add beyond twice the document's
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


def loaded(text: str, *, check: bool) -> RoutingConfig:
    """``load_yaml``, with a document nested beyond the parser's depth and numbers that
    JSON cannot store (``.nan``, ``.inf``; JSON bodies cannot hold them) as problems."""
    try:
        _bounded_aliases(text)
        config = load_yaml(text, check=check)
    except RecursionError:
        raise ConfigError([Problem(location="(yaml)", message="nested too deep")]) from None
    found = [
        Problem(location=where, message="must be a finite number")
        for where in _non_finite(config.model_dump(by_alias=True), "")
    ]
    if found:
        raise ConfigError(with_lines(text, found))
    return config


def _bounded_aliases(text: str) -> None:
    """``ConfigError`` when aliases (``*name``) expand the document to more than twice
    its size: a few hundred bytes of nested aliases would otherwise expand to millions
    of nodes, and minutes of validation."""
    if "*" not in text:
        return
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return  # load_yaml reports it, with its line
    sizes: dict[int, int] = {}

    def size(node: Node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 1  # an alias of its own ancestor counts once
            children: list[Node] = []
            if isinstance(node, MappingNode):
                children = [part for pair in node.value for part in pair]
            elif isinstance(node, SequenceNode):
                children = list(node.value)
            sizes[id(node)] = 1 + sum(size(child) for child in children)
        return sizes[id(node)]

    expanded = size(root) if root is not None else 0
    if expanded > 2 * len(sizes) + MAX_ALIAS_GROWTH:
        message = f"aliases expand the document to {expanded} nodes; write it out instead"
        raise ConfigError([Problem(location="(yaml)", message=message, line=1)])


def _non_finite(value: Any, where: str) -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [where]
    if isinstance(value, dict):
        return [w for k, v in value.items() for w in _non_finite(v, f"{where}.{k}".lstrip("."))]
    if isinstance(value, list):
        return [w for i, v in enumerate(value) for w in _non_finite(v, f"{where}[{i}]")]
    return []


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
