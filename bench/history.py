"""Where the time of a workflow's first pass goes, read from Temporal's own history.

For each workflow, from ``WorkflowExecutionStarted`` to the completion of its third
activity (the point where the lead's owner has been notified), the time is split into:
workflow tasks waiting for a worker to pick them up, workflow tasks being run by the worker,
activity tasks waiting, activities running, and the rest (the server between tasks: turning
a completed task into the next one, persisting, dispatching). Event times are server
timestamps on the same machine as everything else.
"""

from __future__ import annotations

import asyncio
import contextlib

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

WFT_QUEUE = "workflow task queued"
WFT_RUN = "workflow task in worker"
ACT_QUEUE = "activity queued"
ACT_RUN = "activity running"
SERVER = "server between tasks"
TOTAL = "start -> 3rd activity done"
PARTS = (WFT_QUEUE, WFT_RUN, ACT_QUEUE, ACT_RUN, SERVER, TOTAL)


def _at(event: HistoryEvent) -> float:
    return float(event.event_time.ToMicroseconds()) / 1e6


def first_pass(events: list[HistoryEvent], activities: int = 3) -> dict[str, float] | None:
    """Milliseconds per part, plus one entry per activity type (its running time), for the
    events up to the completion of the ``activities``-th activity; None when the history
    does not get that far."""
    parts = dict.fromkeys(PARTS, 0.0)
    start: float | None = None
    wft_scheduled = wft_started = 0.0
    scheduled: dict[int, tuple[str, float]] = {}
    started: dict[int, float] = {}
    done = 0
    for event in events:
        kind, at = event.event_type, _at(event)
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            start = at
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            wft_scheduled = at
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            wft_started = at
            parts[WFT_QUEUE] += (at - wft_scheduled) * 1000
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            parts[WFT_RUN] += (at - wft_started) * 1000
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, at)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            sid = event.activity_task_started_event_attributes.scheduled_event_id
            started[sid] = at
            parts[ACT_QUEUE] += (at - scheduled[sid][1]) * 1000
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sid = event.activity_task_completed_event_attributes.scheduled_event_id
            name = scheduled[sid][0]
            run_ms = (at - started[sid]) * 1000
            parts[ACT_RUN] += run_ms
            parts[f"  {name}"] = parts.get(f"  {name}", 0.0) + run_ms
            done += 1
            if done == activities and start is not None:
                parts[TOTAL] = (at - start) * 1000
                parts[SERVER] = parts[TOTAL] - sum(
                    parts[p] for p in (WFT_QUEUE, WFT_RUN, ACT_QUEUE, ACT_RUN)
                )
                return parts
    return None


async def breakdown(
    client: Client, workflow_ids: list[str], concurrency: int = 10
) -> dict[str, list[float]]:
    """``first_pass`` of each workflow, gathered per part (workflows whose history cannot be
    read or is incomplete are left out)."""
    slots = asyncio.Semaphore(concurrency)
    found: list[dict[str, float]] = []

    async def one(workflow_id: str) -> None:
        async with slots:
            with contextlib.suppress(Exception):
                history = await client.get_workflow_handle(workflow_id).fetch_history()
                parts = first_pass(list(history.events))
                if parts is not None:
                    found.append(parts)

    await asyncio.gather(*(one(w) for w in workflow_ids))
    out: dict[str, list[float]] = {}
    for parts in found:
        for name, value in parts.items():
            out.setdefault(name, []).append(value)
    return out
