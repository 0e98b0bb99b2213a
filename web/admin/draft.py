"""The draft as the configuration pages edit it: read with its problems (for the draft bar
and next to what they concern), saved whole through ``store.config.save_draft`` with the
revision the form was rendered from (``StaleDraft`` when somebody saved in between) and
the user's email as the actor; renames that follow references; and what a team lead may
change.

A team lead may change the availability (working hours, out of office) of the reps in
the pools they manage, and the weights and caps of those pools' members; nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.config import Problem, RoutingConfig
from domain.config_checks import problems
from domain.users import Role, at_least
from store import config as config_store
from store.config import StaleDraft
from web.admin.deps import AdminUser
from web.api_config import current_draft
from web.deps import AppContext

__all__ = ["DraftView", "StaleDraft", "load", "save"]

_INDEX = re.compile(r"^(\w+)\[(\d+)\]")


@dataclass(frozen=True)
class DraftView:
    """The draft as a page shows it. Revision 0: none saved yet, the configuration in
    force is the starting point."""

    revision: int
    config: RoutingConfig
    updated_by: str | None
    updated_at: datetime | None
    problems: list[Problem]

    def under(self, section: str, index: int) -> list[Problem]:
        """The problems of ``<section>[index]`` and of anything inside it."""
        prefix = f"{section}[{index}]"
        return [
            p
            for p in self.problems
            if p.location == prefix or p.location.startswith((f"{prefix}.", f"{prefix}["))
        ]

    def counts(self, section: str) -> dict[int, int]:
        """How many problems each item of ``section`` has."""
        out: dict[int, int] = {}
        for p in self.problems:
            found = _INDEX.match(p.location)
            if found and found.group(1) == section:
                out[int(found.group(2))] = out.get(int(found.group(2)), 0) + 1
        return out

    def bar(self) -> dict[str, Any]:
        """The draft bar's context."""
        return {"draft": self}


def load(context: AppContext) -> DraftView:
    with context.db.read() as session:
        found = config_store.get_draft(session)
        revision, config = current_draft(session, context)
    return DraftView(
        revision=revision,
        config=config,
        updated_by=found.updated_by if found else None,
        updated_at=found.updated_at if found else None,
        problems=problems(config),
    )


def save(context: AppContext, user: AdminUser, config: RoutingConfig, revision: int) -> int:
    """Save ``config`` as the draft, based on ``revision``; the new revision.
    ``StaleDraft`` when the draft moved since."""
    with context.db.session() as session:
        return config_store.save_draft(session, config, user.email, revision)


def revision_of(form: Any) -> int:
    """The draft revision a form was rendered from (-1 when it carries none: refused as
    stale)."""
    value = form.get("revision")
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 10 else -1


# ------------------------------------------------------------------------ renames


def renamed(data: dict[str, Any], kind: str, old: str, new: str) -> None:
    """Follow the rename of a rep (by email), pool or territory through ``data`` (a
    dumped configuration), so that nothing that named it breaks."""
    if old == new or not old:
        return

    def assign(node: dict[str, Any] | None) -> None:
        if not node:
            return
        if node.get(kind) == old:
            node[kind] = new
        assign(node.get("else"))

    def when(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("all", "any"):
                for child in node.get(key) or []:
                    when(child)
            if (
                kind == "territory"
                and node.get("op") == "in_territory"
                and node.get("value") == old
            ):
                node["value"] = new

    if kind in ("rep", "pool"):
        for rule in data["rules"]:
            assign(rule["assign"])
        assign(data["fallback"])
    if kind == "rep":
        for pool in data["pools"]:
            for member in pool["members"]:
                if member["rep"] == old:
                    member["rep"] = new
            if pool.get("fallback") and pool["fallback"].get("rep") == old:
                pool["fallback"]["rep"] = new
            if pool.get("manager") == old:
                pool["manager"] = new
    if kind == "territory":
        for rule in data["rules"]:
            when(rule.get("when"))


def find(items: list[Any], key: str, attr: str = "name") -> int | None:
    """The index of the item whose ``attr`` is ``key``, or None."""
    return next((i for i, item in enumerate(items) if getattr(item, attr) == key), None)


# ------------------------------------------------------------------------ team leads


def managed(config: RoutingConfig, user: AdminUser) -> set[str]:
    """Names of the draft's pools ``user`` manages (those of the published version)."""
    return {p.name for p in config.pools if p.name in user.managed_pools}


def may_edit_rep(config: RoutingConfig, user: AdminUser, email: str) -> bool:
    """Whether ``user`` may change something of rep ``email`` (its availability, for a
    team lead: the rep is in a pool they manage)."""
    if at_least(user.role, Role.admin):
        return True
    if not at_least(user.role, Role.team_lead):
        return False
    pools = managed(config, user)
    return any(m.rep == email for p in config.pools if p.name in pools for m in p.members)


def team_lead_may(old: RoutingConfig, new: RoutingConfig, user: AdminUser) -> bool:
    """Whether going from ``old`` to ``new`` changes only what ``user`` may change."""
    if at_least(user.role, Role.admin):
        return True
    if not at_least(user.role, Role.team_lead):
        return old == new
    pools = managed(old, user)
    reps = {m.rep for p in old.pools if p.name in pools for m in p.members}
    return _masked(old, pools, reps) == _masked(new, pools, reps)


def _masked(config: RoutingConfig, pools: set[str], reps: set[str]) -> dict[str, Any]:
    """``config`` without what a team lead of ``pools`` may change."""
    data = config.dump()
    for rep in data["reps"]:
        if rep["email"] in reps:
            rep["working_hours"] = rep["out_of_office"] = None
    for pool in data["pools"]:
        if pool["name"] in pools:
            for member in pool["members"]:
                member["weight"] = member["daily_cap"] = member["weekly_cap"] = None
    return data


def replaced(
    config: RoutingConfig, section: str, index: int | None, item: dict[str, Any], kind: str = ""
) -> RoutingConfig:
    """``config`` with ``item`` at ``section[index]`` (appended when index is None); a
    rename of a ``kind`` ("rep", "pool", "territory") follows its references."""
    data = config.dump()
    if index is None:
        data[section].append(item)
    else:
        key = "email" if kind == "rep" else "name"
        old = data[section][index].get(key, "")
        data[section][index] = item
        if kind:
            renamed(data, kind, old, item[key])
    return RoutingConfig.model_validate(data)


def stale_text(view: DraftView) -> str:
    """What a form refused as stale says (``view``: the draft as it is now)."""
    who = view.updated_by or "Somebody else"
    return (
        f"{who} saved the draft since you opened this form (it is now at revision "
        f"{view.revision}). Nothing was saved; your changes are kept below. Check them "
        "against the current draft and save again."
    )


def users_of(config: RoutingConfig, kind: str, name: str) -> list[str]:
    """Where the configuration names pool or territory ``name``: rule names, and
    "the fallback"."""
    out: list[str] = []
    for rule in config.rules:
        if kind == "pool":
            node = rule.assign
            if node.pool == name or (node.else_ is not None and node.else_.pool == name):
                out.append(rule.name)
        elif rule.when is not None and _names_territory(rule.when, name):
            out.append(rule.name)
    fallback = config.fallback
    if kind == "pool" and (
        fallback.pool == name or (fallback.else_ is not None and fallback.else_.pool == name)
    ):
        out.append("the fallback")
    return out


def _names_territory(node: Any, name: str) -> bool:
    for key in ("all", "any"):
        children = getattr(node, key, None)
        if isinstance(children, list):
            return any(_names_territory(child, name) for child in children)
    return getattr(node, "op", None) == "in_territory" and getattr(node, "value", None) == name


def locate(items: list[Any], key: Any, hint: int | None, attr: str = "name") -> int | None:
    """The index of the item whose ``attr`` is ``key``: ``hint`` (the index in the URL)
    when it still is that item, else wherever it moved; None when it is gone."""
    if not isinstance(key, str) or not key:
        return None
    if hint is not None and 0 <= hint < len(items) and getattr(items[hint], attr) == key:
        return hint
    return find(items, key, attr)


def posted_key(form: Any, items: list[Any], hint: int | None, attr: str = "name") -> str:
    """The key (name or email) of the item a form edits: its ``key`` field, or, for a
    form without one, the item at the URL's index ("" for a new item)."""
    key = form.get("key")
    if key is None and hint is not None and 0 <= hint < len(items):
        return str(getattr(items[hint], attr))
    return key if isinstance(key, str) else ""
