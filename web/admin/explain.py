"""Routing decisions, scores and timeline events as the admin pages show them: plain
values and labels for the templates (``admin/_routing.html``, ``admin/lead.html``), read
from the decision and event data as stored. Pure; a value the page cannot place is shown
as text, never dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from web.admin.words import OPS, STRATEGIES

SKIPS = {
    "away": "away (out of office)",
    "outside_hours": "outside working hours",
    "capped": "daily or weekly cap reached",
    "inactive": "inactive",
    "zero_weight": "weight 0 (not in rotation)",
    "unknown_rep": "not a rep of the configuration",
}
EVENTS = {
    "captured": "Captured",
    "resubmitted": "Submitted again",
    "scored": "Scored",
    "assigned": "Assigned",
    "unassigned": "Not assigned",
    "crm_synced": "Synced to CRM",
    "crm_sync_failed": "CRM sync failed",
    "owner_notified": "Owner notified",
    "changes_accepted": "Changes accepted",
    "step_failed": "Step failed",
    "lifecycle_resumed": "Lifecycle resumed",
    "lifecycle_closed": "Lifecycle closed",
    "contacted": "Contacted",
    "meeting_booked": "Meeting booked",
    "no_response": "No response",
    "declined": "Declined",
    "presentation_held": "Presentation held",
    "presentation_failed": "Presentation did not convince",
    "qualified": "Qualified",
    "disqualified": "Disqualified",
    "proposal_sent": "Proposal sent",
    "negotiation_started": "Negotiation started",
    "won": "Won",
    "lost": "Lost",
    "engagement": "Engagement",
    "reassigned": "Reassigned",
    "owner_changed": "Owner changed in the CRM",
    "sla_reminded": "Speed-to-lead reminder",
    "sla_escalated": "Escalated to the manager",
    "stale_reminded": "Stale-lead reminder",
    "nurture_started": "To nurture",
    "recycled": "Recycled from nurture",
    "converted": "Converted in the CRM",
    "account_manager_assigned": "Account manager assigned",
    "onboarding_tasks_created": "Onboarding tasks created",
    "win_announced": "Win announced",
    "handed_off": "Handed off to account management",
    "retry_requested": "Retry requested",
    "crm_change_not_applied": "CRM change not applied",
    "approval_requested": "Approval requested",
    "approval_escalated": "Approval escalated",
    "approval_decided": "Approval decided",
    "approval_not_applied": "Approval not applied",
}
# Data kept for machines (the full decision, the score's parts): not shown as details.
HIDDEN_DATA = {"rep_id", "rerouted", "parts", "assignment", "event_id"}


def text(value: object) -> str:
    """A stored value as a person reads it."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{label(k)} {text(v)}" for k, v in value.items()) or "—"
    return str(value)


def label(name: object) -> str:
    """A field name as a label: ``company_size`` → "company size"."""
    return str(name).replace("_", " ")


@dataclass
class Credit:
    rep: str
    before: str
    after: str
    change: str
    chosen: bool


@dataclass
class PoolView:
    name: str
    strategy: str
    skipped: list[tuple[str, str]]  # (rep, why)
    credits: list[Credit]
    tie_break: str | None
    catch_up: bool


@dataclass
class RoutingView:
    """One decision, ready to show."""

    version: str
    rule: str
    reason: str
    rules_tested: int | None
    conditions: list[dict[str, Any]] = field(default_factory=list)
    account: list[tuple[str, str]] = field(default_factory=list)
    pool: PoolView | None = None
    fallback: str | None = None
    chosen: str | None = None
    queue: str | None = None
    notes: list[str] = field(default_factory=list)


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) else "—"


def _who(email: object, names: dict[str, str]) -> str:
    if not isinstance(email, str):
        return "—"
    name = names.get(email)
    return f"{name} <{email}>" if name else email


def routing_view(decision: dict[str, Any], names: dict[str, str]) -> RoutingView:
    """A decision (``RoutingDecision`` as stored, or a simulation's answer: ``rule``,
    ``reason``, ``explanation``, ``rep``/``queue``), its reps named from ``names``."""
    explanation = _mapping(decision.get("explanation"))
    version = explanation.get("config_version", decision.get("config_version"))
    view = RoutingView(
        version="draft" if version is None else f"version {version}",
        rule=str(decision.get("rule") or explanation.get("rule") or "—"),
        reason=str(decision.get("reason") or ""),
        rules_tested=explanation.get("rules_tested"),
    )
    if version == 0:
        view.version = "none published"
    for cond in explanation.get("conditions") or []:
        cond = _mapping(cond)
        valueless = cond.get("op") in ("empty", "not_empty")
        view.conditions.append(
            {
                "field": str(cond.get("field")),
                "op": OPS.get(str(cond.get("op")), str(cond.get("op"))),
                "value": "" if valueless else text(cond.get("value")),
                "lead_value": text(cond.get("lead_value")),
                "matched": bool(cond.get("matched")),
            }
        )
    account = _mapping(explanation.get("account"))
    if account:
        view.account = [
            ("Account", text(account.get("name"))),
            ("Account owner", _who(account.get("owner"), names)),
        ]
        if account.get("fell_through"):
            view.account.append(("Not used because", text(account.get("fell_through"))))
    pool = _mapping(explanation.get("pool"))
    chosen = explanation.get("chosen") or decision.get("rep")
    if isinstance(_mapping(decision.get("rep")).get("email"), str):
        chosen = decision["rep"]["email"]  # a simulation names the rep as {name, email}
    if pool:
        view.pool = _pool_view(pool, chosen, names)
    if decision.get("fallback") or explanation.get("fallback"):
        view.fallback = text(explanation.get("fallback") or "none")
    view.chosen = _who(chosen, names) if chosen else None
    view.queue = decision.get("queue")
    for key in ("account_lookup", "note"):
        if explanation.get(key):
            view.notes.append(str(explanation[key]))
    return view


def _pool_view(pool: dict[str, Any], chosen: object, names: dict[str, str]) -> PoolView:
    before, after = _mapping(pool.get("state_before")), _mapping(pool.get("state_after"))
    credits = []
    for rep in dict.fromkeys([*before, *after]):
        old, new = before.get(rep), after.get(rep)
        change = (
            new - old if isinstance(old, int | float) and isinstance(new, int | float) else None
        )
        credits.append(
            Credit(
                rep=_who(rep, names),
                before=_number(old),
                after=_number(new),
                change="—" if change is None else (f"{change:+g}" if change else "0"),
                chosen=rep == chosen,
            )
        )
    tie = _mapping(pool.get("tie_break"))
    tie_break = None
    if tie:
        tied = ", ".join(_who(r, names) for r in tie.get("tied") or [])
        tie_break = f"{text(tie.get('by'))} among {tied}" if tied else text(tie)
    return PoolView(
        name=str(pool.get("name")),
        strategy=STRATEGIES.get(str(pool.get("strategy")), str(pool.get("strategy"))),
        skipped=[
            (_who(s.get("rep"), names), SKIPS.get(str(s.get("reason")), str(s.get("reason"))))
            for s in map(_mapping, pool.get("skipped") or [])
        ],
        credits=credits,
        tie_break=tie_break,
        catch_up=bool(pool.get("catch_up")),
    )


# ------------------------------------------------------------------------------ events


@dataclass
class EventView:
    at: datetime
    title: str
    kind: str
    stage: str | None
    details: list[tuple[str, str]]


def event_view(
    kind: str, stage: str | None, at: datetime, data: dict[str, Any], names: dict[str, str]
) -> EventView:
    """A timeline entry: its title and its data as label/value pairs."""
    details: list[tuple[str, str]] = []
    if kind == "resubmitted":
        for name, value in _mapping(data.get("filled")).items():
            details.append((f"filled {label(name)}", text(value)))
        for name, value in _mapping(data.get("proposed")).items():
            details.append((f"proposed {label(name)}", text(value)))
        if "fields" in data:
            details.append(("fields sent", text(data["fields"])))
        if not details:
            details.append(("changes", "none (the same values again)"))
    elif kind == "scored":
        details.append(("score", f"{text(data.get('score'))} ({text(data.get('grade'))})"))
    elif kind in ("assigned", "unassigned"):
        decision = _mapping(_mapping(data.get("assignment")).get("decision"))
        owner = _mapping(decision.get("owner"))
        details.append(("rule", text(data.get("rule"))))
        if owner:
            details.append(("owner", _who(owner.get("email"), names)))
        if decision.get("queue"):
            details.append(("queue", text(decision["queue"])))
        details.append(("why", text(data.get("reason"))))
    elif kind == "owner_notified":
        ms = data.get("speed_to_lead_ms")
        details.append(("speed to lead", duration(ms if isinstance(ms, int) else None)))
        if data.get("quiet"):
            details.append(
                ("how", "no message: an imported lead; the owner gets the import's summary")
            )
    else:
        details = [
            (label(k), text(v)) for k, v in data.items() if k not in HIDDEN_DATA and v is not None
        ]
    return EventView(
        at=at, title=EVENTS.get(kind, label(kind)), kind=kind, stage=stage, details=details
    )


# ------------------------------------------------------------------------------ times


def age(then: datetime | None, now: datetime) -> str:
    """How long ago, coarsely: "just now", "12 min ago", "3 h ago", "5 d ago"."""
    if then is None:
        return "—"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds // 60} min ago"


def duration(ms: int | None) -> str:
    """Milliseconds as "850 ms", "2.4 s", "3 min 5 s"."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(ms // 1000, 60)
    return f"{minutes} min {seconds} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
