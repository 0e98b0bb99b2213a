"""The routing configuration as YAML: ``load_yaml`` (text in, a checked ``RoutingConfig``
out) and ``dump_yaml`` (its canonical text). Pure: no files, no I/O.

Reading follows ``yaml.safe_load`` (no tags that build Python objects) with three
YAML 1.1 surprises removed, so that a value means what it looks like:

- ``17:30`` is the text "17:30", not the base-60 number 1050 (``09:00`` already was text);
- ``NO``, ``yes``, ``on`` and ``off`` are text (only true/false are booleans), so Norway's
  country code survives;
- ``010`` is the text "010", not the octal number 8 (postal prefixes keep their zero).

A key given twice in one mapping is an error, not a silent "the last one wins". Every
problem (YAML syntax, the document's shape, ``domain.config_checks.problems``) names its location
and the line of the node there, or of its nearest parent that exists.

``dump_yaml`` is canonical: sections and fields in the model's order, nothing that is
unset (null or an empty list), block style with flow lists only for lists of plain values,
times as '09:00' and dates as 2026-07-01, no line wrapping. Export → import → export gives
the same bytes.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from domain.config import ConfigError, KpisConfig, Problem, RoutingConfig
from domain.config_checks import validated

SYNTAX = "(yaml)"
MAX_ALIAS_GROWTH = 10_000  # nodes that aliases may add beyond twice the document's
DOCUMENT = "(document)"
_TIME = re.compile(r"^\d{2}:\d{2}(?::\d{2})?$")
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"


class _Loader(yaml.SafeLoader):
    """``SafeLoader`` without base-60 numbers, octal numbers and yes/no/on/off booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT, _FLOAT, _BOOL)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
        r"|\.[0-9_]+(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _load_yaml(text: str, *, check: bool) -> RoutingConfig:
    """The configuration in ``text``; ``ConfigError`` with every problem and its line.

    With ``check=False`` only the document's shape is checked, not references between its
    sections (a draft may be saved half-done; publishing checks everything)."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        duplicates = _duplicate_keys(root) if root is not None else []
        if duplicates:
            raise ConfigError(duplicates)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as err:
        raise ConfigError([_syntax_problem(err)]) from None
    except yaml.YAMLError as err:
        raise ConfigError([Problem(location=SYNTAX, message=str(err))]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        found = "an empty document" if data is None else f"a {type(data).__name__}"
        raise ConfigError(
            [
                Problem(
                    location=DOCUMENT,
                    message=f"expected a mapping with reps, pools, territories, rules and "
                    f"fallback, found {found}",
                    line=_line(root) if root is not None else 1,
                )
            ]
        )
    assert root is not None  # a mapping was read
    try:
        if check:
            return validated(data)
        return _shaped(data)
    except ConfigError as err:
        raise ConfigError(_placed(root, err.problems)) from None


def load_yaml(text: str, *, check: bool = True) -> RoutingConfig:
    """The configuration in ``text``; ``ConfigError`` with every problem and its line.

    With ``check=False`` only the document's shape is checked, not references between its
    sections (a draft may be saved half-done; publishing checks everything). A document
    whose aliases would expand it many times over, one nested beyond the parser's depth,
    and numbers JSON cannot store (``.nan``, ``.inf``) are problems too, whoever hands
    the text in (the API, ``leadflow config import``)."""
    try:
        _bounded_aliases(text)
        config = _load_yaml(text, check=check)
    except RecursionError:
        raise ConfigError([Problem(location=SYNTAX, message="nested too deep")]) from None
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
        return  # _load_yaml reports it, with its line
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
        raise ConfigError([Problem(location=SYNTAX, message=message, line=1)])


def _non_finite(value: Any, where: str) -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [where]
    if isinstance(value, dict):
        return [w for k, v in value.items() for w in _non_finite(v, f"{where}.{k}".lstrip("."))]
    if isinstance(value, list):
        return [w for i, v in enumerate(value) for w in _non_finite(v, f"{where}[{i}]")]
    return []


def with_lines(text: str, found: list[Problem]) -> list[Problem]:
    """``found`` with the line of each location in ``text`` (a document ``dump_yaml``
    wrote, say), for problems found on a configuration rather than on its text."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return found
    return _placed(root, found) if root is not None else found


def check_yaml(text: str) -> list[Problem]:
    """Every problem of ``text``, each with its line (empty: the document is valid)."""
    try:
        load_yaml(text)
    except ConfigError as err:
        return err.problems
    return []


def dump_yaml(config: RoutingConfig) -> str:
    """The canonical YAML text of ``config``."""
    data = _readable(_pruned(config.dump()))
    return str(
        yaml.dump(
            data,
            Dumper=_Dumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
            width=1_000_000,
            indent=2,
        )
    )


# ------------------------------------------------------------------------------ reading


def _shaped(data: dict[str, Any]) -> RoutingConfig:
    try:
        return RoutingConfig.model_validate(data)
    except ValidationError:
        validated(data)  # raises ConfigError: the same errors, worded as problems
        raise


def _syntax_problem(err: yaml.MarkedYAMLError) -> Problem:
    mark = err.problem_mark or err.context_mark
    parts = [p for p in (err.context, err.problem) if p]
    message = "; ".join(parts) or "not valid YAML"
    if mark is not None:
        message += f" (column {mark.column + 1})"
    return Problem(
        location=SYNTAX, message=message, line=mark.line + 1 if mark is not None else None
    )


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _duplicate_keys(root: Node) -> list[Problem]:
    found: list[Problem] = []
    seen_nodes: set[int] = set()

    def walk(node: Node, where: str) -> None:
        if id(node) in seen_nodes:  # an alias of a node already walked (or a cycle)
            return
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            lines: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode):
                    name = str(key.value)
                    if name in lines and name != "<<":
                        found.append(
                            Problem(
                                location=_join(where, name),
                                message=f"key {name!r} is given twice (first on line "
                                f"{lines[name]})",
                                line=_line(key),
                            )
                        )
                    lines.setdefault(name, _line(key))
                    walk(value, _join(where, name))
                else:
                    walk(value, where)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{where}[{index}]")

    walk(root, "")
    return found


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _placed(root: Node, found: list[Problem]) -> list[Problem]:
    return [
        p if p.line is not None else p.model_copy(update={"line": _line_of(root, p.location)})
        for p in found
    ]


def _line_of(root: Node, location: str) -> int:
    """The line of ``location`` (``rules[2].when.all[0].op``): of the key when the
    location ends at a key, of the item when it ends at an index; when the document has
    no such node, of the nearest parent that it has."""
    node = root
    line = _line(root)
    for name, index in _PATH_PART.findall(location if location != DOCUMENT else ""):
        if name:
            if not isinstance(node, MappingNode):
                break
            entry = _entry(node, name)
            if entry is None:
                break
            key, node = entry
            line = _line(key)
        else:
            position = int(index)
            if not isinstance(node, SequenceNode) or position >= len(node.value):
                break
            node = node.value[position]
            line = _line(node)
    return line


def _entry(node: MappingNode, name: str) -> tuple[Node, Node] | None:
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.value == name:
            return key, value
    # Keys brought in by a merge key (<<: *defaults) live in the merged mapping.
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.value == "<<":
            for merged in value.value if isinstance(value, SequenceNode) else [value]:
                if isinstance(merged, MappingNode):
                    found = _entry(merged, name)
                    if found is not None:
                        return found
    return None


# ------------------------------------------------------------------------------ writing


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, flow style for lists of plain values.

    It quotes every string that YAML 1.1 would read as something else (``NO``, ``17:30``,
    ``010``), so the text reads the same in any YAML reader, not only ours."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:  # noqa: ARG002
        super().increase_indent(flow, False)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    plain = all(not isinstance(item, dict | list) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=plain)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if _TIME.match(data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="'")
    if _UNSAFE.search(data):
        # Control characters and line breaks escaped, on one line (PyYAML would write a
        # NEL inside single quotes, where a reader folds it into a space).
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_str(data)


class _Flow(dict[str, Any]):
    """A mapping written on one line: ``{field: country, op: eq, value: DE}``."""


def _represent_flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(_Flow, _represent_flow)
_Dumper.add_representer(str, _represent_str)


def _pruned(value: Any) -> Any:
    """``value`` without what is unset: null values and empty lists (every field that may
    be null or empty has that as its default, so nothing is lost)."""
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _readable(data: dict[str, Any]) -> dict[str, Any]:
    """Times as HH:MM (seconds only when set), the days of a period and holidays as dates,
    and the small mappings on one line each: a condition, a member, an action, working
    hours, a period, an SLA, a grade, an onboarding task, an approval level, a quota, a
    forecast; no ``approvals`` section when it has no chain, no ``kpis`` section when it
    holds only its defaults."""
    for rep in data.get("reps", []):
        hours = rep.get("working_hours")
        if hours:
            for key in ("start", "end"):
                hours[key] = _short_time(hours[key])
            rep["working_hours"] = _Flow(hours)
        rep["out_of_office"] = [
            _Flow({key: date.fromisoformat(value) for key, value in period.items()})
            for period in rep.get("out_of_office", [])
        ]
        if not rep["out_of_office"]:
            del rep["out_of_office"]
    for pool in data.get("pools", []):
        if "members" in pool:
            pool["members"] = [_Flow(member) for member in pool["members"]]
        for key in ("fallback", "on_return", "sla"):
            if key in pool:
                pool[key] = _Flow(pool[key])
        if "holidays" in pool:
            pool["holidays"] = [date.fromisoformat(day) for day in pool["holidays"]]
    for rule in data.get("rules", []):
        if "when" in rule:
            rule["when"] = _flow_when(rule["when"])
        rule["assign"] = _Flow(rule["assign"])
    if "fallback" in data:
        data["fallback"] = _Flow(data["fallback"])
    scoring = data.get("scoring", {})
    for rule in scoring.get("rules", []):
        rule["when"] = _flow_when(rule["when"])
    if "grades" in scoring:
        scoring["grades"] = [_Flow(grade) for grade in scoring["grades"]]
    handoff = data.get("handoff", {})
    if "onboarding_tasks" in handoff:
        handoff["onboarding_tasks"] = [_Flow(task) for task in handoff["onboarding_tasks"]]
    approvals = data.get("approvals")
    if approvals == {}:
        del data["approvals"]  # no chain: a document without the section reads the same
    for chain in (approvals or {}).values():
        chain["levels"] = [_Flow(level) for level in chain.get("levels", [])]
    kpis = data.get("kpis")
    if kpis == _pruned(KpisConfig().model_dump(mode="json")):
        del data["kpis"]  # the defaults: a document without the section reads the same
    for key in ("quotas", "forecasts"):
        if kpis and key in kpis:
            kpis[key] = [_Flow(entry) for entry in kpis[key]]
    return data


def _flow_when(node: dict[str, Any]) -> dict[str, Any]:
    for key in ("all", "any"):
        if key in node:
            return {key: [_flow_when(child) for child in node[key]]}
    return _Flow(node)


def _short_time(value: str) -> str:
    return value[:5] if value.endswith(":00") and len(value) == 8 else value
