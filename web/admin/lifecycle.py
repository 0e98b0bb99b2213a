"""A lead's lifecycle as the admin pages show it: where the lead stands, the timers its
workflow has running (what fires next and when, and the configuration version each
duration came from) and the steps that failed for good, with the words for them.

The live part comes from the workflow's ``state`` query, asked with a short timeout; a
closed or unreachable lifecycle leaves the page with what the database knows and says
why the timers are missing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.common import QueryRejectCondition
from temporalio.service import RPCError, RPCStatusCode

from domain.lead import workflow_id_for
from domain.lifecycle import Attention, LeadState, Origin, Timer
from store.models import Lead
from web.admin.explain import age, label
from web.deps import AppContext

# The lead's page waits at most this long for its workflow's answer.
STATE_QUERY_TIMEOUT_S = 2.0

TIMERS = {
    "sla_remind": "Remind the owner to make contact",
    "sla_reassign": "Reassign if still not contacted",
    "sla_escalate": "Escalate to the pool's manager",
    "no_meeting": "Move to nurture if no meeting is booked",
    "stale": "Remind the owner of a stale lead",
    "cool_off": "End of the nurture cool-off",
    "queue_retry": "Try the queue again",
}
# The lifecycle's step names (``Attention.step``) as people read them.
STEPS = {
    "assign": "Score and route",
    "crm": "Sync to the CRM",
    "crm_owner": "Give the CRM record its owner",
    "notify": "Notify the owner",
    "remind": "Remind the owner",
    "escalate": "Escalate to the manager",
    "stale": "Remind the owner of a stale lead",
    "recycle": "Recycle from nurture",
    "handoff": "Hand off to account management",
    "engagement": "Record engagement",
    "resume": "Resume the lifecycle",
}

ORIGINS = {
    Origin.inbound.value: "Inbound (web form)",
    Origin.outbound.value: "Outbound (entered by a rep)",
    Origin.imported.value: "Imported (bulk import)",
}


class Live(StrEnum):
    """How the workflow answered the page."""

    running = "running"
    ended = "ended"
    unreachable = "unreachable"


def step_title(step: str) -> str:
    """A step's name as a person reads it: ``notify`` → "Notify the owner"."""
    name, _, detail = step.partition(":")
    if name == "resubmitted":
        return f"Record submission {detail}" if detail else "Record a resubmission"
    if name == "stage" and detail:
        return f"Move to {label(detail)}"
    return STEPS.get(step, label(step).capitalize())


def until(then: datetime, now: datetime) -> str:
    """How long until ``then``, coarsely: "in 40 s", "in 12 min", "in 3 h 5 min", "in 2 d
    4 h"; "due now" once it is past."""
    seconds = int((then - now).total_seconds())
    if seconds <= 0:
        return "due now"
    if seconds < 60:
        return f"in {seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"in {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"in {hours} h {minutes} min" if minutes else f"in {hours} h"
    days, hours = divmod(hours, 24)
    return f"in {days} d {hours} h" if hours else f"in {days} d"


@dataclass(frozen=True)
class TimerView:
    name: str
    title: str
    fires_at: datetime
    fires_in: str
    started_at: datetime
    config_version: int | None
    next: bool


@dataclass(frozen=True)
class FailedStep:
    step: str
    title: str
    error: str
    message: str
    at: datetime
    ago: str


@dataclass
class LifecycleView:
    """The Lifecycle panel of a lead's page."""

    live: Live
    stage: str
    owner: str | None
    score: int | None
    grade: str | None
    origin: str
    pool: str | None
    config_version: int | None
    needs_attention: bool
    timers: list[TimerView] = field(default_factory=list)
    failed: list[FailedStep] = field(default_factory=list)
    # Why no timers are listed, when the workflow did not say.
    timers_note: str | None = None


def failed_steps(attention: list[Attention], now: datetime) -> list[FailedStep]:
    return [
        FailedStep(
            step=a.step,
            title=step_title(a.step),
            error=label(a.error),
            message=a.message,
            at=a.at,
            ago=age(a.at, now),
        )
        for a in attention
    ]


def timer_views(timers: list[Timer], now: datetime) -> list[TimerView]:
    ordered = sorted(timers, key=lambda t: t.fires_at)
    return [
        TimerView(
            name=t.name.value,
            title=TIMERS.get(t.name.value, label(t.name.value).capitalize()),
            fires_at=t.fires_at,
            fires_in=until(t.fires_at, now),
            started_at=t.started_at,
            config_version=t.config_version,
            next=index == 0,
        )
        for index, t in enumerate(ordered)
    ]


async def lifecycle_state(context: AppContext, lead_id: str) -> tuple[Live, LeadState | None]:
    """The workflow's answer to the ``state`` query within ``STATE_QUERY_TIMEOUT_S``;
    ``ended`` when the lifecycle is closed (or gone), ``unreachable`` when it did not
    answer."""
    handle = context.temporal.get_workflow_handle(workflow_id_for(lead_id))
    timeout = timedelta(seconds=STATE_QUERY_TIMEOUT_S)
    try:
        state = await asyncio.wait_for(
            handle.query(
                "state",
                result_type=LeadState,
                reject_condition=QueryRejectCondition.NOT_OPEN,
                rpc_timeout=timeout,
            ),
            STATE_QUERY_TIMEOUT_S,
        )
    except WorkflowQueryRejectedError:
        return Live.ended, None
    except RPCError as err:
        return (Live.ended if err.status == RPCStatusCode.NOT_FOUND else Live.unreachable), None
    except (WorkflowQueryFailedError, TimeoutError, RuntimeError):
        # RuntimeError: a lazy client that could not connect.
        return Live.unreachable, None
    if not isinstance(state, LeadState):
        return Live.unreachable, None
    return Live.running, state


def lifecycle_view(
    lead: Lead,
    stored: list[Attention],
    live: Live,
    state: LeadState | None,
    now: datetime,
) -> LifecycleView:
    """The panel from the workflow's state when it answered, else from the stored lead
    (``stored``: its failed steps as the database has them)."""
    if live is Live.running and state is not None:
        owner = state.owner
        flagged = state.needs_attention or bool(state.attention)
        return LifecycleView(
            live=live,
            stage=state.stage.value,
            owner=f"{owner.name} <{owner.email}>" if owner is not None else None,
            score=state.score,
            grade=state.grade,
            origin=ORIGINS.get(state.origin.value, state.origin.value),
            pool=state.pool,
            config_version=state.config_version,
            needs_attention=flagged,
            timers=timer_views(state.timers, now),
            # A lifecycle from before failed steps were kept in its state: the stored ones.
            failed=failed_steps(state.attention or (stored if flagged else []), now),
        )
    rep = lead.owner
    note = (
        "No timers: the lifecycle has ended."
        if live is Live.ended
        else "Timers are not available: the lifecycle did not answer in time. The rest of "
        "this panel is what the database holds."
    )
    decision = (lead.routing or {}).get("decision")
    decision = decision if isinstance(decision, dict) else {}
    version = decision.get("config_version")
    return LifecycleView(
        live=live,
        stage=lead.stage,
        owner=f"{rep.name} <{rep.email}>" if rep is not None else None,
        score=lead.score,
        grade=lead.grade,
        origin=ORIGINS[Origin.inbound.value] if lead.source_system == "web" else "—",
        pool=decision.get("pool") if isinstance(decision.get("pool"), str) else None,
        config_version=version if isinstance(version, int) else None,
        needs_attention=lead.needs_attention,
        failed=failed_steps(stored if lead.needs_attention else [], now),
        timers_note=note,
    )
